#!/usr/bin/env python3
"""Module-cycle check: no module of a crate imports a module that imports it back.

For each crate root it builds the graph of the crate's modules (one node per file module and per
inline `mod x { ... }`), with an edge A -> B when A depends on module B or on an item defined in B
through a `use` (any visibility, anywhere in A, function bodies included) or through a qualified
path written in code (`crate::netns::run_in_netns(..)`, `super::Error::new`); `--use-only` counts
`use` declarations alone. `crate::`, `super::`, `self::` and 2018-edition paths that start with a
child module's name are resolved; anything else (`std::`, `herald_shared::`, other crates) is
outside the crate and ignored. `mod` declarations are not edges, but a `use` of an item in a
parent or child module is. Every strongly connected component of more than one module is
reported, with each of its pairs A <-> B and the file:line of every import inside it (`(path)`
marks a qualified path); the exit status is 1 if there is any cycle, 2 on a parse error.

Usage: tests/module-cycles.py [--use-only] [CRATE_ROOT ...]
Without a crate root it checks the workspace's four crates (shared, exporter, announcer and the
binary in src/). It parses with a small lexer (comments, strings, raw strings, chars, lifetimes),
not rustc, so `#[path]` attributes and macro-generated modules are not followed, and `$crate`
paths in macros are ignored. tests/module-cycles/ holds the fixtures it is tested on
(tests/module-cycles/run.sh).
"""

import os
import re
import sys

DEFAULT_ROOTS = [
    "shared/src/lib.rs",
    "exporter/src/lib.rs",
    "announcer/src/lib.rs",
    "src/main.rs",
    "test-support/src/lib.rs",
]


class ParseError(Exception):
    pass


def lex(text, path):
    """Tokens (kind, value, line) of Rust source; comments and literal contents are dropped."""
    toks = []
    i, n, line = 0, len(text), 1
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    raw_ident = re.compile(r"r#[A-Za-z_][A-Za-z0-9_]*")
    raw_str = re.compile(r'(?:b|c)?r(#*)"')
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise ParseError(f"{path}:{line}: unterminated block comment")
            line += text.count("\n", i, j)
            i = j
        elif (m := raw_str.match(text, i)) and (c in "rbc"):
            close = '"' + m.group(1)
            j = text.find(close, m.end())
            if j < 0:
                raise ParseError(f"{path}:{line}: unterminated raw string")
            j += len(close)
            line += text.count("\n", i, j)
            toks.append(("lit", "str", line))
            i = j
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1)):
            j = i + (1 if c == '"' else 2)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ParseError(f"{path}:{line}: unterminated string")
            toks.append(("lit", "str", line))
            line += text.count("\n", i, j + 1)
            i = j + 1
        elif c == "'" or (c == "b" and text.startswith("'", i + 1)):
            # A char literal ('a', '\n', '\u{1F600}', b'x') or a lifetime/label ('a, 'static).
            j = i + (1 if c == "'" else 2)
            if j < n and text[j] == "\\":
                k = text.find("'", j + 2)
                toks.append(("lit", "char", line))
                i = k + 1
            elif j + 1 < n and text[j + 1] == "'":
                toks.append(("lit", "char", line))
                i = j + 2
            else:
                m = ident.match(text, j)
                if m is None:
                    raise ParseError(f"{path}:{line}: cannot lex {text[i:i+10]!r}")
                toks.append(("lifetime", m.group(0), line))
                i = m.end()
        elif (m := raw_ident.match(text, i)) is not None:
            toks.append(("ident", m.group(0)[2:], line))
            i = m.end()
        elif (m := ident.match(text, i)) is not None:
            toks.append(("ident", m.group(0), line))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"[0-9][0-9A-Za-z_]*(?:\.[0-9][0-9A-Za-z_]*)?").match(text, i)
            toks.append(("lit", "num", line))
            i = m.end()
        elif text.startswith("::", i):
            toks.append(("punct", "::", line))
            i += 2
        elif c == "$" and ident.match(text, i + 1):
            m = ident.match(text, i + 1)
            toks.append(("ident", "$" + m.group(0), line))
            i = m.end()
        else:
            toks.append(("punct", c, line))
            i += 1
    return toks


class Module:
    def __init__(self, path, file, line):
        self.path = path  # tuple of segments under `crate`
        self.file = file
        self.line = line
        self.children = {}  # name -> Module
        self.uses = []  # (segments, line, file, text)
        self.parent = None

    def name(self):
        return "::".join(("crate",) + self.path)


def parse_use_tree(toks, i, prefix, out):
    """Parses one use tree at toks[i]; appends full segment lists to out; returns the next index."""
    segs = list(prefix)
    if toks[i][1] == "::":  # leading `::`: an extern crate path
        segs.append("::")
        i += 1
    while True:
        kind, val, _ = toks[i]
        if val == "{":
            i += 1
            while toks[i][1] != "}":
                i = parse_use_tree(toks, i, segs, out)
                if toks[i][1] == ",":
                    i += 1
            i += 1
            return i
        if val == "*":
            out.append(segs + ["*"])
            return i + 1
        if kind != "ident":
            raise ParseError(f"line {toks[i][2]}: unexpected {val!r} in a use tree")
        if not (val == "self" and segs):  # `a::{self, b}`: `self` is the prefix itself
            segs.append(val)
        i += 1
        if toks[i][1] == "::":
            i += 1
            continue
        if toks[i][1] == "as":
            i += 2
        out.append(segs)
        return i


def parse_file(file, mod, modules, crate_dir_of):
    with open(file, encoding="utf-8") as f:
        text = f.read()
    toks = lex(text, file)
    toks.append(("eof", "", toks[-1][2] if toks else 1))
    # Directory where `mod x;` declared directly in this file looks for x.rs / x/mod.rs.
    base = os.path.basename(file)
    if base in ("mod.rs", "lib.rs", "main.rs") or mod.parent is None:
        file_dir = os.path.dirname(file)
    else:
        file_dir = os.path.join(os.path.dirname(file), os.path.splitext(base)[0])

    # Stack of (module, brace depth at which it closes, directory for its `mod x;`).
    stack = [(mod, -1, file_dir)]
    depth = 0
    i = 0
    lines = text.split("\n")
    while toks[i][0] != "eof":
        kind, val, line = toks[i]
        cur, _, cur_dir = stack[-1]
        if val == "{":
            depth += 1
            i += 1
        elif val == "}":
            depth -= 1
            if depth == stack[-1][1]:
                stack.pop()
            i += 1
        elif kind == "ident" and val == "mod" and toks[i + 1][0] == "ident":
            name = toks[i + 1][1]
            nxt = toks[i + 2][1]
            child = Module(cur.path + (name,), file, line)
            child.parent = cur
            cur.children[name] = child
            modules.append(child)
            if nxt == "{":
                stack.append((child, depth, os.path.join(cur_dir, name)))
                depth += 1
                i += 3
            elif nxt == ";":
                cands = [os.path.join(cur_dir, name + ".rs"), os.path.join(cur_dir, name, "mod.rs")]
                found = [c for c in cands if os.path.isfile(c)]
                if not found:
                    raise ParseError(f"{file}:{line}: no file for `mod {name};` (looked for {cands})")
                child.file = found[0]
                parse_file(found[0], child, modules, crate_dir_of)
                i += 3
            else:
                i += 1
        elif kind == "ident" and val == "use" and (i == 0 or toks[i - 1][1] != "::"):
            trees = []
            try:
                j = parse_use_tree(toks, i + 1, [], trees)
            except (ParseError, IndexError) as e:
                raise ParseError(f"{file}:{line}: {e}")
            if toks[j][1] != ";":
                raise ParseError(f"{file}:{line}: use declaration does not end with ';'")
            end_line = toks[j][2]
            src = " ".join(s.strip() for s in lines[line - 1 : end_line])
            for segs in trees:
                cur.uses.append((segs, line, file, src, "use"))
            i = j + 1
        elif kind == "ident" and toks[i + 1][1] == "::" and (i == 0 or toks[i - 1][1] != "::"):
            # A qualified path in code: `resolve` keeps those that start inside the crate.
            segs = [val]
            j = i + 1
            while toks[j][1] == "::" and toks[j + 1][0] == "ident":
                segs.append(toks[j + 1][1])
                j += 2
            cur.uses.append((segs, line, file, lines[line - 1].strip(), "path"))
            i = j
        else:
            i += 1


def resolve(mod, segs, root):
    """The crate module a use path from `mod` lands in, or None when it leaves the crate."""
    if not segs or segs[0] == "::" or segs[0].startswith("$"):
        return None
    k = 0
    if segs[0] == "crate":
        cur, k = root, 1
    elif segs[0] == "self":
        cur, k = mod, 1
    elif segs[0] == "super":
        cur = mod
        while k < len(segs) and segs[k] == "super":
            if cur.parent is None:
                return None
            cur, k = cur.parent, k + 1
    elif segs[0] in mod.children:
        cur = mod
    else:
        return None  # another crate, a prelude name or an item of `mod` itself
    while k < len(segs) and segs[k] in cur.children:
        cur, k = cur.children[segs[k]], k + 1
    return cur


def sccs(nodes, edges):
    """Tarjan's strongly connected components (iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def check_crate(root_file, use_only, repo):
    root = Module((), root_file, 1)
    modules = [root]
    parse_file(root_file, root, modules, None)
    edges = {}  # name -> set(name)
    sites = {}  # (a, b) -> [(file, line, text)]
    for m in modules:
        for segs, line, file, text, kind in m.uses:
            if kind == "path" and use_only:
                continue
            target = resolve(m, segs, root)
            if target is None or target is m:
                continue
            a, b = m.name(), target.name()
            edges.setdefault(a, set()).add(b)
            site = (os.path.relpath(file, repo), line, text if kind == "use" else f"(path) {text}")
            if site not in sites.setdefault((a, b), []):
                sites[(a, b)].append(site)
    names = [m.name() for m in modules]
    cycles = [c for c in sccs(names, edges) if len(c) > 1]
    return modules, cycles, edges, sites


def main(argv):
    use_only = "--use-only" in argv
    args = [a for a in argv if a != "--use-only"]
    if any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    repo = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    roots = args or [os.path.join(repo, r) for r in DEFAULT_ROOTS]
    total = 0
    for root_file in roots:
        rel = os.path.relpath(root_file, repo) if not args else root_file
        try:
            modules, cycles, edges, sites = check_crate(root_file, use_only, repo)
        except (OSError, ParseError) as e:
            print(f"module-cycles: {rel}: {e}", file=sys.stderr)
            return 2
        nedges = sum(len(v) for v in edges.values())
        print(f"== {rel}: {len(modules)} modules, {nedges} import edges, {len(cycles)} cycle(s)")
        for comp in cycles:
            total += 1
            members = set(comp)
            print(f"cycle of {len(comp)} modules: {', '.join(comp)}")
            pairs = sorted(
                (a, b) for a in comp for b in edges.get(a, ()) if b in members and a < b and a in edges.get(b, ())
            )
            for a, b in pairs:
                print(f"  pair {a} <-> {b}")
            for a in comp:
                for b in sorted(edges.get(a, ())):
                    if b not in members:
                        continue
                    for file, line, text in sites[(a, b)]:
                        print(f"  {a} -> {b}  {file}:{line}  {text}")
    if total:
        print(f"module-cycles: {total} cycle(s) found: no module may import a module that imports it back")
        return 1
    print("module-cycles: no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
