"""The outcomes stated in reports/protocol.md are read back from the tables they cite: a table that moves
without its outcome paragraph fails here."""

import re
from pathlib import Path

import pandas as pd
import pytest

from pwslib.experiments.analysis import FULL_SHARE, format_p, predictions

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = " ".join((ROOT / "reports" / "protocol.md").read_text().split())  # line breaks do not matter


def outcome(report: str) -> str:
    """The **Outcome** paragraph that cites ``reports/<report>``."""
    found = re.search(rf"\*\*Outcome\*\* \(run after the commit above, `reports/{re.escape(report)}`.*?Nothing was changed", PROTOCOL)
    assert found, f"reports/protocol.md has no outcome paragraph citing reports/{report}"
    return found[0]


def results_of(report: str) -> dict:
    return predictions(pd.read_csv(ROOT / "reports" / report.replace(".md", ".csv")))


def check_outcome(text: str, found: dict, states_gaps: bool) -> None:
    """``text`` says which prediction held and states the p-values, shares (and gaps) of ``found``."""
    first_held = all(f["gap"] > 0 and f["p"] < 0.05 for f in found.values())
    assert ("prediction (a) held on both presets" in text) == first_held
    for dataset, numbers in found.items():
        stated_p = re.escape(format_p(numbers["p"]))
        assert re.search(rf"{dataset}[^;]*?{stated_p}", text), f"{dataset}: {format_p(numbers['p'])} not in {text!r}"
        second = "held" if numbers["share"] >= FULL_SHARE else "did not hold"
        assert re.search(rf"{second} on {dataset} \({numbers['share']:.3f}[ )]", text), f"{dataset}: (b) {second}, {numbers['share']:.3f}"
        if states_gaps:
            assert f"{numbers['gap']:+.1f} on {dataset}" in text, f"{dataset}: gap {numbers['gap']:+.1f}"


SPLIT4, SPLIT5 = "archive/split4/", "archive/split5/"


@pytest.mark.parametrize(
    "report, states_gaps",
    [
        ("table1_split6.md", True),
        (SPLIT5 + "table1_split5.md", True),
        (SPLIT4 + "table1_split4.md", False),
        (SPLIT4 + "table1_split4_3000.md", True),
    ],
)
def test_each_preregistered_outcome_states_the_numbers_of_its_table(report, states_gaps):
    check_outcome(outcome(report), results_of(report), states_gaps)


def test_the_outcome_check_fails_when_the_table_moves():
    found = results_of("table1_split6.md")
    text = outcome("table1_split6.md")
    for dataset, change in (("toy-scene", {"share": 0.95}), ("toy-stuff", {"gap": 6.0}), ("toy-scene", {"p": 0.2})):
        moved = {**found, dataset: {**found[dataset], **change}}
        with pytest.raises(AssertionError):
            check_outcome(text, moved, states_gaps=True)
