#!/usr/bin/env bash
# VPAGE_WEIGHT_FILES is read once, when the library loads (issue 20): the
# file hooks never read the environment, and a program that changes it
# afterwards does not change what is tracked. tests/weights_env copies a
# mapped safetensors file to the device and prints its provenance.
. "$(dirname "$0")/check-lib.sh"
prog=$1
run() { # [ENV...] -- ARGS: the program's provenance line
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" LD_PRELOAD="$pre" "$prog" "$@" 2> "$dir/err" | sed -n 's/^provenance: //p'
}
expect() { # NAME GOT tracked|untracked
    case "$3" in
    tracked) [[ "$2" == *vpage-weights-env-*.safetensors:63:w ]] ;;
    untracked) [ -z "$2" ] ;;
    esac || { echo "$1: provenance '$2', want $3"; cat "$dir/err"; exit 1; }
    echo "$1: ok"
}
expect default "$(run TMPDIR="$dir" -- )" tracked
expect none-at-start "$(run TMPDIR="$dir" VPAGE_WEIGHT_FILES=none -- )" untracked
expect other-pattern "$(run TMPDIR="$dir" VPAGE_WEIGHT_FILES='*.gguf' -- )" untracked
expect none-set-late "$(run TMPDIR="$dir" -- late)" tracked
echo "weights-env: ok"
