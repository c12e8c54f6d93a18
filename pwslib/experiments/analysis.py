"""Readers of finished tables for the notebooks' narratives: held-out tables by split, gaps to a reference
row, per-class IoU, the sentence comparing ``ours`` with the other methods."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pwslib.data import class_split
from pwslib.data.summaries import thing_classes
from pwslib.experiments.report import mean_std

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
        per_class = json.loads((Path(result.run) / "metrics.json").read_text())["per_class_iou"]
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


def per_class_results(results: pd.DataFrame, dataset: str):
    """(method -> class -> IoU of its first seed's run, ClassSplit) on ``dataset``."""
    subset = results[results["dataset"] == dataset]
    per_class, split = {}, None
    for row in subset.groupby("row", sort=False).head(1).itertuples():
        metrics = json.loads((Path(row.run) / "metrics.json").read_text())
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
