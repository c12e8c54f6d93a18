"""reports/README.md is the index of reports/: every committed file outside archive/ and executed/ is listed."""

import fnmatch
import re
import subprocess

from pwslib.io import CHECKOUT

REPORTS = CHECKOUT / "reports"


def listed_names(index: str) -> set[str]:
    """Every file name the index lists: link targets and `code` names; a row's "x.md / `.csv`" lists x.csv too,
    and a bare name in a row that links into figures/ is a figure."""
    names = set()
    for row in index.splitlines():
        first_cell = row.split(" | ")[0]
        named = re.findall(r"\]\(([^)]+)\)", first_cell) + re.findall(r"`([^`\s]*\.[a-z]+)`", first_cell)
        for name in named:
            if name.startswith("."):  # "/ `.csv`": the sibling of the row's first file
                stem = re.findall(r"\]\(([^)]+)\.[a-z]+\)", first_cell)[0]
                names.add(stem + name)
            elif name.endswith(".png") and "/" not in name and "figures/" in first_cell:
                names.add("figures/" + name)
            else:
                names.add(name)
    return names


def committed_reports() -> list[str]:
    files = subprocess.run(["git", "ls-files", "reports"], cwd=CHECKOUT, capture_output=True, text=True).stdout.split()
    return [f.removeprefix("reports/") for f in files if not f.startswith(("reports/archive/", "reports/executed/"))]


def test_every_committed_report_is_in_the_index():
    names = listed_names((REPORTS / "README.md").read_text())
    unlisted = [f for f in committed_reports() if f != "README.md" and not any(fnmatch.fnmatch(f, n) for n in names)]
    assert unlisted == [], f"reports/README.md does not list {unlisted}"


def test_the_index_lists_siblings_globs_and_bare_figure_names():
    index = "| [`t.md`](t.md) / `.csv`, [`figures/t.png`](figures/t.png), `u.png` | x |\n| `figures/a_*.png` | y |"
    assert {"t.md", "t.csv", "figures/t.png", "figures/u.png", "figures/a_*.png"} <= listed_names(index)
