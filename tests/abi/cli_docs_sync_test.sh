#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every option that `ssx SUBCOMMAND --help` lists is in the man page and in both shell
# completions, and the zsh completion parses: the three are written by hand, so this catches an
# option added to the command without them.
# Usage: cli_docs_sync_test.sh SSX SOURCE_DIR
set -eu
ssx=$1
src=$2
files=("$src/man/ssx.1.scd" "$src/dist/completions/ssx.bash" "$src/dist/completions/_ssx")
missing=0
for sub in connect listen tunnel agent; do
  for opt in $("$ssx" "$sub" --help | grep -oE '^ +(-[a-z],)?--[a-z][a-z-]*' | sed -E 's/^ +(-[a-z],)?//'); do
    [ "$opt" = --help ] && continue
    for f in "${files[@]}"; do
      if ! grep -qE -- "${opt}([^a-z-]|\$)" "$f"; then
        echo "ssx $sub $opt is not in ${f#"$src"/}"
        missing=1
      fi
    done
  done
done
if command -v zsh >/dev/null; then
  zsh -n "$src/dist/completions/_ssx" || { echo "_ssx does not parse"; missing=1; }
else
  echo "zsh is not installed (scripts/install-deps installs it)"
  missing=1
fi
[ $missing -eq 0 ] && echo "man page and completions list every option"
exit $missing
