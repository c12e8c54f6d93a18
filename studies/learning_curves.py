"""When does keypoint-to-mask transfer help? Learning curves of three methods on three presets, with seeds.

    python -m studies.learning_curves                      # 3 presets x 3 methods x 3 seeds; resumable
    python -m studies.learning_curves --presets toy-scene --seeds 0   # a part of the grid
    python -m studies.learning_curves --report-only        # the report from the runs trained so far

Every table compares methods at one budget. A method that learns faster from clicks can lead at the budget and
still end level (on toy-stuff split 1, ``ours`` led ``point_naive`` at 5,000 iterations and not at the plateau), so
this study follows ``point_naive``, ``ours`` and ``full_supervision`` from the start to a flat curve, on a
**reporting split** of each toy preset (its novel classes disjoint from the development split's:
``ToyPreset.reporting_splits``), split 7, the one preregistered in ``reports/protocol.md``, seeds 0, 1, 2, scored every ``--every`` iterations (1,000: a sixteenth of a curve) on the test images
(``studies.convergence.curve_run``, resumable from checkpoints). The learning-rate schedule is stretched over
``--iterations``; the **budget** is read from separate runs trained at the main job's schedule (5,000 iterations),
so a budget number is what the main job delivers, not a point of a longer schedule. Where a curve is not flat
by the convergence rule, seed 0 of its method is trained again over twice the iterations, and the report shows
that longer curve beside the 3-seed ones.

For each preset the report gives hIoU at the budget and at the plateau (the mean of a curve's last two
evaluations), mean ± std over seeds with Welch's test of ``ours`` against each baseline, whether every curve is
flat (``studies.convergence.is_flat``, on hIoU), the iterations each method needs to reach 0.9x
``full_supervision``'s plateau (first evaluation where its seed mean does, on the stretched schedule), and puts
the gain of ``ours`` over ``point_naive`` beside the data card's click probe on the same split: how much one
click tells a network on that preset. Writes ``reports/learning_curves.{md,csv,json}`` and two figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from pwslib.command_line import parse_overrides
from pwslib.config import config_for
from pwslib.data.toy import PRESETS
from pwslib.experiments.grid import run_cached
from pwslib.experiments.report import differs, markdown_table, mean_std, welch_p
from pwslib.io import CHECKOUT, DataError, one_line_errors, provenance, report_header, save_figure, write_json_atomic, write_text_atomic
from pwslib.runs import run_folder
from pwslib.command_line import positive_whole, refuse_repeats
from studies.convergence import curve_run, is_flat, plateau, source_of

ROOT = CHECKOUT
METHODS = ("point_naive", "ours", "full_supervision")
SEEDS = (0, 1, 2)
ITERATIONS = 16000  # split 1: every method at >= 0.97 of its plateau by 16,000 iterations (reports/convergence.md)
BUDGET = 5000  # the main job's iterations per run
TARGET_SHARE = 0.9  # of full_supervision's plateau
CONTINUED_LENGTH = 2  # a curve not flat by ITERATIONS is trained again, seed 0, over this many times as many
SCORE = "hiou"


SPLIT = 7  # preregistered in reports/protocol.md: the reporting split of both presets that no run had used


def grid_configs(presets, methods, seeds, iterations: int, overrides: dict) -> list:
    """Every curve's config, ordered so that each (preset, seed) finishes all its methods before the next seed."""
    return [
        config_for(method, dataset=preset, split=SPLIT, seed=seed, iterations=iterations, **overrides)
        for seed in seeds
        for preset in presets
        for method in methods
    ]


def curve_folder(runs_root: Path, config) -> Path:
    return run_folder(Path(runs_root) / "curves", config)


def read_curves(runs_root: Path, configs) -> pd.DataFrame:
    """One row per evaluation of every finished curve among ``configs`` (preset, method, seed, iteration, scores)."""
    rows = []
    for config in configs:
        path = curve_folder(runs_root, config) / "curve.json"
        if not path.exists():
            continue
        curve = json.loads(path.read_text())["curve"]
        if not curve or curve[-1]["iteration"] != config.iterations:
            continue
        for point in curve:
            rows.append({"preset": config.dataset, "method": config.method, "seed": config.seed, **point})
    return pd.DataFrame.from_records(rows)


def read_budget_runs(runs_root: Path, configs) -> pd.DataFrame:
    """The finished budget runs among ``configs``: preset, method, seed and their test scores."""
    rows = []
    for config in configs:
        path = run_folder(Path(runs_root) / "budget", config) / "metrics.json"
        if path.exists():
            metrics = json.loads(path.read_text())
            rows.append({"preset": config.dataset, "method": config.method, "seed": config.seed, SCORE: metrics[SCORE]})
    return pd.DataFrame.from_records(rows)


def curve_plateaus(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (preset, method, seed): the plateau of its hIoU curve and its fitted gain over the last quarter."""
    rows = []
    for (preset, method, seed), group in curves.groupby(["preset", "method", "seed"]):
        level = plateau(group.sort_values("iteration").to_dict("records"), SCORE)
        rows.append({"preset": preset, "method": method, "seed": seed, **level})
    return pd.DataFrame.from_records(rows)


def iterations_to_reach(curves: pd.DataFrame, preset: str, method: str, target: float) -> int | None:
    """The first evaluated iteration where ``method``'s seed-mean hIoU on ``preset`` reaches ``target``."""
    mean = curves[(curves.preset == preset) & (curves.method == method)].groupby("iteration")[SCORE].mean()
    reached = mean[mean >= target]
    return int(reached.index.min()) if len(reached) else None


def not_flat(curves: pd.DataFrame) -> list[tuple[str, str]]:
    """The (preset, method) pairs with a curve that is not flat (any seed; ``studies.convergence.is_flat``'s rule on
    hIoU): their plateaus are lower bounds, so seed 0 is trained again over a longer schedule."""
    if curves.empty:
        return []
    levels = curve_plateaus(curves)
    return sorted({(row["preset"], row["method"]) for row in levels.to_dict("records") if not is_flat(row)})


def continued_configs(curves: pd.DataFrame, iterations: int, overrides: dict) -> list:
    """Seed 0 of every pair ``not_flat`` names, over ``CONTINUED_LENGTH`` x ``iterations`` (the schedule stretched)."""
    return [
        grid_configs([preset], [method], [0], CONTINUED_LENGTH * iterations, overrides)[0]
        for preset, method in not_flat(curves)
    ]


def continued_table(continued: pd.DataFrame | None) -> pd.DataFrame:
    """Per continued curve: its length, plateau, fitted gain over its last quarter and whether it is flat now."""
    if continued is None or continued.empty:
        return pd.DataFrame()
    levels = curve_plateaus(continued)
    lengths = continued.groupby(["preset", "method", "seed"])["iteration"].max()
    return pd.DataFrame.from_records(
        {
            "preset": row.preset,
            "method": row.method,
            "seed": row.seed,
            "iterations": f"{lengths[(row.preset, row.method, row.seed)]:,}",
            "plateau": f"{row.plateau:.1f}",
            "gain over last quarter (fit)": f"{row.fitted_quarter_gain:+.1f}",
            "flat": "yes" if is_flat(row._asdict()) else "no",
        }
        for row in levels.itertuples(index=False)
    )


def click_probe_ratios(datacard_json: Path) -> dict[str, dict[int, float]]:
    """The data card's click-probe ratio per preset and split (``{preset: {split: ratio}}``)."""
    if not Path(datacard_json).exists():
        return {}
    card = json.loads(Path(datacard_json).read_text())
    ratios: dict[str, dict[int, float]] = {}
    for entry in card["presets"]:
        for probe in entry.get("click_probes", [entry["click_probe"]] if "click_probe" in entry else []):
            ratios.setdefault(entry["preset"], {})[int(probe["split"])] = float(probe["novel_ratio"])
    return ratios


def _cell(values: pd.Series, reference: pd.Series | None) -> str:
    text = mean_std(values)
    return text + ("*" if reference is not None and differs(values, reference) else "")


def _gap(ours: pd.Series, other: pd.Series) -> str:
    if ours.empty or other.empty:
        return "-"
    gap = ours.mean() - other.mean()
    if len(ours) < 2 or len(other) < 2:
        return f"{gap:+.1f}"
    return f"{gap:+.1f} (Welch p = {welch_p(ours, other):.3f})"


def summary(curves: pd.DataFrame, budget: pd.DataFrame, probes: dict) -> pd.DataFrame:
    """One row per preset: hIoU at the budget and at the plateau per method, the gaps, ours / full and the
    iterations to 0.9x full's plateau, beside the click probe's ratio on the same split."""
    columns = ["preset", "method", "seed"]
    levels = curve_plateaus(curves) if not curves.empty else pd.DataFrame(columns=[*columns, "plateau", "fitted_quarter_gain"])
    budget = budget if not budget.empty else pd.DataFrame(columns=[*columns, SCORE])
    rows = []
    for preset in sorted(set(levels.preset) | set(budget.preset)):
        row = {"preset": preset, "split": SPLIT}
        plateau_of = {m: levels[(levels.preset == preset) & (levels.method == m)]["plateau"] for m in METHODS}
        budget_of = {m: budget[(budget.preset == preset) & (budget.method == m)][SCORE] for m in METHODS}
        for method in METHODS:
            reference = None if method == "ours" else budget_of["ours"]
            row[f"{method} at budget"] = _cell(budget_of[method], reference) if len(budget_of[method]) else "-"
            reference = None if method == "ours" else plateau_of["ours"]
            row[f"{method} at plateau"] = _cell(plateau_of[method], reference) if len(plateau_of[method]) else "-"
        row["ours − point_naive at budget"] = _gap(budget_of["ours"], budget_of["point_naive"])
        row["ours − point_naive at plateau"] = _gap(plateau_of["ours"], plateau_of["point_naive"])
        for when, of in (("budget", budget_of), ("plateau", plateau_of)):
            ours, full = of["ours"], of["full_supervision"]
            row[f"ours / full at {when}"] = f"{ours.mean() / full.mean():.3f}" if len(full) and len(ours) else "-"
        full = plateau_of["full_supervision"]
        for method in ("point_naive", "ours"):
            reached = iterations_to_reach(curves, preset, method, TARGET_SHARE * full.mean()) if len(full) else None
            row[f"{method}: iterations to 0.9x full"] = "-" if reached is None else f"{reached:,}"
        flat = [is_flat(level) for level in levels[levels.preset == preset].to_dict("records")]
        row["curves flat"] = f"{sum(flat)} of {len(flat)}"
        ratio = probes.get(preset, {}).get(row["split"])
        row["click probe ratio"] = "-" if ratio is None else f"{ratio:.2f}"
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def lead_table(summary: list[dict]) -> pd.DataFrame:
    """The report's first table and the README's lead: per preset, hIoU of the three methods at the main job's
    budget (``BUDGET``) and at the plateau (mean ± std over seeds, ``*`` beyond the seed noise of ``ours``), the gap
    of ``ours`` over ``point_naive`` (Welch) and ``ours`` / ``full_supervision``, from ``summary``'s rows."""
    rows = []
    for entry in summary:
        for when, at in ((f"{BUDGET:,} iterations", "budget"), ("plateau", "plateau")):
            rows.append(
                {
                    "preset": f"{entry['preset']} (split {entry['split']})",
                    "when": when,
                    **{f"`{m}`": entry[f"{m} at {at}"] for m in ("point_naive", "ours", "full_supervision")},
                    "`ours` − `point_naive`": entry[f"ours − point_naive at {at}"],
                    "`ours` / full": entry[f"ours / full at {at}"],
                }
            )
    return pd.DataFrame.from_records(rows)


def write_report(
    curves: pd.DataFrame, budget: pd.DataFrame, probes: dict, meta: dict, reports: Path, continued: pd.DataFrame | None = None
) -> str:
    from pwslib.viz.figures import learning_curves_figure, transfer_gain_figure

    table = summary(curves, budget, probes)
    figures = Path(reports) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    if not curves.empty:
        save_figure(learning_curves_figure(curves, SCORE, BUDGET), figures / "learning_curves.png", close=True)
        save_figure(transfer_gain_figure(table), figures / "transfer_gain.png", close=True)
    curves.to_csv(Path(reports) / "learning_curves.csv", index=False)
    write_json_atomic(Path(reports) / "learning_curves.json", {"meta": meta, "summary": table.to_dict("records")})
    lines = [
        report_header("Learning curves: when does keypoint-to-mask transfer help?", "`python -m studies.learning_curves`")
        + f"Provenance: commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC; curves of "
        f"{meta['iterations']:,} iterations scored every {meta['every']} iterations on the test images of each "
        f"preset's reporting split; budget runs of {BUDGET:,} iterations; seeds {meta['seeds']}.",
        "",
        f"hIoU in %, mean ± std over seeds; `*`: differs from `ours` beyond the seed noise (Welch's t-test, p < 0.05). "
        "A plateau is the mean of a curve's last two evaluations; a curve is flat when the line fitted to its last "
        "quarter rose at most 1 point. Iterations to 0.9x full: the first evaluation where the seed mean reaches "
        f"{TARGET_SHARE} x `full_supervision`'s plateau, on the {meta['iterations']:,}-iteration schedule.",
        "",
        markdown_table(lead_table(table.to_dict("records"))) if not table.empty else "No curve has finished yet.",
        "",
    ]
    if not table.empty:
        lines += ["Every column of the summary, per preset:", "", markdown_table(table), ""]
    extended = continued_table(continued)
    if not extended.empty:
        lines += [
            f"## Curves continued where one was not flat at {meta['iterations']:,} iterations",
            "",
            f"Seed 0 trained again over {CONTINUED_LENGTH}x the iterations (the schedule stretched over the run); "
            "the table above keeps the 3-seed curves; where one of them is not flat, its plateau there is a lower bound.",
            "",
            markdown_table(extended.set_index("preset")),
            "",
        ]
    lines += [
        "![learning curves](figures/learning_curves.png)",
        "",
        "![gain against the click probe](figures/transfer_gain.png)",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(Path(reports) / "learning_curves.md", text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="the length of every curve")
    parser.add_argument("--every", type=positive_whole, default=1000, help="iterations between two evaluations")
    parser.add_argument("--test-images", type=int, default=500, help="the first N test images (500: all)")
    parser.add_argument("--no-budget", action="store_true", help="train the curves only, not the budget runs")
    parser.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "learning_curves")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--report-only", action="store_true", help="train nothing: the report from the finished runs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides of every run")
    parser.add_argument("--threads", type=positive_whole, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds", "presets", "methods")
    with one_line_errors("the learning curves"):
        run_study(args)


def run_study(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    start = time.perf_counter()
    curve_configs = grid_configs(args.presets, args.methods, args.seeds, args.iterations, overrides)
    budget_configs = grid_configs(args.presets, args.methods, args.seeds, BUDGET, overrides)
    if not args.report_only:
        source = source_of(provenance(note=f"{torch.get_num_threads()} torch thread(s)"))
        for index, (config, budget) in enumerate(zip(curve_configs, budget_configs), 1):  # the same grid, in order
            print(f"curve {index} of {len(curve_configs)}: {config.dataset} split {config.split} {config.method} seed {config.seed}")
            curve_run(config, curve_folder(args.runs_root, config), args.every, args.test_images, source=source)
            if not args.no_budget:
                run_cached(budget, Path(args.runs_root) / "budget")
    curves = read_curves(args.runs_root, curve_configs)
    longer = continued_configs(curves, args.iterations, overrides)
    if not args.report_only:
        for config in longer:
            print(f"not flat: {config.dataset} {config.method}; seed 0 again over {config.iterations:,} iterations")
            curve_run(config, curve_folder(args.runs_root, config), args.every, args.test_images, source=source)
    continued = read_curves(args.runs_root, longer)
    budget = read_budget_runs(args.runs_root, budget_configs)
    if curves.empty and budget.empty:
        raise DataError(f"no finished curve or budget run in {args.runs_root}: run python -m studies.learning_curves")
    meta = provenance(
        iterations=args.iterations,
        every=args.every,
        seeds=list(args.seeds),
        presets=list(args.presets),
        wall_seconds=round(time.perf_counter() - start, 1),
    )
    probes = click_probe_ratios(Path(args.reports) / "toy_datacard.json")
    print(write_report(curves, budget, probes, meta, args.reports, continued))


if __name__ == "__main__":
    main()
