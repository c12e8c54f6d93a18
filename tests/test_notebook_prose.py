"""Notebook prose carries no typed result: a number that could be a result is computed in a code cell (a
``display(Markdown(...))`` from the results) or names its source in the same sentence."""

import json
import re

import pytest

from pwslib.io import CHECKOUT

NOTEBOOKS = sorted((CHECKOUT / "notebooks").glob("*.ipynb"))
RESULT_LIKE = re.compile(
    r"(?<![\w.`])[+−-]?\d+\.\d+(?![\w`])"  # 52.3, 0.98, +4.3
    r"|(?<![\w`])\d+(?:\.\d+)?\s?%"  # 94 %
    r"|(?<![\w`])[+−]\d+(?![\w`])"  # +4, −8
    r"|\b\d+(?:\.\d+)? points?\b"  # 8 points
)
SOURCE = re.compile(r"et al\.")  # a literature number names its paper in the same sentence
SETTINGS = {  # numbers in prose that set something rather than report it, and why each is allowed
    ("05_table1_methods", "0.9"): "prediction (b)'s bar, fixed before the runs (reports/protocol.md)",
    ("05_table1_methods", "0.3"): "the weight of point_naive's click losses, a setting of the recipe",
    ("03_model_and_keypoint_masks", "0.5"): "the level at which a mask's probability counts as covering a pixel",
}


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z*(`])", re.sub(r"\s+", " ", text))


def typed_results(notebook) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in sentences("".join(cell["source"])):
            if SOURCE.search(sentence):
                continue
            for match in RESULT_LIKE.finditer(sentence):
                if (notebook.stem, match.group().strip()) not in SETTINGS:
                    found.append(f"cell {index}: {match.group()!r} in “{sentence.strip()}”")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_markdown_types_no_result(notebook):
    assert typed_results(notebook) == []


def test_the_scan_catches_a_typed_result_and_spares_a_cited_one(tmp_path):
    cells = [
        {"cell_type": "markdown", "source": ["Without φ hIoU falls 8 points on toy-stuff. `ours` reaches 59.9."]},
        {"cell_type": "markdown", "source": ["Full masks take 239.7 s (Bearman et al., ECCV 2016). Split 1, 3 seeds."]},
        {"cell_type": "code", "source": ["print(59.9)"]},
    ]
    notebook = tmp_path / "09_example.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert [line.split(":")[0] for line in typed_results(notebook)] == ["cell 0", "cell 0"]
    assert "'8 points'" in typed_results(notebook)[0] and "'59.9'" in typed_results(notebook)[1]
