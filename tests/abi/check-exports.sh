#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# check-exports.sh LIBRARY: fails unless LIBRARY's dynamic symbol table defines at least one ssx_
# symbol and nothing else (besides the version node of src/libssx.map, an absolute SSX_* symbol).
# A leaked C++ or OpenSSL symbol would become part of the ABI that libssx0 promises to keep.
set -eu
lib=$1
symbols=$(nm -D --defined-only "$lib") || { echo "nm failed on $lib" >&2; exit 1; }
ours=$(printf '%s\n' "$symbols" | awk '$NF ~ /^ssx_/' | wc -l)
if [ "$ours" -eq 0 ]; then
  echo "$lib exports no ssx_ symbol" >&2
  exit 1
fi
others=$(printf '%s\n' "$symbols" | awk '!($NF ~ /^ssx_/) && !($(NF-1) == "A" && $NF ~ /^SSX_/)')
if [ -n "$others" ]; then
  echo "$lib exports symbols outside the C API:" >&2
  printf '%s\n' "$others" | head -20 >&2
  exit 1
fi
echo "$lib: $ours ssx_ symbols, nothing else"
