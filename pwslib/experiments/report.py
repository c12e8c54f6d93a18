"""A table's report: mean ± std over seeds, Welch's t-test against ``ours``, Markdown and CSV with provenance.

``score_cells`` is the one place a table's numbers become cells (``summarise`` tabulates them,
``viz.table_chart`` draws them); ``welch_p`` is the one significance test of every table, chart and report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from scipy import stats

from pwslib.experiments.schedules import Schedule, preset_name
from pwslib.io import provenance, report_header, write_text_atomic

SCORES = ("base_miou", "novel_miou", "total_miou", "hiou")


SCORE_NAMES = {"base_miou": "Base", "novel_miou": "Novel", "total_miou": "Total", "hiou": "hIoU"}


SEED_NOTE = (
    "mean ± std over seeds; `*`: differs from `ours` with its defaults by more than the seed noise (Welch's t-test "
    "over the seeds, p < 0.05)"
)


def score_cells(results: pd.DataFrame) -> pd.DataFrame:
    """One record per (row, dataset, score): the mean and std over seeds (std 0 for one seed), whether the row
    differs from the reference row (``ours`` with its defaults, column ``reference``) beyond the seed noise
    (Welch's t-test, p < 0.05), whether it is the reference row, and the table cell "mean ± std" with ``*`` for
    such a difference. What
    ``summarise`` tabulates and ``viz.table_chart`` draws."""
    is_reference = results["reference"].astype(bool)
    reference_rows = set(results.loc[is_reference, "row"])
    records = []
    for (row, dataset), group in results.groupby(["row", "dataset"], sort=False):
        reference_group = results[is_reference & (results["dataset"] == dataset)].drop_duplicates("run")
        for score in SCORES:
            values = group[score].astype(float)
            different = row not in reference_rows and differs(values, reference_group[score].astype(float))
            records.append(
                {
                    "row": row,
                    "dataset": dataset,
                    "score": SCORE_NAMES[score],
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if len(values) > 1 else 0.0,
                    "differs": different,
                    "reference": row in reference_rows,
                    "cell": mean_std(values) + ("*" if different else ""),
                }
            )
    return pd.DataFrame(records)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Rows x (dataset, score) with "mean ± std" over seeds (just the mean for a single seed), ``*`` where a cell
    differs from the reference row beyond the seed noise (``score_cells``)."""
    if results.empty:
        return pd.DataFrame()
    cells = {(c.row, f"{c.dataset} {c.score}"): c.cell for c in score_cells(results).itertuples()}
    rows = list(dict.fromkeys(results["row"]))
    columns = [f"{d} {SCORE_NAMES[s]}" for d in dict.fromkeys(results["dataset"]) for s in SCORES]
    return pd.DataFrame([[cells.get((r, c), "") for c in columns] for r in rows], index=rows, columns=columns)


def mean_std(values: pd.Series) -> str:
    """"mean ± std" over seeds (sample std), one decimal; just the mean for a single seed."""
    return f"{values.mean():.1f}" if len(values) == 1 else f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def welch_p(values: pd.Series, reference: pd.Series) -> float:
    """The p-value of Welch's t-test (unequal variances) between two sets of seeds: the one significance test of
    every table, chart and report here."""
    return float(stats.ttest_ind(values, reference, equal_var=False).pvalue)


def differs(values: pd.Series, reference: pd.Series, level: float = 0.05) -> bool:
    """Welch's t-test of two sets of seeds: True where p < ``level``."""
    if len(values) < 2 or len(reference) < 2:
        return False
    if values.std(ddof=1) == 0 and reference.std(ddof=1) == 0:
        return bool(values.mean() != reference.mean())
    return welch_p(values, reference) < level


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame (index = row names) as a Markdown table."""
    header = "| | " + " | ".join(frame.columns) + " |"
    rule = "|---" * (len(frame.columns) + 1) + "|"
    rows = [f"| {index} | " + " | ".join(str(v) for v in row) + " |" for index, row in zip(frame.index, frame.values)]
    return "\n".join([header, rule, *rows]) + "\n"


def write_table(
    results: pd.DataFrame,
    name: str,
    title: str,
    reports_dir: Path,
    schedule: Schedule,
    split: int,
    notes: str = "",
    command: str = "the notebooks (`python -m pwslib.reproduce`)",
) -> str:
    """Write ``<reports_dir>/<name>.md`` (summary + provenance) and ``<name>.csv`` (every run); return the Markdown."""
    reports_dir = Path(reports_dir)
    meta = provenance(
        split=split,
        seeds=list(schedule.seeds),
        iterations=schedule.iterations,
        batch_size=schedule.batch_size,
        toy_options=schedule.toy_options,
    )
    commits = sorted(set(results["git_commit"].dropna())) if not results.empty else []
    run_seconds = float(results["wall_seconds"].fillna(0).sum()) if not results.empty else 0.0
    summary = summarise(results)
    body = markdown_table(summary) if not summary.empty else "(no runs: the data is missing)"
    text = (
        report_header(title, command)
        + "mIoU in %, "
        f"{SEED_NOTE if len(schedule.seeds) > 1 else 'one seed'}.\n\n"
        f"- preset `{preset_name(schedule)}`: seeds {list(schedule.seeds)}, "
        f"{schedule.iterations} iterations at batch {schedule.batch_size}, "
        f"split {split}{', toy options ' + json.dumps(schedule.toy_options) if schedule.toy_options else ''}\n"
        f"- runs trained at commit(s) {', '.join(f'`{c}`' for c in commits) or '-'}; table written at "
        f"`{meta['git_commit']}` on {meta['date_utc']} UTC\n"
        f"- machine: {meta['machine']}\n"
        f"- summed training + evaluation wall time of the runs: {run_seconds / 60:.1f} min\n\n"
        f"{body}\n{notes}"
    )
    write_text_atomic(reports_dir / f"{name}.md", text)
    write_text_atomic(reports_dir / f"{name}.csv", results.to_csv(index=False))
    return text
