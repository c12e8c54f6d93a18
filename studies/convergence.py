"""Where each method's training ends up: long runs evaluated along the way, and the plateaus they reach.

    python -m studies.convergence                    # full_supervision, point_naive, ours on both toy presets
    python -m studies.convergence --datasets toy-stuff --methods point_naive --iterations 16000   # one longer curve
    python -m studies.convergence --set pretraining_steps=8000   # the same curves at an earlier recipe
    python -m studies.convergence --report-only      # the report from every finished curve, trained or recorded

Every table of this repository compares methods trained for a fixed budget; that comparison means
something only when the budget brings each method close to where it would end up anyway. This module
measures that ceiling: one long run per (dataset, method) on split 1 (the development split), seed 0,
with the recipe's defaults and the learning-rate schedule stretched over ``--iterations``, scored
every ``--every`` iterations on a fixed subset of the test images (the first ``--test-images``).

The **plateau** of a curve is the mean total mIoU of its last two evaluations; the report also gives
the gain over the last quarter of the run, which says whether the curve had stopped rising. The gain is read
from a least-squares line through every evaluation of the last quarter (a curve is *flat* when that line rose
at most 1 point); the difference between the last evaluation and the one at 3/4 of the run, the rule before,
is shown beside it: it reads one evaluation at each end, and consecutive evaluations differ by up to 2.4 points,
so one dip could decide it. A (dataset, method) may have curves of several lengths and recipes (a
curve's name is ``dataset/method/iterations``, followed by ``/field=value, ...`` where its config differs from
today's defaults); its plateau is the highest of theirs. The report (``reports/convergence.md``, ``.json``, ``figures/convergence.png``)
says where each method levels off at today's defaults (every score at its plateau, how far a run of each length
gets: ``levelling_off``), then divides the total mIoU of every run in ``reports/table1.csv`` (and the other tables of ``RATIO_TABLES``) by its
method's plateau: a preset is converged enough when that ratio is >= 0.9. Runs are resumable (checkpoint + curve, atomically) and
cached under ``runs/convergence/``. The report keeps every curve it already holds (``convergence.json`` records
each curve with its config and where it was trained), so a curve whose run folder is not on this machine stays
in it; a curve trained here again replaces its record. Delete ``convergence.json`` to start the report afresh.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pwslib.command_line import parse_overrides
from pwslib.config import TrainConfig, config_for
from pwslib.data.toy import GENERATOR_VERSION
from pwslib.metrics import evaluate_model
from pwslib.experiments.report import markdown_table
from pwslib.experiments.schedules import PRESET_SPLITS, SCHEDULES
from pwslib.io import CHECKOUT, DataError, one_line_errors, provenance, report_header, write_json_atomic, write_text_atomic
from pwslib.runs import CHECKPOINT, load_checkpoint
from pwslib.command_line import positive_whole, refuse_repeats
from pwslib.train import Trainer
from pwslib.viz.figures import convergence_figure

ROOT = CHECKOUT
METHODS = ("full_supervision", "point_naive", "ours")
DATASETS = ("toy-stuff", "toy-scene")  # the presets whose split-1 plateaus the tables are judged by
SCORES = ("base_miou", "novel_miou", "total_miou", "hiou")
SCORE_NAMES = {"base_miou": "base", "novel_miou": "novel", "total_miou": "total", "hiou": "hIoU"}
FLAT_GAIN = 1.0  # a curve is flat when its fitted line gained at most this many points of total mIoU over its last quarter
TARGET_RATIO = 0.9  # a preset's run is near its plateau at this share of it
EARLIER_RECIPES_FIGURE = "convergence_earlier_recipes.png"  # in archive/figures: the curves off today's recipe
SOURCE_KEYS = ("git_commit", "machine", "date_utc", "note")  # where a curve was trained, recorded with it
# The Table 1 results divided by the plateaus: (key in convergence.json, heading, CSV under the reports folder, split)
RATIO_TABLES = (
    ("quick", "`quick` preset", "table1.csv", PRESET_SPLITS["quick"]),
    ("full", "`full` preset", "full/table1.csv", PRESET_SPLITS["full"]),
    (
        "quick_3000",
        "`quick` preset before it moved to toy-stuff alone at 5,000 iterations: both presets at 3,000 iterations, "
        "today's recipe",
        "archive/quick_3000/table1.csv",
        PRESET_SPLITS["quick"],
    ),
    (
        "quick_5000",
        "`quick` preset at 5,000 iterations, measured for the main job's budget (the 16,000-step backbone, `point_naive`'s "
        "click losses at 1: the recipe before steps 14-15 of reports/protocol.md)",
        "archive/quick_variants/table1_quick_5000.csv",
        PRESET_SPLITS["quick"],
    ),
    (
        "quick_pretraining_32000",
        "`quick` preset from the 32,000-step backbone, `point_naive`'s click losses still at 1 (the recipe between steps "
        "14 and 15 of reports/protocol.md)",
        "archive/quick_variants/table1_quick_pretraining_32000.csv",
        PRESET_SPLITS["quick"],
    ),
)


def curve_run(
    config: TrainConfig, folder: Path, every: int, test_images: int, progress: bool = True, source: dict | None = None
) -> list[dict]:
    """Train ``config`` into ``folder``, scoring the first ``test_images`` test images every ``every`` steps.

    Returns the curve: one dict per evaluation (iteration, training seconds so far, scores). Resumes
    from ``folder`` when it holds a checkpoint and a curve of this config. ``source`` (``source_of``: where it
    trains) is saved with the curve, so a later report says where each curve came from.
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
        saved = {"config": config.to_dict(), "test_images": len(subset), "curve": curve}
        write_json_atomic(curve_path, {**saved, "source": source} if source else saved)
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


def name_parts(name: str) -> tuple[str, str, str, str]:
    """A ``curve_name``'s dataset, method, iterations and recipe difference ("" at today's defaults)."""
    dataset, method, iterations, *difference = name.split("/", 3)
    return dataset, method, iterations, difference[0] if difference else ""


def shown(name: str) -> str:
    """A curve's name as the report prints it: "toy-stuff/ours/16000 (pretraining_steps=8000)"."""
    dataset, method, iterations, difference = name_parts(name)
    return f"{dataset}/{method}/{iterations}" + (f" ({difference})" if difference else "")


def source_of(meta: dict) -> dict:
    """Where a curve was trained, as recorded with it: the commit, machine, date and note of ``meta``."""
    return {key: meta[key] for key in SOURCE_KEYS}


def config_from_name(name: str) -> TrainConfig:
    """The config a curve's name stands for (``curve_name``): today's defaults at its length, changed where the
    name says. Only reports written before configs were recorded need it; their names were written against
    the same defaults as today's."""
    dataset, method, iterations, difference = name_parts(name)
    pairs = re.split(r", (?=\w+=)", difference) if difference else []
    return config_for(method, dataset=dataset, split=1, seed=0, iterations=int(iterations), **parse_overrides(pairs))


def recorded_curves(report_json: Path) -> dict[str, dict]:
    """The curves a report already holds (``convergence.json``), by ``curve_name`` against today's defaults:
    ``{"config": TrainConfig, "curve": [...], "source": {git_commit, machine, date_utc, note}}``."""
    if not Path(report_json).exists():
        return {}
    recorded = json.loads(Path(report_json).read_text())
    configs, sources = recorded.get("configs", {}), recorded.get("sources", {})
    found = {}
    for name, curve in recorded["curves"].items():
        config = TrainConfig.from_saved(configs[name]) if name in configs else config_from_name(name)
        source = sources.get(name) or source_of(recorded["meta"])
        found[curve_name(config)] = {"config": config, "curve": curve, "source": source}
    return found


def finished_curves(runs_root: Path, datasets, methods, recorded: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every finished curve of ``datasets`` x ``methods`` on this toy generator, by ``curve_name``: those under
    ``runs_root`` (``{"config", "curve"}``, and ``"source"`` where ``curve_run`` saved one, else the record's) and
    those ``recorded`` by an earlier report (``recorded_curves``; a curve trained here replaces its record); per
    (dataset, method), today's recipe first, shortest first. A (dataset, method) without one is an error."""
    curves: dict[str, dict] = {}
    for dataset in datasets:
        for method in methods:
            found = {
                name: entry
                for name, entry in (recorded or {}).items()
                if (entry["config"].dataset, entry["config"].method) == (dataset, method)
            }
            for path in Path(runs_root).glob(f"{dataset}-{method}-*/curve.json"):
                saved = json.loads(path.read_text())
                config = TrainConfig.from_saved(saved["config"])
                if saved["curve"] and saved["curve"][-1]["iteration"] == config.iterations:
                    name = curve_name(config)
                    # a run saved before curves carried their source keeps the one its record names
                    source = saved.get("source") or found.get(name, {}).get("source")
                    found[name] = {"config": config, "curve": saved["curve"], **({"source": source} if source else {})}
            found = {name: entry for name, entry in found.items() if entry["config"].toy_generator == GENERATOR_VERSION}
            if not found:
                raise DataError(f"no finished curve of {dataset}/{method} in {runs_root}: run python -m studies.convergence")
            order = sorted(
                found, key=lambda name: (bool(recipe_difference(found[name]["config"])), found[name]["config"].iterations, name)
            )
            curves.update({name: found[name] for name in order})
    return curves


def plateau(curve: list[dict], score: str = "total_miou") -> dict:
    """The plateau (mean of the last two evaluations) and the gain over the last quarter of the run, two ways:
    ``fitted_quarter_gain``, the rise of the least-squares line through the evaluations from the last one at or
    before 3/4 of the run to the end, and ``last_quarter_gain``, the last evaluation minus that first one."""
    values = np.array([point[score] for point in curve], dtype=np.float64)
    iterations = np.array([point["iteration"] for point in curve], dtype=np.float64)
    before = np.flatnonzero(iterations <= iterations[-1] * 0.75)
    start = before[-1] if len(before) else 0
    quarter_x, quarter_y = iterations[start:], values[start:]
    slope = np.polyfit(quarter_x, quarter_y, 1)[0] if len(quarter_x) > 1 else 0.0
    return {
        "plateau": float(values[-2:].mean()),
        "fitted_quarter_gain": float(slope * (quarter_x[-1] - quarter_x[0])),
        "last_quarter_gain": float(values[-1] - values[start]),
        "best": float(values.max()),
    }


def is_flat(level: dict) -> bool:
    """Whether a curve's fitted line gained at most ``FLAT_GAIN`` over its last quarter."""
    return level["fitted_quarter_gain"] <= FLAT_GAIN


def flat_by_endpoints(level: dict) -> bool:
    """The rule before the fitted line: the last evaluation minus the one at 3/4 of the run, at most ``FLAT_GAIN``."""
    return level["last_quarter_gain"] <= FLAT_GAIN


def todays_curves(curves: dict[str, list[dict]]) -> dict[str, list[tuple[int, list[dict]]]]:
    """"dataset/method" -> its curves at today's defaults (``curve_name`` without a recipe), as (iterations, curve)
    from the shortest to the longest."""
    runs: dict[str, list[tuple[int, list[dict]]]] = {}
    for name, curve in curves.items():
        dataset, method, iterations, difference = name_parts(name)
        if not difference:
            runs.setdefault(f"{dataset}/{method}", []).append((int(iterations), curve))
    return {key: sorted(found, key=lambda run: run[0]) for key, found in runs.items()}


def evaluation_intervals(curves: dict[str, list[dict]]) -> str:
    """How often the curves were scored, read from the curves: "every 500 iterations", followed by the
    curves scored at another interval, e.g. " (1,000: toy-stuff/point_naive/48000)"."""
    intervals = {name: curve[0]["iteration"] for name, curve in curves.items()}
    common = Counter(intervals.values()).most_common(1)[0][0]
    others: dict[int, list[str]] = {}
    for name, interval in intervals.items():
        if interval != common:
            others.setdefault(interval, []).append(name)
    exceptions = "; ".join(f"{interval:,}: {', '.join(names)}" for interval, names in sorted(others.items()))
    return f"every {common:,} iterations" + (f" ({exceptions})" if exceptions else "")


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


def levelling_off(curves: dict[str, list[dict]], levels: dict[str, dict]) -> pd.DataFrame:
    """Where each method levels off at today's defaults: per (dataset, method) with a flat curve at today's
    defaults, the longest such curve's plateau of every score (mean of its last two evaluations), and the end of
    every run at today's defaults as a share of the method's plateau (``levels``: ``method_plateaus``), which says
    how long a run must be to reach ``TARGET_RATIO`` of it."""
    rows, todays = [], todays_curves(curves)
    for dataset in DATASETS:
        for method in METHODS:
            today = todays.get(f"{dataset}/{method}", [])
            flat = [(iterations, curve) for iterations, curve in today if is_flat(plateau(curve))]
            if not flat:
                continue
            iterations, curve = flat[-1]
            level = levels[f"{dataset}/{method}"]["plateau"]
            ends = ", ".join(f"{length:,}: {run[-1]['total_miou'] / level:.2f}" for length, run in today)
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "flat curve": iterations,
                    **{f"plateau {SCORE_NAMES[score]}": round(plateau(curve, score)["plateau"], 1) for score in SCORES},
                    "end of each run / plateau": ends,
                }
            )
    return pd.DataFrame(rows)


def plateau_gaps(levelled: pd.DataFrame) -> str:
    """One line per dataset: ``ours`` − ``point_naive`` at their plateaus (novel and total mIoU, hIoU)."""
    lines = []
    for dataset, group in levelled.groupby("dataset", sort=False):
        by_method = group.set_index("method")
        if {"ours", "point_naive"} <= set(by_method.index):
            gap = {name: by_method.loc["ours", f"plateau {name}"] - by_method.loc["point_naive", f"plateau {name}"]
                   for name in ("novel", "total", "hIoU")}
            lines.append(
                f"- {dataset}: `ours` − `point_naive` at their plateaus: {gap['novel']:+.1f} novel mIoU, "
                f"{gap['total']:+.1f} total mIoU, {gap['hIoU']:+.1f} hIoU\n"
            )
    return "".join(lines)


def run_generator(row: pd.Series) -> int | None:
    """The toy generator a table's run was trained on: its ``toy_generator`` column, else its run folder's
    config (older tables), else None (the run folder is not on this machine)."""
    if "toy_generator" in row and pd.notna(row["toy_generator"]):
        return int(row["toy_generator"])
    config = Path(str(row.get("run", ""))) / "config.json"
    return TrainConfig.from_saved(json.loads(config.read_text())).toy_generator if config.exists() else None


def trained_at(table_csv: Path) -> str:
    """The commits a Table 1 CSV's runs were trained at, as its ``git_commit`` column names them."""
    return ", ".join(f"`{commit}`" for commit in sorted(set(pd.read_csv(table_csv)["git_commit"].astype(str))))


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
                # three decimals, so that a ratio just under the target (0.896) does not print, or count, as 0.90
                "ratio": round(float(group["total_miou"].mean()) / level, 3),
            }
        )
    return pd.DataFrame(rows)


def source_lines(sources: dict[str, dict], meta: dict) -> str:
    """One bullet per earlier report whose recorded curves this report keeps: which curves, where and when."""
    earlier: dict[tuple, list[str]] = {}
    for name, source in sources.items():
        if source["git_commit"] != meta["git_commit"] or source["date_utc"] != meta["date_utc"]:
            earlier.setdefault(tuple(source[key] for key in SOURCE_KEYS), []).append(shown(name))
    return "".join(
        f"- recorded by an earlier report (commit `{commit}`, {machine}, {date} UTC; {note}): {', '.join(names)}\n"
        for (commit, machine, date, note), names in earlier.items()
    )


def levelling_section(levelled: pd.DataFrame) -> str:
    """The report's section on where each method levels off (``levelling_off``), or "" without a flat curve."""
    if levelled.empty:
        return ""
    return (
        "## Where each method levels off at today's defaults\n\n"
        "Each method's longest flat curve at today's defaults (`flat curve`: its iterations), the plateau of every "
        "score (mean of its last two evaluations), and the last evaluation of every run at today's defaults as a "
        "share of the method's plateau: a run of that many iterations ends there (one seed).\n\n"
        f"{markdown_table(levelled.set_index('dataset'))}\n{plateau_gaps(levelled)}\n"
    )


def write_report(
    curves: dict, meta: dict, reports: Path, configs: dict | None = None, sources: dict | None = None
) -> str:
    """``reports/convergence.md``, ``.json`` and ``figures/convergence.png`` from ``curves`` (``curve_name`` ->
    evaluations); ``configs`` and ``sources`` (where each curve was trained) are recorded in the JSON so that
    the next report keeps the curves (``recorded_curves``)."""
    sources = sources or {name: source_of(meta) for name in curves}
    plateaus = {name: plateau(curve) for name, curve in curves.items()}
    rows = []
    for name, curve in curves.items():
        dataset, method, _, difference = name_parts(name)
        last = curve[-1]
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "iterations": last["iteration"],
                "recipe": difference or "default",
                "train minutes": round(last["train_seconds"] / 60, 1),
                "plateau total mIoU": round(plateaus[name]["plateau"], 1),
                "gain over last quarter (fit)": round(plateaus[name]["fitted_quarter_gain"], 1),
                "flat": "yes" if is_flat(plateaus[name]) else "no",
                "gain (endpoints)": round(plateaus[name]["last_quarter_gain"], 1),
                "flat (endpoints)": "yes" if flat_by_endpoints(plateaus[name]) else "no",
                "final hIoU": round(last["hiou"], 1),
            }
        )
    summary = pd.DataFrame(rows).set_index("dataset")
    rising = [name for name, level in plateaus.items() if not is_flat(level)]
    levels = method_plateaus(plateaus)
    verdict = (
        f"**Not flat yet**: {'; '.join(shown(name) for name in rising)} still gained more than 1 point of total mIoU over the last quarter "
        "of the run, so those plateaus are lower bounds of the true ceiling and every ratio below is an upper "
        "bound of how close a preset gets.\n\n"
        if rising
        else "Every curve gained at most 1 point over the last quarter of its run: these are plateaus.\n\n"
    )
    disagree = [name for name, level in plateaus.items() if is_flat(level) != flat_by_endpoints(level)]
    if disagree:
        verdict += (
            f"**The two rules disagree** on {'; '.join(shown(name) for name in disagree)}: `flat` (the fitted line) "
            "decides, `flat (endpoints)` is the rule these curves were first judged by.\n\n"
        )
    todays = todays_curves(curves)
    untested = [key for key in levels if key not in todays]
    if untested:
        verdict += (
            f"**No curve at today's defaults yet**: {', '.join(untested)}: their plateaus come from an earlier recipe "
            "(the `recipe` column), and today's recipe may end higher, so their ratios below are upper bounds too.\n\n"
        )
    no_flat_today = [
        key for key in levels if key in todays and not any(is_flat(plateau(curve)) for _, curve in todays[key])
    ]
    if no_flat_today:
        verdict += f"**No flat curve at today's defaults yet**: {', '.join(no_flat_today)}.\n\n"
    elif not untested:
        verdict += "**At today's defaults** every method has a flat curve (`flat`: yes, `recipe`: default).\n\n"
    levelled = levelling_off(curves, levels)
    today = {name: curve for name, curve in curves.items() if not name_parts(name)[3]}
    today_plateaus = {f"{row['dataset']}/{row['method']}": row["plateau total"] for row in levelled.to_dict("records")}
    if today:
        convergence_figure(today, today_plateaus, SCHEDULES["quick"].iterations, reports / "figures" / "convergence.png")
    earlier = {name: curve for name, curve in curves.items() if name_parts(name)[3]}
    earlier_line = ""
    if earlier:
        convergence_figure(earlier, {}, path=reports / "archive" / "figures" / EARLIER_RECIPES_FIGURE)
        earlier_line = f"; the curves of earlier recipes are in [archive/figures/{EARLIER_RECIPES_FIGURE}](archive/figures/{EARLIER_RECIPES_FIGURE})"
    ratio_sections, preset_ratio_records = [], {}
    for label, heading, csv, split in RATIO_TABLES:
        csv = reports / csv
        ratios = preset_ratios(csv, levels)
        preset_ratio_records[label] = ratios.to_dict("records")
        if ratios.empty and csv.exists():
            ratio_sections.append(
                f"### {heading} ({csv.relative_to(reports)}): no runs of toy generator {GENERATOR_VERSION}\n"
            )
        if not ratios.empty:
            caveat = (
                ""
                if split == 1
                else f": its runs are on split {split}, trained at commit(s) {trained_at(csv)} (provenance in "
                f"{csv.relative_to(reports).with_suffix('.md')}), so the ratios to split 1's plateaus are indicative"
            )
            short = [f"{r.dataset}/{r.method} ({r.ratio:.3f})" for r in ratios.itertuples() if r.ratio < TARGET_RATIO]
            verdict_line = (
                f"\n**Below {TARGET_RATIO}**: {', '.join(short)}.\n" if short else f"\nEvery run reaches {TARGET_RATIO}.\n"
            )
            ratio_sections.append(
                f"### {heading} ({csv.relative_to(reports)}{caveat})\n\n"
                f"{markdown_table(ratios.set_index('dataset'))}{verdict_line}"
            )
    text = (
        report_header("Convergence: the plateau of each method", "`python -m studies.convergence`")
        + "Split 1, seed 0, the recipe's "
        f"defaults with the schedule stretched over the run; total mIoU on the first {meta['test_images']} "
        f"test images {evaluation_intervals(curves)}. Plateau = mean of the last two evaluations; a curve is flat "
        f"when the least-squares line through the evaluations of its last quarter rose at most {FLAT_GAIN:.0f} point "
        "(`gain (endpoints)`: the last evaluation minus the one at 3/4 of the run, the rule before); a method's plateau (for the ratios) is "
        "the highest of its curves', whatever their recipe (`recipe`: how a curve differs from today's defaults).\n\n"
        f"- today's defaults: `{json.dumps(meta['recipe'])}`\n"
        f"- commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC; "
        f"{meta['threads']} torch thread(s) per run ({meta['note']})\n"
        f"{source_lines(sources, meta)}\n"
        f"{markdown_table(summary)}\n{verdict}![convergence](figures/convergence.png)\n\n"
        "The figure shows the curves at today's recipe (dotted: each method's plateau; dashed: the main job's "
        f"iterations){earlier_line}.\n\n"
        f"{levelling_section(levelled)}"
        "## Presets against the plateaus (total mIoU of the preset's runs / plateau)\n\n"
        + ("\n".join(ratio_sections) if ratio_sections else "(no Table 1 results yet)\n")
    )
    write_text_atomic(reports / "convergence.md", text)
    write_json_atomic(
        reports / "convergence.json",
        {
            "meta": meta,
            "plateaus": plateaus,
            "method_plateaus": levels,
            "ratios": preset_ratio_records,
            "levelling_off": levelled.to_dict("records"),
            "curves": curves,
            "configs": configs or {},
            "sources": sources,
        },
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
    parser.add_argument("--threads", type=positive_whole, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--note", default="one run at a time", help="how the runs shared the machine")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "datasets", "methods", "iterations")
    with one_line_errors("the convergence study"):
        study(args)


def study(args: argparse.Namespace) -> None:
    """Train the curves still to train (unless --report-only), then write the report from every finished curve."""
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    wall_start = time.perf_counter()
    if not args.report_only:
        source = source_of(provenance(note=f"{torch.get_num_threads()} torch thread(s); {args.note}"))
        for dataset in args.datasets:
            for method in args.methods:
                for iterations in args.iterations:
                    config = config_for(method, dataset=dataset, split=1, seed=0, iterations=iterations, **overrides)
                    folder = args.runs_root / f"{dataset}-{method}-{config.key()}"
                    curve_run(config, folder, args.every, args.test_images, source=source)
    recorded = recorded_curves(args.reports / "convergence.json")
    found = finished_curves(args.runs_root, args.datasets, args.methods, recorded)
    curves = {name: entry["curve"] for name, entry in found.items()}
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
    configs = {name: entry["config"].to_dict() for name, entry in found.items()}
    sources = {name: entry.get("source", source_of(meta)) for name, entry in found.items()}
    print(write_report(curves, meta, args.reports, configs, sources))


if __name__ == "__main__":
    main()
