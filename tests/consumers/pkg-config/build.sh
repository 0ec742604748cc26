#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the consumers with pkg-config only, as a Makefile-based project would:
#   PKG_CONFIG_PATH=PREFIX/lib/ARCH/pkgconfig build.sh OUTDIR shared|static
# shared: cc app.c $(pkg-config --cflags --libs ssx)
# static: libssx.a by path, then what it needs from `pkg-config --static --libs ssx` (toml++,
#         OpenSSL, the C++ runtime), without -lssx, which would pick libssx.so again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
kind=$2
CC=${CC:-cc}
CXX=${CXX:-c++}
cflags=$(pkg-config --cflags ssx)
case $kind in
  shared) libs=$(pkg-config --libs ssx) ;;
  static)
    libs="$(pkg-config --variable=libdir ssx)/libssx.a $(pkg-config --static --libs ssx |
      sed -e 's/^-lssx / /' -e 's/ -lssx / /g' -e 's/ -lssx$//')" ;;
  *) echo "usage: $0 OUTDIR shared|static" >&2; exit 2 ;;
esac
mkdir -p "$out"
# shellcheck disable=SC2086 # word splitting of the flag lists is intended
$CC -std=c99 -Wall -Werror -o "$out/consumer_c" "$here/../src/consumer.c" $cflags $libs
# shellcheck disable=SC2086
$CXX -std=c++20 -Wall -Werror -o "$out/consumer_cxx" "$here/../src/consumer.cpp" $cflags $libs
