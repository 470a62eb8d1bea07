#!/usr/bin/env bash
# Every option libvpage prints with VPAGE_HELP=1 must have a row in README.md.
# Runs the demo-free path: a dlsym of a driver name is enough to start vpage.
set -u
preload=$1 readme=$2   # preload: what LD_PRELOAD must hold (libvpage.so, after the ASan runtime in ASan builds)
names=$(VPAGE_HELP=1 LD_PRELOAD="$preload" python3 -c 'import ctypes; ctypes.CDLL(None).cuInit' 2>&1 |
        grep -o 'VPAGE_[A-Z_]*' | sort -u)
[ -n "$names" ] || { echo "VPAGE_HELP printed no options"; exit 1; }
missing=0
for n in $names; do
  grep -q "^| \`$n\`" "$readme" || { echo "README.md has no row for $n"; missing=1; }
done
echo "$(echo "$names" | wc -l) options, all documented: $([ $missing = 0 ] && echo yes || echo no)"
exit $missing
