"""Tables 1-3 as functions of (datasets, split, seeds, schedule): cached runs -> tables with provenance.

A run is cached under ``<runs_root>/<dataset>-<method>-s<seed>-<config hash>``: re-running a table reuses
finished runs (their ``metrics.json``) and resumes interrupted ones from their checkpoint, so an
interrupted reproduction continues where it stopped. Each table is written as Markdown (mean ± std
over seeds where more than one seed ran, provenance on top) and CSV (one row per run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import re
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from pwslib.config import METHODS, TrainConfig, config_for, parse_overrides
from pwslib.data import REAL_BENCHMARKS, class_split, collate, ensure_points
from pwslib.data.summaries import UNSEPARATED_SHARE, thing_classes, unseparated_classes
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.io import DataError, check_writable, default_data_root, provenance, report_header, write_text_atomic
from pwslib.pretraining import PretrainingRecipe, pretrained_backbone
from pwslib.evaluate import load_model
from pwslib.tables import (
    SECONDS_FULL_MASKS,
    SECONDS_PER_CLICK_ROUND,
    TABLES,
    Rows,
    annotation_budget_points,
    select_rows,
)
from pwslib.runs import run_folder
from pwslib.train import run
from pwslib.model.maskformer import predict
from pwslib.viz import annotation_budget_figure, comparison_summary, table_chart, visual_comparison

SCORES = ("base_miou", "novel_miou", "total_miou", "hiou")
SCORE_NAMES = {"base_miou": "Base", "novel_miou": "Novel", "total_miou": "Total", "hiou": "hIoU"}
SEED_NOTE = (
    "mean ± std over seeds; `*`: differs from `ours` with its defaults by more than the seed noise (Welch's t-test "
    "over the seeds, p < 0.05)"
)


@dataclass(frozen=True)
class Schedule:
    """How much to train: the notebooks' ``parameters`` cell fills one of these."""

    seeds: tuple[int, ...] = (0,)
    iterations: int = 400
    batch_size: int = 16
    toy_options: dict = field(default_factory=dict)
    pretrained_backbone: bool = True  # False only in the library's own fast tests

    def __post_init__(self):
        """Checked when built, so a notebook parameter of the wrong type stops its first cell in one line."""
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise DataError(f"seeds must be a non-empty list of whole numbers, got {list(self.seeds)!r}")
        config_for("ours", **self.overrides())  # the config validates iterations, batch_size, toy_options

    def overrides(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "toy_options": dict(self.toy_options),
            "pretrained_backbone": self.pretrained_backbone,
        }


SCHEDULES = {  # the presets of runs (`--preset`, the notebooks' `preset`); the toy datasets are data.toy.PRESETS
    "ci": Schedule(seeds=(0,), iterations=4, batch_size=8, toy_options={"num_train": 24, "num_test": 8}),
    # Table 1's runs as near their plateaus (reports/convergence.md) as < 30 min on 2 cores allow
    # (reports/reproduction.json); what it leaves out is in PRESET_TABLES
    "quick": Schedule(seeds=(0,), iterations=3000),
    "full": Schedule(seeds=(0, 1, 2), iterations=800),  # every row, 3 seeds, about 2 h on 2 cores
}
# The split each preset reports on (reports/protocol.md): split 1 is the development split every default
# was tuned on; the reference results (`full`) are on split 2, which no setting was chosen by looking at.
PRESET_SPLITS = {"ci": 1, "quick": 1, "full": 2}
# Where a reproduction writes its tables, figures and executed notebooks, relative to the repository root.
PRESET_REPORTS = {"ci": "runs/ci/reports", "quick": "reports", "full": "reports/full"}


@dataclass(frozen=True)
class TablePlan:
    """What a preset trains of one table where it trains less than every row at its own schedule."""

    datasets: tuple[str, ...]  # the datasets the table's notebook trains on (its parameters cell's default)
    rows: tuple[str, ...] = ()  # these rows and the `ours` reference row; () for every row
    iterations: int | None = None  # None: the preset's schedule


# `quick` spends its 30 minutes on the three methods that carry Table 1's story (full supervision above, naive
# point supervision below, `ours` between), trained near their plateaus on both presets. Tables 2-3 keep, on
# toy-stuff, the rows the held-out tables found to matter beyond the seed noise (L_con: the transfer; L_in: it
# hurts; the keypoint head phi) at a third of Table 1's iterations: an ablation compares each row with `ours` at
# the same schedule. `full` trains every row of every table at its schedule.
PRESET_TABLES: dict[str, dict[str, TablePlan]] = {
    "quick": {
        "table1": TablePlan(("toy-stuff", "toy-scene"), ("full_supervision", "point_naive", "ours")),
        "table2": TablePlan(("toy-stuff",), ("w/o L_con", "+ L_in (L_in + L_ex + L_con + L_ctl)"), 1000),
        "table3": TablePlan(("toy-stuff",), ("keypoint head phi off",), 1000),
    },
}


def preset_rows(preset: str, table: str, rows: Rows) -> Rows:
    """The rows of ``table`` that ``preset`` trains (``PRESET_TABLES``; all of them where it names none)."""
    plan = PRESET_TABLES.get(preset, {}).get(table)
    return select_rows(rows, list(plan.rows)) if plan and plan.rows else rows


def table_iterations(preset: str, table: str | None) -> int:
    """The iterations ``preset`` trains ``table``'s runs for (its schedule's, unless ``PRESET_TABLES`` says less)."""
    plan = PRESET_TABLES.get(preset, {}).get(table)
    return plan.iterations if plan and plan.iterations else SCHEDULES[preset].iterations


def planned_configs(preset: str) -> list[TrainConfig]:
    """Every run of ``preset``'s tables that ``PRESET_TABLES`` plans, longest first: the reproduction trains them
    in one pool of processes before the notebooks read them (a notebook at a time would leave a core idle)."""
    configs = {}
    for table, plan in PRESET_TABLES.get(preset, {}).items():
        schedule = dataclasses.replace(SCHEDULES[preset], iterations=table_iterations(preset, table))
        for method, row_overrides in preset_rows(preset, table, TABLES[table][0]()).values():
            for dataset in plan.datasets:
                for seed in schedule.seeds:
                    config = grid_config(method, dataset, PRESET_SPLITS[preset], seed, schedule, row_overrides)
                    configs[config.key()] = config
    return sorted(configs.values(), key=lambda config: -config.iterations)


def preset_name(schedule: Schedule) -> str:
    """The name of the preset ``schedule`` is (``quick``, ``full``, ``ci``), or ``custom``."""
    return next((name for name, preset in SCHEDULES.items() if preset == schedule), "custom")


def grid_config(method: str, dataset: str, split: int, seed: int, schedule: Schedule, overrides: dict) -> TrainConfig:
    """The config of one run of a table: ``method`` at ``schedule``, then ``overrides`` (the row's and the grid's)."""
    return config_for(method, dataset=dataset, split=split, seed=seed, **{**schedule.overrides(), **overrides})


def run_cached(config: TrainConfig, runs_root: Path, progress: bool = True) -> dict:
    """The metrics of ``config``: read if finished, resumed if interrupted, trained otherwise."""
    folder = run_folder(runs_root, config)
    metrics_path = folder / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    return run(config, folder, resume=True, progress=progress)  # the folder is named by the config: continue it


def data_available(dataset: str) -> bool:
    """True for the toy presets; for a real benchmark, whether it was prepared (else say how)."""
    if dataset not in REAL_BENCHMARKS:
        return True
    folder = default_data_root() / dataset
    if (folder / "labels" / "train").is_dir():
        return True
    print(
        f"{dataset} is not prepared in {folder}. Get it with:\n"
        f"    python data_scripts/{dataset}.py --root {folder.parent}\n"
        f"(downloads the official archive, verifies it, converts labels, simulates clicks), then run this "
        f"notebook again. Nothing was trained."
    )
    return False


def run_grid(
    rows: dict[str, tuple[str, dict]],
    datasets: list[str],
    split: int,
    schedule: Schedule,
    runs_root: Path,
    progress: bool = True,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Train (or reuse) every (row, dataset, seed); one result row per run.

    ``rows`` maps a row name to ``(method, config overrides)``; ``overrides`` are config fields every run
    gets (e.g. ``{"precision": "float32"}`` on a GPU, so its runs share their keys with CPU runs). With ``workers`` > 1 (default: the
    ``PWSLIB_WORKERS`` environment variable, else 1) the runs still to train are shared out over that
    many processes, each with ``cores / workers`` torch threads: on 2 cores two 1-thread runs side by
    side deliver 1.2-1.3x the images/s of one 2-thread run (small convolutions do not use 2 threads fully).
    """
    workers = workers or int(os.environ.get("PWSLIB_WORKERS", "1"))
    planned = []
    for dataset in datasets:
        if not data_available(dataset):
            continue
        for name, (method, row_overrides) in rows.items():
            for seed in schedule.seeds:
                config = grid_config(method, dataset, split, seed, schedule, {**(overrides or {}), **row_overrides})
                planned.append((name, config, method == "ours" and not row_overrides))
    configs = list({config.key(): config for _, config, _ in planned}.values())
    metrics = train_all(configs, Path(runs_root), progress, workers)
    records = [
        {
            "row": name,
            "dataset": config.dataset,
            "method": config.method,
            "seed": config.seed,
            **{k: metrics[config.key()][k] for k in SCORES},
            "wall_seconds": metrics[config.key()].get("wall_seconds"),
            "git_commit": metrics[config.key()].get("git_commit"),
            "toy_generator": config.toy_generator,
            "run": str(run_folder(runs_root, config)),
            "reference": reference,  # `ours` with its defaults: the row the others are tested against
        }
        for name, config, reference in planned
    ]
    return pd.DataFrame.from_records(records)


def train_all(configs: list[TrainConfig], runs_root: Path, progress: bool, workers: int) -> dict:
    """Metrics of every config by its key: cached ones read, the rest trained here or in ``workers`` processes."""
    pending = [c for c in configs if not (run_folder(runs_root, c) / "metrics.json").exists()]
    if workers <= 1 or len(pending) <= 1:
        return {config.key(): run_cached(config, runs_root, progress) for config in configs}
    for recipe in {PretrainingRecipe.of_run(config) for config in pending} - {None}:
        pretrained_backbone(recipe)  # once, before the workers would race to pretrain it
    for data in {_training_data(config) for config in pending}:
        ensure_points(*data[:5], data_seed=data[5], **json.loads(data[6]))  # the toy scenes and clicks, once too
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        longest_first = sorted(pending, key=lambda config: -config.iterations)  # so that no core idles at the end
        futures = [pool.submit(run_cached, config, runs_root, False) for config in longest_first]
        for future in tqdm(futures, desc=f"runs ({workers} processes)", disable=not progress):
            future.result()
    return {config.key(): run_cached(config, runs_root, progress) for config in configs}


def _training_data(config: TrainConfig) -> tuple:
    """What a run's training set is made from, hashable: ``ensure_points``'s arguments."""
    return (
        config.dataset,
        config.split,
        config.points_per_class,
        config.point_rule,
        config.point_seed,
        config.data_seed,
        json.dumps(config.toy_options, sort_keys=True),
    )


def score_cells(results: pd.DataFrame) -> pd.DataFrame:
    """One record per (row, dataset, score): the mean and std over seeds (std 0 for one seed), whether the row
    differs from the reference row (``ours`` with its defaults, column ``reference``) beyond the seed noise
    (Welch's t-test, p < 0.05), and the table cell "mean ± std" with ``*`` for such a difference. What
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


def trained_runs(methods: list[str], dataset: str, split: int, schedule: Schedule, runs_root: Path) -> dict:
    """Restored ``Trainer`` of each method's run at the schedule's first seed: the cached run where one has
    finished, else trained now; says which, and how long each took to train and evaluate."""
    schedule = dataclasses.replace(schedule, seeds=schedule.seeds[:1])
    cached = set(finished_methods(methods, dataset, split, schedule, runs_root))
    results = run_grid({m: (m, {}) for m in methods}, [dataset], split, schedule, runs_root, progress=False)
    for row in results.itertuples():
        how = "reused the cached run" if row.row in cached else "trained it now"
        print(
            f"{row.row}: {how}: {schedule.iterations} iterations, {row.wall_seconds:.0f} s of training and "
            f"evaluation on {os.cpu_count()} cores (commit {row.git_commit}); total mIoU {row.total_miou:.1f}, "
            f"novel mIoU {row.novel_miou:.1f}"
        )
    return {row.row: load_model(Path(row.run)) for row in results.itertuples()}


def finished_methods(methods: list[str], dataset: str, split: int, schedule: Schedule, runs_root: Path) -> list[str]:
    """The methods whose run (first seed of ``schedule``) has finished in ``runs_root``."""
    return [
        method
        for method in methods
        if (
            run_folder(
                runs_root,
                config_for(method, dataset=dataset, split=split, seed=schedule.seeds[0], **schedule.overrides()),
            )
            / "metrics.json"
        ).exists()
    ]


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
            f"{100 * ours / means['full_supervision']:.0f} % of full supervision's {means['full_supervision']:.1f}"
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


def comparison_figure(
    dataset: str, split: int, schedule: Schedule, runs_root: Path, methods: Sequence[str] = METHODS, count: int = 6
):
    """Test images, ground truth and the prediction of each of ``methods`` (first seed), and one sentence per
    method on what it gets right there (``viz.comparison_summary``); None without data."""
    if not data_available(dataset):
        return None, {}
    predictions, batch, classes = {}, None, None
    for method in methods:
        config = config_for(method, dataset=dataset, split=split, seed=schedule.seeds[0], **schedule.overrides())
        run_cached(config, runs_root, progress=False)
        trainer = load_model(run_folder(runs_root, config))
        if batch is None:
            test = trainer.test_set
            batch = collate([test[i] for i in range(min(count, len(test)))])
            classes = trainer.split
        with torch.no_grad():
            predictions[method] = predict(trainer.model, batch["image"]).numpy()
    ground_truth = batch["full_label"].numpy()
    figure = visual_comparison(
        batch["image"].permute(0, 2, 3, 1).numpy(),
        ground_truth,
        predictions,
        classes,
        title=f"{dataset}: test images, ground truth and every method",
    )
    return figure, comparison_summary(ground_truth, predictions, classes)


def main(argv: list[str] | None = None) -> None:
    """``python -m pwslib.experiments table1 --datasets toy-stuff --seeds 0 1 2 --iterations 1500 --name quality``"""
    parser = argparse.ArgumentParser(description="Train (or reuse) the runs of one table and write it to reports/.")
    parser.add_argument("table", choices=list(TABLES))
    parser.add_argument("--datasets", nargs="+", default=["toy-stuff"])
    parser.add_argument("--split", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=TrainConfig.iterations)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--runs-root", type=Path, default=Path("runs/tables"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--name", default=None, help="file name of the table (default: the table's name)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: $PWSLIB_WORKERS, else 1)")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="config fields of every run, e.g. precision=float32"
    )
    parser.add_argument(
        "--rows", nargs="+", default=None, metavar="ROW", help="only these rows (and the `ours` reference row)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, title = TABLES[args.table]
    try:
        selected = select_rows(rows(), args.rows) if args.rows else rows()
    except ValueError as error:
        parser.error(str(error))
    try:
        schedule = Schedule(tuple(args.seeds), args.iterations, args.batch_size)
        check_writable(args.reports_dir, "choose a writable folder with --reports-dir")
        check_writable(args.runs_root, "choose a writable folder with --runs-root")
        results = run_grid(
            selected,
            args.datasets,
            args.split,
            schedule,
            args.runs_root,
            workers=args.workers,
            overrides=parse_overrides(args.set),
        )
    except (DataError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
    notes = (
        "\n" + "\n".join(compare_to_ours(results, d) for d in args.datasets) + "\n" if args.table == "table1" else ""
    )
    if args.table == "table3":
        unseparated = {d: unseparated_classes(d, args.split) for d in args.datasets if d in TOY_PRESETS}
        ious = class_iou(results, unseparated)
        if not ious.empty:
            notes += (
                "\nIoU of the novel classes with an unseparated partner (the data card's measure: at least "
                f"{UNSEPARATED_SHARE:.0f} % of their surroundings unlabelled in the base annotation), where a "
                "click is ambiguous and the confident bank is meant to help; mean ± std over seeds:\n\n"
                + markdown_table(ious)
                + "\n"
            )
    if args.table == "annotation_budget":
        figure = annotation_budget_figure(
            annotation_budget_points(results), f"split {args.split}, seeds {args.seeds}, {args.iterations} iterations"
        )
        figure_path = args.reports_dir / "figures" / f"{args.name or args.table}.png"
        figure_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(figure_path, dpi=90)
        notes = (
            f"\nAnnotation seconds per image: full masks {SECONDS_FULL_MASKS} s, {SECONDS_PER_CLICK_ROUND} s per click "
            "per class (PASCAL VOC 2012 timings of Bearman et al., ECCV 2016; further clicks assumed to cost as much "
            f"as the first). Figure: `figures/{figure_path.name}`.\n"
        )
    if not results.empty and args.table != "annotation_budget":
        name = args.name or args.table
        figure = table_chart(score_cells(results), f"{title}: split {args.split}, seeds {args.seeds}, {args.iterations} iterations")
        figure_path = args.reports_dir / "figures" / f"{name}.png"
        figure_path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(figure_path, dpi=90)
        notes += f"\nChart: `figures/{figure_path.name}`.\n"
    command = "`python -m pwslib.experiments " + shlex.join(sys.argv[1:] if argv is None else argv) + "`"
    print(write_table(results, args.name or args.table, title, args.reports_dir, schedule, args.split, notes, command))


if __name__ == "__main__":
    main()
