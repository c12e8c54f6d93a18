"""Readers of finished tables for the notebooks' narratives and the README: held-out tables by split, gaps to a
reference row, per-class IoU, the sentences that say what a table shows, and the preregistered checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pwslib.data import class_split
from pwslib.data.summaries import thing_classes
from pwslib.experiments.report import differs, mean_std, score_cells, welch_p
from pwslib.io import CHECKOUT
from pwslib.runs import read_run_metrics

FULL_SHARE = 0.9  # prediction (b): ours reaches this share of full_supervision's hIoU
# Every preregistered check (reports/protocol.md), oldest first: its per-run results (relative to the checkout),
# its iterations per run, and the recipe it tested (backbone pretraining; point_naive's click-loss weight).
PREREGISTERED_CHECKS = (
    ("reports/archive/split4/table1_split4.csv", 1000, "8,000-step backbone; click losses 1"),
    ("reports/archive/split4/table1_split4_3000.csv", 3000, "8,000-step backbone; click losses 1"),
    ("reports/archive/split5/table1_split5.csv", 3000, "16,000-step backbone; click losses 1"),
    ("reports/table1_split6.csv", 5000, "today's: 32,000-step backbone; click losses 0.3"),
)

def format_p(p_value: float) -> str:
    """A p-value as read: three decimals, or "p < 0.001"."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def predictions(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per preset of a preregistered Table 1: the gap ``ours`` − ``point_naive`` in hIoU, its Welch ``p`` over the
    seeds and the ``share`` ``ours`` / ``full_supervision`` (means over the seeds)."""
    found = {}
    for dataset, group in results.groupby("dataset", sort=False):
        hiou = {method: runs["hiou"].astype(float) for method, runs in group.groupby("method")}
        found[dataset] = {
            "gap": hiou["ours"].mean() - hiou["point_naive"].mean(),
            "p": welch_p(hiou["ours"], hiou["point_naive"]),
            "share": hiou["ours"].mean() / hiou["full_supervision"].mean(),
        }
    return found


def outcomes(found: dict[str, float]) -> tuple[str, str]:
    """Whether prediction (a) (``ours`` ahead of ``point_naive`` beyond the seed noise) and (b) (``ours`` at
    ``FULL_SHARE`` of ``full_supervision`` or more) held."""
    first = "held" if found["gap"] > 0 and found["p"] < 0.05 else "did not hold"
    return first, "held" if found["share"] >= FULL_SHARE else "did not hold"


def preregistered_checks(root: Path = CHECKOUT) -> pd.DataFrame:
    """Every preregistered check (``PREREGISTERED_CHECKS``), one row per check and preset: both predictions'
    numbers and outcomes, the misses as well as the hits."""
    rows = []
    for path, iterations, recipe in PREREGISTERED_CHECKS:
        results = pd.read_csv(Path(root) / path)
        split = re.search(r"split(\d+)", path)[1]
        seeds = f"{results['seed'].min()}-{results['seed'].max()}"
        for dataset, found in predictions(results).items():
            first, second = outcomes(found)
            rows.append({
                "check": f"split {split}, seeds {seeds}, {iterations:,} iterations",
                "recipe": recipe,
                "preset": dataset,
                "(a) `ours` − `point_naive` hIoU": f"{found['gap']:+.1f} ({format_p(found['p'])}): {first}",
                "(b) `ours` / `full_supervision`": f"{found['share']:.3f}: {second}",
            })
    return pd.DataFrame(rows).set_index("check")


def heldout_results(folder: Path, table: str = "table1", suffix: str = "") -> dict[int, pd.DataFrame]:
    """Per-run results of a held-out table in ``folder`` (``<table>_split<N><suffix>.csv``, e.g. suffix
    ``_4000`` for the 4,000-iteration tables), by split."""
    name = re.compile(rf"{re.escape(table)}_split(\d+){re.escape(suffix)}")
    found = {int(match[1]): path for path in Path(folder).glob("*.csv") if (match := name.fullmatch(path.stem))}
    return {split: pd.read_csv(found[split]) for split in sorted(found)}


def base_and_novel_gaps(results: pd.DataFrame) -> pd.DataFrame:
    """Per method and dataset (seed means of a Table 1): base mIoU minus ``base_only``'s (what learning novel
    classes costs the base ones) and novel mIoU as a share of ``full_supervision``'s (what the weak labels give)."""
    means = results.groupby(["dataset", "row"], sort=False)[["base_miou", "novel_miou"]].mean()
    columns = {}
    for dataset in dict.fromkeys(results["dataset"]):
        scores = means.loc[dataset]
        columns[f"{dataset} base − base_only"] = (scores["base_miou"] - scores.loc["base_only", "base_miou"]).round(1)
        novel_share = 100 * scores["novel_miou"] / scores.loc["full_supervision", "novel_miou"]
        columns[f"{dataset} novel, % of full"] = novel_share.round(0)
    return pd.DataFrame(columns).drop(index=["base_only", "full_supervision"])


def class_iou(results: pd.DataFrame, classes: dict[str, list[str]]) -> pd.DataFrame:
    """IoU of chosen classes (``classes``: dataset -> class names), each row's mean ± std over its seeds'
    runs, from the runs' ``metrics.json``; a last column averages the chosen classes."""
    records = []
    for result in results.itertuples():
        per_class = read_run_metrics(Path(result.run))["per_class_iou"]
        for name in classes.get(result.dataset, []):
            records.append(
                {"row": result.row, "class": f"{result.dataset} {name}", "seed": result.seed, "iou": per_class[name]}
            )
    if not records:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records(records)
    averaged = frame.groupby(["row", "seed"], sort=False)["iou"].mean().reset_index().assign(**{"class": "mean"})
    grouped = pd.concat([frame, averaged]).groupby(["row", "class"], sort=False)["iou"]
    cells = grouped.agg(mean_std)
    return cells.unstack("class")[list(dict.fromkeys(frame["class"])) + ["mean"]].reindex(dict.fromkeys(frame["row"]))


def hiou_gaps(results: pd.DataFrame, dataset: str) -> dict[str, float]:
    """Mean hIoU of every Table 1 method on ``dataset`` (for the notebook's comparison sentence)."""
    subset = results[results["dataset"] == dataset]
    return {row: float(np.mean(group["hiou"])) for row, group in subset.groupby("row", sort=False)}


def compare_to_ours(results: pd.DataFrame, dataset: str) -> str:
    """A sentence per dataset comparing ``ours`` with the other methods, from the numbers."""
    means = hiou_gaps(results, dataset)
    if "ours" not in means:
        return f"{dataset}: no run of ours"
    ours = means["ours"]
    weak = {m: v for m, v in means.items() if m not in ("ours", "full_supervision", "base_only")}
    best_name = max(weak, key=weak.get) if weak else None
    parts = [f"{dataset}: ours reaches hIoU {ours:.1f}"]
    if "full_supervision" in means and means["full_supervision"] > 0:
        parts.append(
            f"{100 * ours / means['full_supervision']:.1f} % of full supervision's {means['full_supervision']:.1f}"
        )
    if best_name:
        parts.append(
            f"{ours - weak[best_name]:+.1f} points against the best other weak method ({best_name}, "
            f"{weak[best_name]:.1f})"
        )
    return "; ".join(parts) + "."


def drops_against(results: pd.DataFrame) -> pd.DataFrame:
    """Mean hIoU of each row and its difference to the reference row (``ours`` with its defaults, column
    ``reference``)."""
    if results.empty:
        return pd.DataFrame()
    means = results.groupby("row", sort=False)["hiou"].mean()
    reference = results.loc[results["reference"].astype(bool), "hiou"]
    if reference.empty:
        return pd.DataFrame({"hIoU": means})
    return pd.DataFrame({"hIoU": means.round(1), "difference": (means - reference.mean()).round(1)})


def noise_verdict(results: pd.DataFrame) -> str:
    """What a table says, as a sentence per dataset: the rows that differ from the reference row (``ours`` with
    its defaults) beyond the seed noise, per score, with the mean difference, and how many rows stay within it.
    Notebooks print it under a table, so their prose never carries a typed result."""
    if results.empty:
        return "No runs."
    cells = score_cells(results)
    sentences = []
    for dataset, group in cells.groupby("dataset", sort=False):
        others = group[~group["reference"]]
        base = group[group["reference"]].set_index("score")["mean"]
        beyond = [
            f"`{row}` ({', '.join(f'{c.score} {c.mean - base[c.score]:+.1f}' for c in cells_of.itertuples())})"
            for row, cells_of in others[others["differs"]].groupby("row", sort=False)
        ]
        rows = others["row"].nunique()
        within = rows - len(beyond)
        sentences.append(
            f"**{dataset}**: beyond the seed noise against `ours`: {'; '.join(beyond) if beyond else 'nothing'}."
            f" {within} of {rows} rows are within the noise on every score."
        )
    return " ".join(sentences)


def clicks_verdict(points: pd.DataFrame, dataset: str) -> str:
    """The annotation budget in one sentence: novel mIoU of ``ours`` from one click per class against
    ``point_naive`` from its most clicks, the gain of ``ours`` from its most clicks over one, and ``full_supervision``,
    each difference marked where it exceeds the seed noise (Welch's t-test, p < 0.05)."""
    subset = points[points["dataset"] == dataset]
    novel = {row: group["novel_miou"].astype(float) for row, group in subset.groupby("row", sort=False)}
    clicks = {row: int(match[1]) for row in novel if (match := re.search(r"(\d+) clicks?$", row))}

    def most(method: str) -> str:
        return max((row for row in clicks if row.startswith(f"{method}, ")), key=clicks.get)

    fewest = min((row for row in clicks if row.startswith("ours, ")), key=clicks.get)
    most_naive, most_ours = most("point_naive"), most("ours")

    def against(row: str, other: str) -> str:
        gap = novel[row].mean() - novel[other].mean()
        noise = "beyond the seed noise" if differs(novel[row], novel[other]) else "within the seed noise"
        return f"`{row}` {mean_std(novel[row])} against `{other}` {mean_std(novel[other])} ({gap:+.1f}, {noise})"

    parts = [against(fewest, most_naive), against(most_ours, fewest)]
    if "full_supervision" in novel:
        parts.append(against("full_supervision", most_ours))
    return f"**{dataset}**, novel mIoU: " + "; ".join(parts) + "."


def per_class_results(results: pd.DataFrame, dataset: str):
    """(method -> class -> IoU of its first seed's run, ClassSplit) on ``dataset``."""
    subset = results[results["dataset"] == dataset]
    per_class, split = {}, None
    for row in subset.groupby("row", sort=False).head(1).itertuples():
        metrics = read_run_metrics(Path(row.run))
        per_class[row.row] = metrics["per_class_iou"]
        split = class_split(dataset, metrics["config"]["split"])
    return per_class, split


def stuff_and_thing_iou(results: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Mean IoU of the novel stuff classes and of the novel things, per method (its first seed's run), with the
    best and worst novel class: on the toy, stuff regions are large and one click lands in the right texture,
    while things are small, several parts and often on a partner, so things trail stuff for every method."""
    per_class, split = per_class_results(results, dataset)
    things = thing_classes(dataset)
    if not per_class or things is None:
        return pd.DataFrame()
    names = split.class_names
    novel_things = [names[c] for c in split.novel_classes if c in things]
    novel_stuff = [names[c] for c in split.novel_classes if c not in things]
    rows = {}
    for method, ious in per_class.items():
        novel = {name: ious.get(name) for name in novel_things + novel_stuff if ious.get(name) is not None}
        if not novel:
            continue
        best, worst = max(novel, key=novel.get), min(novel, key=novel.get)
        rows[method] = {
            "novel stuff IoU": round(float(np.mean([novel[n] for n in novel_stuff if n in novel])), 1),
            "novel things IoU": round(float(np.mean([novel[n] for n in novel_things if n in novel])), 1),
            "best novel class": f"{best} ({novel[best]:.0f})",
            "worst novel class": f"{worst} ({novel[worst]:.0f})",
        }
    return pd.DataFrame(rows).T
