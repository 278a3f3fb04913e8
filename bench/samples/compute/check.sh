#!/bin/sh
# Run the optimised builds of crunch over the corpus; they must agree with each other.
set -eu
corpus=$1 out=$2
mkdir -p "$out"
for v in O2 O3; do
  /out/bin/crunch-"$v" "$corpus"/* > "$out/$v.txt"
done
cmp "$out/O2.txt" "$out/O3.txt"
echo "crunch: $(wc -l < "$out/O2.txt") files checked, O2 and O3 agree" | tee "$out/summary.txt"
