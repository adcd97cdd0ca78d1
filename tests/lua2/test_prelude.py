"""Each script gets only the prelude parts it lists (its `-- Prelude:`
header lines, docs/PROTOCOL.md section 5), so a list that misses a part
would leave the script calling an undefined helper, which Redis reports
only on the path that calls it. These checks read the code instead of
running it: every name the assembled body uses is defined in it or is
one of Redis's Lua globals, and a script lists exactly the parts it uses,
those parts' own needs included.

    /usr/bin/python3 tests/lua2/test_prelude.py   prints each script's lines
"""

import os
import re

import pytest

import v2

SCRIPTS = sorted(f[:-4] for f in os.listdir(v2.LUA) if f.endswith(".lua") and not f.startswith("_"))

# The globals of Redis's Lua 5.1 sandbox a script may read.
REDIS_GLOBALS = {
    "redis", "cjson", "cmsgpack", "bit", "struct", "string", "table", "math", "KEYS", "ARGV",
    "tonumber", "tostring", "type", "unpack", "pairs", "ipairs", "error", "pcall", "select",
    "next", "assert", "setmetatable", "getmetatable", "rawget", "rawset", "xpcall",
}
KEYWORDS = set("and break do else elseif end false for function if in local nil not or repeat "
               "return then true until while".split())

_STRING_OR_COMMENT = re.compile(
    r"--\[(=*)\[.*?\]\1\]"        # long comment
    r"|--[^\n]*"                  # line comment
    r"|\[(=*)\[.*?\]\2\]"         # long string
    r"|'(?:\\.|[^'\\\n])*'"       # quoted strings
    r'|"(?:\\.|[^"\\\n])*"', re.S)


def code(text):
    """Lua source without its comments and string literals."""
    return _STRING_OR_COMMENT.sub(lambda m: " " if m.group(0).startswith("-") else "''", text)


def names_used(text):
    """Identifiers read or called: not fields (after '.' or ':') nor the
    keys of a table constructor ('{k = v, ...}')."""
    c = re.sub(r"([{,]\s*)[A-Za-z_]\w*\s*=(?!=)", r"\1", code(text))
    return set(re.findall(r"(?<![\w.:])([A-Za-z_]\w*)", c)) - KEYWORDS


def names_defined(text):
    """Names a chunk defines as locals anywhere, parameters and loop
    variables included."""
    c = code(text)
    out = set()
    for m in re.finditer(r"\blocal\s+function\s+(\w+)\s*\(([^)]*)\)", c):
        out.add(m.group(1))
        out.update(a.strip() for a in m.group(2).split(",") if a.strip() and a.strip() != "...")
    for m in re.finditer(r"\bfunction\s*\(([^)]*)\)", c):
        out.update(a.strip() for a in m.group(1).split(",") if a.strip() and a.strip() != "...")
    for m in re.finditer(r"\blocal\s+(?!function\b)([\w\s,]+?)(?:=|\n)", c):
        out.update(n.strip() for n in m.group(1).split(",") if n.strip())
    for m in re.finditer(r"\bfor\s+([\w\s,]+?)\s*(?:=|\bin\b)", c):
        out.update(n.strip() for n in m.group(1).split(",") if n.strip())
    return out


def top_defined(text):
    """Names a chunk defines at its top level (unindented local lines)."""
    out = set()
    for line in code(text).split("\n"):
        m = re.match(r"local\s+function\s+(\w+)", line) or re.match(r"local\s+([\w\s,]+?)\s*=", line)
        if m:
            out.update(n.strip() for n in m.group(1).split(","))
    return out


def parts():
    head, ps = v2.prelude_parts()
    return head, ps, {n: top_defined(t.decode()) for n, t in ps}


def needed_parts(source):
    """The parts a script's text uses, with the parts those use: the
    closure the script's `-- Prelude:` lines must list."""
    _, ps, defs = parts()
    owner = {}
    for n, d in defs.items():
        for name in d:
            owner.setdefault(name, n)
    text = {n: t.decode() for n, t in ps}
    need, todo = set(), [source]
    while todo:
        for name in names_used(todo.pop()):
            p = owner.get(name)
            if p and p not in need:
                need.add(p)
                todo.append(text[p])
    return [n for n, _ in ps if n in need]


def test_prelude_is_ascii_and_in_parts():
    head, ps, defs = parts()
    whole = open(os.path.join(v2.LUA, "_prelude.lua"), "rb").read()
    assert whole.isascii()
    assert head + b"".join(t for _, t in ps) == whole
    assert len({n for n, _ in ps}) == len(ps), "two parts of one name"
    assert all(re.fullmatch(r"\w+", n) for n, _ in ps)
    # The head holds comments only: it goes with every script.
    assert code(head.decode()).strip() == ""
    # A part defines what it is named after (its callers find it by that).
    for n, _ in ps:
        if n != "limits":
            assert n in defs[n] or any(d.startswith(n) for d in defs[n]), n


@pytest.mark.parametrize("name", SCRIPTS)
def test_prelude_lists_exactly_the_parts_used(name):
    source = open(os.path.join(v2.LUA, name + ".lua"), encoding="utf-8").read()
    listed = v2.declared_parts(source.encode())
    want = needed_parts(source)
    assert listed == want, "%s.lua: its header should say\n%s" % (name, "\n".join(lines(want)))


@pytest.mark.parametrize("name", SCRIPTS)
def test_prelude_body_reads_no_undefined_name(name):
    body = v2.assemble(name).decode()
    undefined = names_used(body) - names_defined(body) - REDIS_GLOBALS
    assert not undefined, "%s: the body reads %s, which it does not define" % (name, sorted(undefined))


def test_prelude_check_catches_a_missing_part():
    # The check itself: take's body without claim_one reads an undefined name.
    source = open(os.path.join(v2.LUA, "take.lua"), "rb").read()
    head, ps = v2.prelude_parts()
    want = set(v2.declared_parts(source)) - {"claim_one"}
    body = (head + b"".join(t for n, t in ps if n in want) + source).decode()
    assert "claim_one" in names_used(body) - names_defined(body) - REDIS_GLOBALS


def lines(names, width=76):
    out, cur = [], "-- Prelude:"
    for n in names:
        if len(cur) + 1 + len(n) > width:
            out.append(cur)
            cur = "-- Prelude:"
        cur += " " + n
    return out + [cur]


if __name__ == "__main__":
    for s in SCRIPTS:
        print("== " + s)
        print("\n".join(lines(needed_parts(open(os.path.join(v2.LUA, s + ".lua")).read()))))
