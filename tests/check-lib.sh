# check-lib.sh - sourced by the tests/check_*.sh scripts: strict variables;
# the preload kept in $pre for the program under test only (the helpers a
# script runs go without it: under ASan their own leaks would be reported
# and fail them); a temporary folder $dir, removed at exit.
set -u
pre=${LD_PRELOAD-}
unset LD_PRELOAD
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
