"""The body sent for each script of common/lua2 (docs/PROTOCOL.md section
5), as cmake/embed_lua.cmake builds it: _prelude.lua's head, the prelude
parts the script's `-- Prelude:` header lines list, in the prelude's
order, then the script. No dependencies: bench tools use it too."""

import os

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common", "lua2")
MARK = b"\n--@ "


def prelude_parts(lua=None):
    """_prelude.lua as (head, [(part name, text), ...]) in file order: a
    part runs from its `--@ <name>` line to the next one. A prelude with no
    parts (an older tree's) is all head."""
    text = open(os.path.join(lua or LUA, "_prelude.lua"), "rb").read()
    pieces = text.split(MARK)
    parts = []
    for p in pieces[1:]:
        p = b"--@ " + p
        parts.append((p[4:p.index(b"\n")].strip().decode(), p))
    head = pieces[0] + (b"\n" if parts else b"")
    parts = [(n, (t + b"\n") if i + 1 < len(parts) else t) for i, (n, t) in enumerate(parts)]
    return head, parts


def declared_parts(source):
    """The part names a script's `-- Prelude:` header lines list."""
    names = []
    for line in source.split(b"\n"):
        if line.startswith(b"-- Prelude:"):
            names += line[len(b"-- Prelude:"):].decode().split()
    return names


def assemble(name, lua=None):
    """The body sent for script name (docs/PROTOCOL.md section 5): the
    prelude's head, the parts the script lists in the prelude's order, the
    script."""
    lua = lua or LUA
    source = open(os.path.join(lua, name + ".lua"), "rb").read()
    head, parts = prelude_parts(lua)
    if not parts:
        return head + source
    want = set(declared_parts(source))
    known = {n for n, _ in parts}
    if want - known:
        raise ValueError("%s.lua lists unknown prelude parts: %s" % (name, ", ".join(sorted(want - known))))
    return head + b"".join(t for n, t in parts if n in want) + source
