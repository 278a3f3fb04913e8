#!/bin/sh
# The stand-in compiler: checksum every chunk a few times over.
set -e
for _ in 1 2 3; do
  for f in chunk*; do sha256sum "$f"; done
done
