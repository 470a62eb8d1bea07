#!/usr/bin/env bash
# vpage installed as people expect (issue 18), from a copy of the source:
# - meson install into a temporary prefix: the library, its header, the
#   vpage command (which finds the installed library), the table tool, and
#   a pkg-config file whose `preload` variable is the library's path;
# - a wheel (meson-python, as `pip install .` builds it): the library, the
#   table tool and the command's code inside the package vpage, the command
#   an entry point; unpacked, `python3 -m vpage` finds its own library and
#   runs the paging demo on the fake driver to "same output: yes".
# The wheel needs a Python with meson-python and pip (Debian:
# python3-mesonpy, python3-pip; scripts/install-deps.sh --test installs
# them); without one that part is skipped (status 77).
. "$(dirname "$0")/check-lib.sh"
src=$1 toolkit=$2 demo=$3
fail() { echo "$1"; [ -f "$dir/out" ] && tail -30 "$dir/out"; exit 1; }
mkdir "$dir/src"
tar -C "$src" --exclude='./build*' --exclude=./.git --exclude=./.ab -cf - . | tar -C "$dir/src" -xf -
# meson install
meson setup "$dir/b" "$dir/src" --prefix="$dir/prefix" -Dtoolkit="$toolkit" -Dtests=false > "$dir/out" 2>&1 ||
    fail "meson setup failed"
ninja -C "$dir/b" > "$dir/out" 2>&1 && meson install -C "$dir/b" > "$dir/out" 2>&1 || fail "meson install failed"
lib=$(find "$dir/prefix" -name libvpage.so | head -n 1)
[ -n "$lib" ] || fail "no libvpage.so installed"
pc=$(find "$dir/prefix" -name vpage.pc | head -n 1)
[ -n "$pc" ] || fail "no vpage.pc installed"
for f in bin/vpage bin/vpage-table bin/vpage-trace include/vpage.h; do
    [ -e "$dir/prefix/$f" ] || fail "$f not installed"
done
got=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=preload vpage)
[ "$got" = "$lib" ] || fail "pkg-config's preload is '$got', not $lib"
got=$(env -u VPAGE_LIB "$dir/prefix/bin/vpage" lib)
[ "$got" = "$lib" ] || fail "the installed vpage preloads '$got', not $lib"
echo "meson install: ok"
# the wheel
py=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import mesonpy, pip' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "no Python with meson-python and pip: the wheel is not checked"; exit 77; }
"$py" -m pip wheel --no-build-isolation --no-deps -w "$dir/wheel" "$dir/src" \
    --config-settings=setup-args=-Dtoolkit="$toolkit" > "$dir/out" 2>&1 || fail "the wheel did not build"
whl=$(ls "$dir"/wheel/vpage-*.whl)
"$py" -m zipfile -l "$whl" > "$dir/list" || fail "not a zip: $whl"
for f in vpage/libvpage.so vpage/vpage-table vpage/cli.py vpage/__main__.py entry_points.txt; do
    grep -q "$f" "$dir/list" || { cat "$dir/list"; fail "$f not in the wheel"; }
done
"$py" -m zipfile -e "$whl" "$dir/site"
grep -q "^vpage = vpage.cli:main" "$dir"/site/vpage-*.dist-info/entry_points.txt || fail "no vpage entry point"
got=$(cd "$dir" && env -u VPAGE_LIB PYTHONPATH="$dir/site" "$py" -m vpage lib)
[ "$got" = "$dir/site/vpage/libvpage.so" ] || fail "the wheel's vpage preloads '$got'"
# (the wheel's library is not built with ASan: an ASan-built demo then has
# its runtime after the preload)
(cd "$dir" && env -u VPAGE_LIB PYTHONPATH="$dir/site" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    "$py" -m vpage run --cap 512M -- "$demo") > "$dir/out" 2>&1 ||
    fail "the wheel's vpage run failed"
grep -q "same output: yes" "$dir/out" || fail "the wheel's vpage run: not the same output"
echo "wheel: ok"
