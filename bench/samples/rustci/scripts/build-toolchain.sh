#!/usr/bin/env bash
# The long step: build a C++ "toolchain" with cmake and ninja and install it into /rustroot, as
# build-gcc.sh / build-clang.sh do in rust-lang/rust's images. The sources are generated (no network
# beyond the package mirror): UNITS translation units of template-heavy C++, a static library and tools.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # shared.sh is copied beside this script in the image (/tmp)
source shared.sh
UNITS=${UNITS:-24}
src=/tmp/toolchain-src
mkdir -p "$src"
python3 - "$src" "$UNITS" <<'PY'
import sys
from pathlib import Path

root, units = Path(sys.argv[1]), int(sys.argv[2])
(root / "include").mkdir(exist_ok=True)
(root / "include" / "pass.hpp").write_text("""\
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>
template <int N, typename T> struct Pass {
  static T run(const std::vector<T>& in) {
    std::vector<T> v(in);
    for (int r = 0; r < N % 7 + 3; ++r) {
      std::transform(v.begin(), v.end(), v.begin(), [r](T x) { return x * T(2654435761u) + T(r + N); });
      std::sort(v.begin(), v.end());
    }
    std::map<T, int> counts;
    for (T x : v) counts[x % T(97)]++;
    T acc = 0;
    for (auto& [k, c] : counts) acc ^= k * T(c);
    return acc + Pass<N - 1, T>::run(in);
  }
};
template <typename T> struct Pass<0, T> { static T run(const std::vector<T>&) { return 0; } };
""")
names = []
for u in range(units):
    names.append(f"unit{u}")
    (root / f"unit{u}.cpp").write_text(f"""\
#include "pass.hpp"
std::uint64_t unit{u}(const std::vector<std::uint64_t>& a, const std::vector<std::uint32_t>& b) {{
  return Pass<{12 + u % 8}, std::uint64_t>::run(a) ^ Pass<{10 + u % 6}, std::uint32_t>::run(b);
}}
""")
decls = "\n".join(f"std::uint64_t {n}(const std::vector<std::uint64_t>&, const std::vector<std::uint32_t>&);"
                  for n in names)
calls = "\n".join(f"  h = h * 31 + {n}(a, b);" for n in names)
(root / "driver.cpp").write_text(f"""\
#include <cstdio>
#include "pass.hpp"
{decls}
int main() {{
  std::vector<std::uint64_t> a(4096);
  std::vector<std::uint32_t> b(4096);
  for (std::size_t i = 0; i < a.size(); ++i) {{ a[i] = i * 7919; b[i] = std::uint32_t(i * 104729); }}
  std::uint64_t h = 0;
{calls}
  std::printf("toolchain self-test: %016llx\\n", (unsigned long long)h);
}}
""")
(root / "CMakeLists.txt").write_text(f"""\
cmake_minimum_required(VERSION 3.20)
project(toolchain CXX)
set(CMAKE_CXX_STANDARD 17)
include_directories(include)
add_library(passes STATIC {" ".join(n + ".cpp" for n in names)})
add_executable(rust-toolchain-selftest driver.cpp)
target_link_libraries(rust-toolchain-selftest passes)
install(TARGETS passes rust-toolchain-selftest)
install(DIRECTORY include/ DESTINATION include)
""")
PY
cd "$src"
hide_output cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/rustroot
hide_output cmake --build build -j"$(nproc)"
cmake --install build
/rustroot/bin/rust-toolchain-selftest
cd /
rm -rf "$src" /tmp/build.log
