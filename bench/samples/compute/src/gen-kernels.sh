#!/bin/sh
# Write kernels.c: N mixing kernels (each a differently unrolled round over the input) and a dispatcher.
# Generated code, but real work for the compiler: every kernel is optimised, unrolled and inlined.
set -eu
n=${1:-400}
awk -v n="$n" 'BEGIN {
  print "#include <stddef.h>\n#include <stdint.h>\n"
  for (k = 0; k < n; k++) {
    printf "static uint64_t k%d(uint64_t s, const unsigned char *p, size_t len) {\n", k
    printf "  for (size_t i = 0; i + 8 <= len; i += 8) {\n"
    printf "    uint64_t v = 0;\n    for (int b = 0; b < 8; b++) v |= (uint64_t)p[i + b] << (8 * b);\n"
    for (r = 0; r < 6; r++) {
      printf "    s ^= v + 0x%08xu; s = (s << %d) | (s >> %d); s *= 0x%08xu%s;\n", \
        (k * 2654435761 + r * 40503) % 4294967296, (k + r) % 63 + 1, 64 - ((k + r) % 63 + 1), \
        (k * 97 + r * 31) % 65536 * 2 + 1, (r % 2 ? "ll" : "")
    }
    printf "    if ((s & 0xff) == %d) s += i;\n  }\n  return s;\n}\n\n", k % 256
  }
  print "uint64_t kernels_mix(uint64_t s, const unsigned char *p, size_t len) {"
  print "  switch (p[0] % 16) {"
  for (k = 0; k < 16; k++) printf "  case %d: s = k%d(s, p, len); break;\n", k, k
  print "  }"
  print "  uint64_t t = s;"
  for (k = 16; k < n; k++) printf "  if ((t & 0x3ff) == %d) t = k%d(t, p, len > 64 ? 64 : len);\n", k % 1024, k
  print "  return s ^ (t >> 1) ^ (t << 7);\n}"
}'
