"""The README's module table (section Architecture) against src/: every
module of src/ has exactly one row, and every row names a module that is
there. A module is a .c or .cc file's stem, or a header without one."""
import os
import re

from conftest import ROOT

SRC = os.path.join(ROOT, "src")


def modules_in_src():
    found = set()
    for name in os.listdir(SRC):
        stem, ext = os.path.splitext(name)
        if ext in (".c", ".cc"):
            found.add(stem)
        elif ext == ".h" and not any(os.path.exists(os.path.join(SRC, stem + e))
                                     for e in (".c", ".cc")):
            found.add(name)
    return found


def modules_in_readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| [^|]+ \| `([a-z0-9_]+(?:\.h)?)` \| [^|]+ \|$", section, re.M)
    assert rows, "no module table under ## Architecture"
    return rows


def test_every_module_of_src_has_one_row_and_every_row_a_module():
    rows = modules_in_readme()
    assert len(rows) == len(set(rows)), "a module listed twice: %s" % sorted(
        r for r in rows if rows.count(r) > 1)
    src = modules_in_src()
    assert sorted(src - set(rows)) == [], "in src/ but not in the README's module table"
    assert sorted(set(rows) - src) == [], "in the README's module table but not in src/"


def test_the_check_would_see_a_missing_module():
    """The test above bites: a module added to src/ without a row fails it."""
    rows = set(modules_in_readme())
    assert "pattern" in rows and "jsonschema.h" in rows
    assert modules_in_src() - (rows - {"pattern"}) == {"pattern"}
