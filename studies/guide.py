"""The README's results, written from the report they cite (never typed by hand).

    python -m studies.guide           # rewrites the block between the README's results markers

The block is the preregistered Table 1 at 5,000 iterations (``reports/table1_split6.csv``,
``reports/protocol.md``): base mIoU, novel mIoU and hIoU of every method it trained on both presets, mean ± std
over the seeds, ``*`` where a row differs from ``ours`` beyond the seed noise, then the two predictions and
whether each held.
"""

from __future__ import annotations

import argparse

import pandas as pd

from pwslib.experiments.report import markdown_table, summarise, welch_p
from pwslib.io import CHECKOUT, DataError, one_line_errors, write_text_atomic

ROOT = CHECKOUT
README = ROOT / "README.md"
RESULTS = ROOT / "reports" / "table1_split6.csv"
BEGIN = "<!-- results: written by `python -m studies.guide` from reports/table1_split6.csv -->"
END = "<!-- end of results -->"
SHOWN = ("Base", "Novel", "hIoU")  # the columns of the README table, per preset
FULL_SHARE = 0.9  # prediction (b): ours reaches this share of full_supervision's hIoU


def format_p(p_value: float) -> str:
    """A p-value as read: three decimals, or "p < 0.001"."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def predictions(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per preset: the gap ``ours`` − ``point_naive`` in hIoU, its Welch ``p`` over the seeds and the ``share``
    ``ours`` / ``full_supervision`` (means over the seeds)."""
    found = {}
    for dataset, group in results.groupby("dataset", sort=False):
        hiou = {method: runs["hiou"].astype(float) for method, runs in group.groupby("method")}
        found[dataset] = {
            "gap": hiou["ours"].mean() - hiou["point_naive"].mean(),
            "p": welch_p(hiou["ours"], hiou["point_naive"]),
            "share": hiou["ours"].mean() / hiou["full_supervision"].mean(),
        }
    return found


def prediction_lines(results: pd.DataFrame) -> list[str]:
    """Per preset: (a) ours − point_naive hIoU with Welch's p over the seeds, (b) ours / full_supervision hIoU."""
    lines = []
    for dataset, found in predictions(results).items():
        first = "held" if found["gap"] > 0 and found["p"] < 0.05 else "did not hold"
        second = "held" if found["share"] >= FULL_SHARE else "did not hold"
        lines.append(
            f"- {dataset}: (a) `ours` − `point_naive` = {found['gap']:+.1f} hIoU (Welch {format_p(found['p'])}): "
            f"{first}; (b) `ours` / `full_supervision` = {found['share']:.3f} (the bar: {FULL_SHARE}): {second}."
        )
    return lines


def results_block(results: pd.DataFrame) -> str:
    """The README's results block for the per-run results of the preregistered Table 1."""
    summary = summarise(results)
    columns = [c for c in summary.columns if c.rsplit(" ", 1)[-1] in SHOWN]
    seeds = ", ".join(str(s) for s in sorted(set(results["seed"])))
    return "\n".join(
        [
            BEGIN,
            "",
            markdown_table(summary[columns]).rstrip(),
            "",
            f"mIoU / hIoU in %, mean ± std over seeds {seeds}; `*`: differs from `ours` beyond the seed noise "
            "(Welch's t-test, p < 0.05). The preregistered predictions:",
            "",
            *prediction_lines(results),
            "",
            END,
        ]
    )


def replace_block(text: str, block: str) -> str:
    """``text`` with the part from BEGIN to END replaced by ``block``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the README has no results markers ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    return head + block + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    with one_line_errors("the guide"):
        text = README.read_text()
        try:
            updated = replace_block(text, results_block(pd.read_csv(RESULTS)))
        except ValueError as error:
            raise DataError(str(error)) from error
        write_text_atomic(README, updated)


if __name__ == "__main__":
    main()
