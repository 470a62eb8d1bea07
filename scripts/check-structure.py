#!/usr/bin/env python3
"""The library's structure, checked: layers, no circle of files, sizes.

    python3 scripts/check-structure.py [ROOT]     (exit 1 with one line per fault)

A "room" is a source file with the header of the same name beside it
(pager/demand.c + pager/demand.h). Room A depends on room B when A includes
B's header or calls a function that B alone defines (non-static, at file
scope). The rules:
  - folders are layers, listed top down in LAYERS: a room may depend on
    rooms of its own folder or of a folder below, never above;
  - policy/ depends on nothing outside policy/ (and the C library);
  - common/ depends on nothing outside common/ and include/;
  - no circle of rooms (also within a folder);
  - no library function longer than MAX_FUNC lines, no file longer than
    MAX_FILE lines.
The reading is textual (comments and strings dropped, no preprocessor): a
call is a name followed by "(", a definition a line at column 0 that ends a
signature and is followed by "{" at column 0, as this tree writes them.
"""
import os
import re
import sys

LAYERS = ["tools", "interpose", "core", "pager", "books", "policy", "driver", "common", "include"]
ALONE = {"policy": {"policy"}, "common": {"common", "include"}}
MAX_FUNC = 100
MAX_FILE = 700

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
DEF = re.compile(r"^(?!static\b)(?!typedef\b)[A-Za-z_][^;{}()]*?\b([A-Za-z_]\w*)\s*\([^;]*\)\s*$")
OWN = re.compile(r"^(?:static\s+)?(?:inline\s+)?[A-Za-z_][^;{}()=]*?\b([A-Za-z_]\w*)\s*\(")


def strip(text):
    text = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return STRING.sub('""', text)


def sources(root):
    for layer in LAYERS:
        top = os.path.join(root, layer)
        for d, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), root)


def room_of(path):
    return os.path.splitext(path)[0]


def folder_of(path):
    return path.split(os.sep)[0]


def functions(lines):
    """(name, first line, length) of each function whose body opens with "{"
    at column 0 and closes with "}" at column 0."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("{") and i > 0:
            head = " ".join(lines[max(0, i - 3):i])
            names = re.findall(r"\b([A-Za-z_]\w*)\s*\(", head)
            end = i + 1
            while end < len(lines) and not lines[end].startswith("}"):
                end += 1
            out.append((names[0] if names else "?", i + 1, end - i + 1))
            i = end
        i += 1
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    root = os.path.abspath(root)
    text, lines = {}, {}
    for p in sources(root):
        raw = open(os.path.join(root, p), encoding="utf-8", errors="replace").read()
        text[p] = strip(raw)
        lines[p] = text[p].split("\n")
    faults = []
    defined = {}
    for p, t in text.items():
        if not p.endswith(".c"):
            continue
        for line in t.split("\n"):
            m = DEF.match(line)
            if m and "=" not in line:
                defined.setdefault(m.group(1), set()).add(room_of(p))
    own = {}  # names each room defines itself, static ones too: its calls of them stay home
    for p, t in text.items():
        for line in t.split("\n"):
            m = OWN.match(line)
            if m:
                own.setdefault(room_of(p), set()).add(m.group(1))
    deps = {}
    for p, t in text.items():
        r = room_of(p)
        mine = deps.setdefault(r, {})
        for inc in INCLUDE.findall(t):
            q = os.path.normpath(os.path.join(os.path.dirname(p), inc))
            if q in text and room_of(q) != r:
                mine.setdefault(room_of(q), set()).add("#include " + inc)
        for name in set(CALL.findall(t) if p.endswith(".c") else ()):  # a header's are declarations
            owners = defined.get(name, set())
            if len(owners) == 1 and name not in own.get(r, ()):
                (o,) = owners
                if o != r:
                    mine.setdefault(o, set()).add(name)
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for r, ds in sorted(deps.items()):
        fr = folder_of(r)
        for o, why in sorted(ds.items()):
            fo = folder_of(o)
            allowed = ALONE.get(fr)
            if (allowed and fo not in allowed) or rank[fo] < rank[fr]:
                faults.append(f"layer: {r} -> {o} ({', '.join(sorted(why)[:4])})")
    # circles: strongly connected components of rooms
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    for comp in comps:
        ties = [f"{a} -> {b} ({', '.join(sorted(deps[a][b])[:3])})" for a in comp for b in deps[a] if b in comp]
        faults.append(f"circle of {len(comp)} rooms: {'; '.join(ties)}")
    for p, ls in sorted(lines.items()):
        if len(ls) > MAX_FILE:
            faults.append(f"size: {p} has {len(ls)} lines (most {MAX_FILE})")
        if p.endswith(".c"):
            for name, at, length in functions(ls):
                if length > MAX_FUNC:
                    faults.append(f"size: {p}:{at} {name} has {length} lines (most {MAX_FUNC})")
    for f in faults:
        print(f)
    print(f"structure: {len(deps)} rooms, {sum(len(d) for d in deps.values())} arrows, {len(faults)} faults")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
