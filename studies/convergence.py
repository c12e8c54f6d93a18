"""Where each method's training ends up: long runs evaluated along the way, and the plateaus they reach.

    python -m studies.convergence                    # full_supervision, point_naive, ours on both toy presets
    python -m studies.convergence --datasets toy-stuff --methods point_naive --iterations 16000   # one longer curve
    python -m studies.convergence --set pretraining_steps=8000   # the same curves at an earlier recipe
    python -m studies.convergence --report-only      # the report from every finished curve in runs/convergence/

Every table of this repository compares methods trained for a fixed budget; that comparison means
something only when the budget brings each method close to where it would end up anyway. This module
measures that ceiling: one long run per (dataset, method) on split 1 (the development split), seed 0,
with the recipe's defaults and the learning-rate schedule stretched over ``--iterations``, scored
every ``--every`` iterations on a fixed subset of the test images (the first ``--test-images``).

The **plateau** of a curve is the mean total mIoU of its last two evaluations; the report also gives
the gain over the last quarter of the run, which says whether the curve had stopped rising (a curve is
*flat* when it gained at most 1 point). A (dataset, method) may have curves of several lengths and recipes (a
curve's name is ``dataset/method/iterations``, followed by ``/field=value, ...`` where its config differs from
today's defaults); its plateau is the highest of theirs. The report (``reports/convergence.md``, ``.json``, ``figures/convergence.png``) then
divides the total mIoU of every run in ``reports/table1.csv`` (and ``reports/full/table1.csv``) by its
method's plateau: a preset is converged enough when that ratio is >= 0.9. Runs are resumable (checkpoint + curve, atomically) and
cached under ``runs/convergence/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pwslib.config import TrainConfig, config_for, parse_overrides
from pwslib.data.toy import GENERATOR_VERSION
from pwslib.metrics import evaluate_model
from pwslib.experiments.report import markdown_table
from pwslib.experiments.schedules import PRESET_SPLITS
from pwslib.io import CHECKOUT, DataError, provenance, report_header, write_json_atomic, write_text_atomic
from pwslib.runs import CHECKPOINT, load_checkpoint
from pwslib.train import Trainer
from pwslib.viz.figures import convergence_figure

ROOT = CHECKOUT
METHODS = ("full_supervision", "point_naive", "ours")
DATASETS = ("toy-stuff", "toy-scene")
SCORES = ("base_miou", "novel_miou", "total_miou", "hiou")
FLAT_GAIN = 1.0  # a curve is flat when it gained at most this many points of total mIoU over its last quarter
TARGET_RATIO = 0.9  # a preset's run is near its plateau at this share of it


def curve_run(config: TrainConfig, folder: Path, every: int, test_images: int, progress: bool = True) -> list[dict]:
    """Train ``config`` into ``folder``, scoring the first ``test_images`` test images every ``every`` steps.

    Returns the curve: one dict per evaluation (iteration, training seconds so far, scores). Resumes
    from ``folder`` when it holds a checkpoint and a curve of this config.
    """
    folder = Path(folder)
    curve_path = folder / "curve.json"
    trainer = Trainer(config, folder, progress=progress)
    write_json_atomic(folder / "config.json", config.to_dict())
    curve: list[dict] = []
    if (folder / CHECKPOINT).exists() and curve_path.exists():
        trainer.restore(load_checkpoint(folder / CHECKPOINT, config))
        curve = [point for point in json.loads(curve_path.read_text())["curve"] if point["iteration"] <= trainer.step]
    subset = torch.utils.data.Subset(trainer.test_set, range(min(test_images, len(trainer.test_set))))
    seconds = curve[-1]["train_seconds"] if curve else 0.0
    while trainer.step < config.iterations:
        start = time.perf_counter()
        trainer.fit(stop_after=every - trainer.step % every, checkpoint_every=float("inf"))
        seconds += time.perf_counter() - start
        scores = evaluate_model(trainer.scored_model(), subset, trainer.split)
        curve.append({"iteration": trainer.step, "train_seconds": round(seconds, 2), **{k: scores[k] for k in SCORES}})
        write_json_atomic(curve_path, {"config": config.to_dict(), "test_images": len(subset), "curve": curve})
    return curve


def recipe_difference(config: TrainConfig) -> str:
    """How a curve's config differs from today's defaults at its length ("" when it does not), e.g.
    "pretraining_steps=8000"."""
    default = config_for(config.method, dataset=config.dataset, split=1, seed=0, iterations=config.iterations).to_dict()
    return ", ".join(f"{k}={v}" for k, v in config.to_dict().items() if default.get(k) != v)


def curve_name(config: TrainConfig) -> str:
    """``dataset/method/iterations``, then ``/<recipe_difference>`` for a curve off today's defaults."""
    difference = recipe_difference(config)
    return f"{config.dataset}/{config.method}/{config.iterations}" + (f"/{difference}" if difference else "")


def shown(name: str) -> str:
    """A curve's name as the report prints it: "toy-stuff/ours/16000 (pretraining_steps=8000)"."""
    head = "/".join(name.split("/")[:3])
    return head + (f" ({name.split('/', 3)[3]})" if name.count("/") > 2 else "")


def finished_curves(runs_root: Path, datasets, methods) -> dict[str, list[dict]]:
    """Every finished curve under ``runs_root`` of ``datasets`` x ``methods`` on this toy generator, by
    ``curve_name``: per (dataset, method), today's recipe first, shortest first; a (dataset, method) without
    one is an error."""
    curves: dict[str, list[dict]] = {}
    for dataset in datasets:
        for method in methods:
            found = []
            for path in Path(runs_root).glob(f"{dataset}-{method}-*/curve.json"):
                saved = json.loads(path.read_text())
                config = TrainConfig.from_saved(saved["config"])
                finished = saved["curve"] and saved["curve"][-1]["iteration"] == config.iterations
                if finished and config.toy_generator == GENERATOR_VERSION:
                    found.append((bool(recipe_difference(config)), config.iterations, curve_name(config), saved["curve"]))
            if not found:
                raise DataError(f"no finished curve of {dataset}/{method} in {runs_root}: run python -m studies.convergence")
            curves.update({name: curve for *_, name, curve in sorted(found, key=lambda item: item[:3])})
    return curves


def plateau(curve: list[dict], score: str = "total_miou") -> dict:
    """The plateau (mean of the last two evaluations) and the gain over the last quarter of the run."""
    values = np.array([point[score] for point in curve])
    iterations = np.array([point["iteration"] for point in curve])
    quarter = values[iterations <= iterations[-1] * 0.75]
    return {
        "plateau": float(values[-2:].mean()),
        "last_quarter_gain": float(values[-1] - (quarter[-1] if len(quarter) else values[0])),
        "best": float(values.max()),
    }


def method_plateaus(plateaus: dict[str, dict]) -> dict[str, dict]:
    """"dataset/method" -> the highest plateau of its curves (``curve_name``) and the curve that reached it
    (its name without dataset and method: "16000", or "16000/pretraining_steps=8000")."""
    levels: dict[str, dict] = {}
    for name, level in plateaus.items():
        dataset, method, curve = name.split("/", 2)
        key = f"{dataset}/{method}"
        if key not in levels or level["plateau"] > levels[key]["plateau"]:
            levels[key] = {"plateau": level["plateau"], "curve": curve}
    return levels


def run_generator(row: pd.Series) -> int | None:
    """The toy generator a table's run was trained on: its ``toy_generator`` column, else its run folder's
    config (older tables), else None (the run folder is not on this machine)."""
    if "toy_generator" in row and pd.notna(row["toy_generator"]):
        return int(row["toy_generator"])
    config = Path(str(row.get("run", ""))) / "config.json"
    return TrainConfig.from_saved(json.loads(config.read_text())).toy_generator if config.exists() else None


def preset_ratios(table_csv: Path, plateaus: dict) -> pd.DataFrame:
    """Total mIoU of every run of a Table 1 CSV divided by its (dataset, method) plateau (``method_plateaus``);
    only runs on the toy generator of the plateaus' curves (this code's) count."""
    if not table_csv.exists():
        return pd.DataFrame()
    runs = pd.read_csv(table_csv)
    runs = runs[runs["method"].isin(METHODS)]
    runs = runs[[run_generator(row) == GENERATOR_VERSION for _, row in runs.iterrows()]]
    rows = []
    for (dataset, method), group in runs.groupby(["dataset", "method"], sort=False):
        level = plateaus.get(f"{dataset}/{method}")
        if level is None:
            continue
        curve = level["curve"]
        level = level["plateau"]
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "seeds": len(group),
                "total_miou": round(float(group["total_miou"].mean()), 1),
                "plateau": round(level, 1),
                "plateau's curve": curve,
                "ratio": round(float(group["total_miou"].mean()) / level, 2),
            }
        )
    return pd.DataFrame(rows)


def write_report(curves: dict, meta: dict, reports: Path) -> str:

    plateaus = {name: plateau(curve) for name, curve in curves.items()}
    rows = []
    for name, curve in curves.items():
        dataset, method, length = name.split("/", 2)
        last = curve[-1]
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "iterations": last["iteration"],
                "recipe": length.split("/", 1)[1] if "/" in length else "default",
                "train minutes": round(last["train_seconds"] / 60, 1),
                "plateau total mIoU": round(plateaus[name]["plateau"], 1),
                "gain over last quarter": round(plateaus[name]["last_quarter_gain"], 1),
                "flat": "yes" if plateaus[name]["last_quarter_gain"] <= FLAT_GAIN else "no",
                "final hIoU": round(last["hiou"], 1),
            }
        )
    summary = pd.DataFrame(rows).set_index("dataset")
    rising = [name for name, level in plateaus.items() if level["last_quarter_gain"] > FLAT_GAIN]
    levels = method_plateaus(plateaus)
    verdict = (
        f"**Not flat yet**: {'; '.join(shown(name) for name in rising)} still gained more than 1 point of total mIoU over the last quarter "
        "of the run, so those plateaus are lower bounds of the true ceiling and every ratio below is an upper "
        "bound of how close a preset gets.\n\n"
        if rising
        else "Every curve gained at most 1 point over the last quarter of its run: these are plateaus.\n\n"
    )
    at_today = {"/".join(name.split("/")[:2]) for name in curves if name.count("/") == 2}
    untested = [key for key in levels if key not in at_today]
    if untested:
        verdict += (
            f"**No curve at today's defaults yet**: {', '.join(untested)}: their plateaus come from an earlier recipe "
            "(the `recipe` column), and today's recipe may end higher, so their ratios below are upper bounds too.\n\n"
        )
    figure = reports / "figures" / "convergence.png"
    convergence_figure(curves, figure)
    ratio_sections, preset_ratio_records = [], {}
    for label, csv in (("quick", reports / "table1.csv"), ("full", reports / "full" / "table1.csv")):
        ratios = preset_ratios(csv, levels)
        preset_ratio_records[label] = ratios.to_dict("records")
        split = PRESET_SPLITS[label]
        caveat = (
            ""
            if split == 1
            else f": its runs are on split {split} and may predate the recipe above (its provenance is in "
            f"{csv.relative_to(reports).with_suffix('.md')}), so the ratios to split 1's plateaus are indicative"
        )
        if ratios.empty and csv.exists():
            ratio_sections.append(
                f"### `{label}` preset ({csv.relative_to(reports)}): no runs of toy generator {GENERATOR_VERSION}\n"
            )
        if not ratios.empty:
            short = [f"{r.dataset}/{r.method} ({r.ratio:.2f})" for r in ratios.itertuples() if r.ratio < TARGET_RATIO]
            verdict_line = (
                f"\n**Below {TARGET_RATIO}**: {', '.join(short)}.\n" if short else f"\nEvery run reaches {TARGET_RATIO}.\n"
            )
            ratio_sections.append(
                f"### `{label}` preset ({csv.relative_to(reports)}{caveat})\n\n"
                f"{markdown_table(ratios.set_index('dataset'))}{verdict_line}"
            )
    text = (
        report_header("Convergence: the plateau of each method", "`python -m studies.convergence`")
        + "Split 1, seed 0, the recipe's "
        f"defaults with the schedule stretched over the run; total mIoU on the first {meta['test_images']} "
        f"test images every {meta['every']} iterations. Plateau = mean of the last two evaluations; a curve is flat "
        f"when it gained at most {FLAT_GAIN:.0f} point over its last quarter; a method's plateau (for the ratios) is "
        "the highest of its curves', whatever their recipe (`recipe`: how a curve differs from today's defaults).\n\n"
        f"- today's defaults: `{json.dumps(meta['recipe'])}`\n"
        f"- commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC; "
        f"{meta['threads']} torch thread(s) per run ({meta['note']})\n\n"
        f"{markdown_table(summary)}\n{verdict}![convergence](figures/{figure.name})\n\n"
        "## Presets against the plateaus (total mIoU of the preset's runs / plateau)\n\n"
        + ("\n".join(ratio_sections) if ratio_sections else "(no Table 1 results yet)\n")
    )
    write_text_atomic(reports / "convergence.md", text)
    write_json_atomic(
        reports / "convergence.json",
        {"meta": meta, "plateaus": plateaus, "method_plateaus": levels, "ratios": preset_ratio_records, "curves": curves},
    )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--iterations", type=int, nargs="+", default=[8000], help="one curve per length")
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--test-images", type=int, default=500, help="the first N test images (500: all, as the tables)")
    parser.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "convergence")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--report-only", action="store_true", help="train nothing: the report from the finished curves")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides of every run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--note", default="one run at a time", help="how the runs shared the machine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    wall_start = time.perf_counter()
    if not args.report_only:
        for dataset in args.datasets:
            for method in args.methods:
                for iterations in args.iterations:
                    config = config_for(method, dataset=dataset, split=1, seed=0, iterations=iterations, **overrides)
                    curve_run(config, args.runs_root / f"{dataset}-{method}-{config.key()}", args.every, args.test_images)
    curves = finished_curves(args.runs_root, args.datasets, args.methods)
    recipe_fields = (
        "learning_rate",
        "warmup_iterations",
        "batch_size",
        "backbone_widths",
        "embedding_dim",
        "pretrained_backbone",
        "pretraining_steps",
        "precision",
    )
    recipe = {k: v for k, v in config_for("ours").to_dict().items() if k in recipe_fields}
    meta = provenance(
        iterations=sorted({curve[-1]["iteration"] for curve in curves.values()}),
        every=args.every,
        test_images=args.test_images,
        recipe=recipe,
        threads=torch.get_num_threads(),
        note=args.note,
        wall_seconds=round(time.perf_counter() - wall_start, 1),
    )
    print(write_report(curves, meta, args.reports))


if __name__ == "__main__":
    main()
