#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The bash completion (dist/completions/ssx.bash) completes subcommands and option values.
# Usage: bash_completion_test.sh COMPLETION_FILE
set -eu
source /usr/share/bash-completion/bash_completion
source "$1"
complete_line() {  # complete_line WORD... : completes the last word of "ssx WORD..."
  COMP_WORDS=(ssx "$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _ssx ssx "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  echo "${COMPREPLY[*]}"
}
check() {  # check EXPECTED WORD...
  local expected=$1; shift
  local got; got=$(complete_line "$@")
  [ "$got" = "$expected" ] || { echo "ssx $*<TAB>: expected '$expected', got '$got'"; exit 1; }
}
check "tunnel" tu
check "server client" tunnel --mode ""
check "check explain --help" policy ""
check "--client" pki issue --cl
check "" tunnel --nonexistent-option
echo "bash completion ok"
