"""The split-1 evidence behind the training recipe's defaults: which lever learns more per CPU second.

    python -m studies.recipe              # the levers, 3 methods x 3 seeds on 2 cores; runs cached under runs/recipe/
    python -m studies.recipe --precision  # float32 against bfloat16, 3 seeds: reports/precision.md
    python -m studies.recipe --pretraining-lengths 16000 32000   # past today's pretraining: reports/pretraining_saturation.md
    python -m studies.recipe --point-weights 0.1 0.3 1 3 10      # the weight of the click losses: reports/point_weights.md
    python -m studies.recipe --point-weights 0.1 0.3 1 3 10 --report-only   # the report again from its runs, training none

Each row changes one thing of the reference recipe and trains ``full_supervision``, ``point_naive`` and ``ours``
on the development split (toy-stuff split 1) for the same wall time as the reference row, seeds 0, 1 and 2;
a cell is marked ``*`` where Welch's t-test over the seeds says it differs from the same method's
reference row (p < 0.05). The reference is the recipe the levers were measured against (``MEASURED_AT``): today's
defaults with the 8,000-step backbone, which was the default then; the 16,000-step row won and became the
default, and 32,000 since (``--pretraining-lengths``). The tables (``reports/recipe.md``, ``pretraining_saturation.md``,
``point_weights.md``) are what the defaults in ``config.py`` cite. Only split 1 is used, so no held-out split
informs a default. A row is scored on toy-stuff's validation images (``--scored-on validation``, the default since
they exist); the reports made before were scored on the test images and say so (``--scored-on test`` remakes them).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from pwslib.config import TrainConfig, config_for
from pwslib.distributed import native_bfloat16
from pwslib.experiments.grid import run_grid, train_all
from pwslib.experiments.report import differs, markdown_table, mean_std, summarise, welch_p
from pwslib.experiments.schedules import Schedule
from pwslib.pretraining import PretrainingRecipe, pretraining_report
from pwslib.runs import read_run_metrics, run_folder
from pwslib.command_line import positive_whole, refuse_repeats
from pwslib.io import CHECKOUT, one_line_errors, provenance, report_header, write_text_atomic

ROOT = CHECKOUT
DEFAULT_ROW = "reference"
# what the reference row changes of today's defaults: the backbone every lever was measured with
MEASURED_AT = dict(pretraining_steps=8000)
# name -> (config overrides of the reference, factor of the schedule's iterations): each at the reference's wall time
LEVERS: dict[str, tuple[dict, float]] = {
    DEFAULT_ROW: (dict(), 1.0),
    # where the pretraining saturates: the weights are made once (python -m pwslib.pretraining --steps N), so a
    # longer pretraining costs the downstream run nothing
    "backbone pretrained 2,000 steps (the first default)": (dict(pretraining_steps=2000), 1.0),
    "backbone pretrained 4,000 steps": (dict(pretraining_steps=4000), 1.0),
    "backbone pretrained 16,000 steps (the default after 8,000)": (dict(pretraining_steps=16000), 1.0),
    "backbone at 0.5x the learning rate": (dict(backbone_learning_rate_factor=0.5), 1.0),
    # a step at batch 8 costs 1/1.71 (full_supervision) to 1/1.74 (ours) of one at batch 16 (1 thread, interleaved)
    "batch 8 for 1.7x the iterations": (dict(batch_size=8), 1.7),
    # a step on 64-pixel crops costs 1/1.75 of one on the 96-pixel images (ours, in-process A/B)
    "random 64-pixel crops for 1.75x the iterations": (dict(crop_size=64), 1.75),
    "learning rate 4e-3 (2x)": (dict(learning_rate=4e-3), 1.0),
    "cosine decay": (dict(learning_rate_decay="cosine"), 1.0),
    "one-cycle: 2x peak, 300 warm-up iterations, cosine decay": (
        dict(learning_rate=4e-3, warmup_iterations=300, learning_rate_decay="cosine"),
        1.0,
    ),
    # the average costs one fused lerp over the weights per step (< 1 % of a step): same iterations
    "EMA of the weights (decay 0.99)": (dict(weight_average_decay=0.99), 1.0),
    # a step with 1x1 output convolutions in the pixel decoder costs 1/1.24 (ours) to 1/1.30 (full_supervision)
    # of one with MaskFormer's 3x3 (float32, AVX2 kernels, 1 thread, 7 interleaved rounds of 10 steps)
    "pixel decoder: 1x1 output convolutions for 1.25x the iterations": (dict(pixel_decoder_kernel=1), 1.25),
}
METHODS = ("full_supervision", "point_naive", "ours")
PRECISION_METHODS = ("full_supervision", "ours")
# the losses at the clicks of each method with clicks, weighed together by ``--point-weights`` (ours leaves L_in out)
CLICK_LOSSES = {"point_naive": ("inclusion_weight", "exclusion_weight"), "ours": ("exclusion_weight",)}
# the backbone the click weights were measured with (the default then), so their cached runs stay the evidence
WEIGHTS_MEASURED_AT = dict(pretraining_steps=16000)


def lever_rows(iterations: int, levers: list[str] | None = None) -> dict[str, tuple[str, dict]]:
    """Every (method, lever) as a table row (``levers``: only these and the reference), the lever's overrides on
    top of ``MEASURED_AT`` and its iteration factor applied to ``iterations``."""
    chosen = {name: LEVERS[name] for name in LEVERS if levers is None or name in levers or name == DEFAULT_ROW}
    return {
        f"{method}: {name}": (method, {**MEASURED_AT, **overrides, **({"iterations": round(iterations * factor)} if factor != 1 else {})})
        for method in METHODS
        for name, (overrides, factor) in chosen.items()
    }


def lever_table(results: pd.DataFrame, reference_row: str = DEFAULT_ROW) -> pd.DataFrame:
    """Mean ± std per row, each method's rows tested (Welch, ``*``) against that method's ``reference_row``, and
    the mean wall time of a run (training + evaluation) so that equal wall time can be checked."""
    parts = []
    for method, group in results.groupby("method", sort=False):
        group = group.assign(reference=group["row"] == f"{method}: {reference_row}")
        summary = summarise(group)
        summary["run seconds"] = group.groupby("row", sort=False)["wall_seconds"].mean().round(0).astype(int)
        parts.append(summary)
    return pd.concat(parts)


def precisions_ran(results: pd.DataFrame) -> str:
    """What the runs computed in (``precision_ran`` of their metrics.json), e.g. "bfloat16 (60 runs)"."""
    ran = pd.Series([read_run_metrics(Path(run)).get("precision_ran", "unrecorded") for run in results["run"]])
    return ", ".join(f"{precision} ({count} run{'s' if count > 1 else ''})" for precision, count in ran.value_counts().items())


def runs_provenance(results: pd.DataFrame) -> str:
    """The provenance lines of a study's table: the commits its runs were trained at, where and when the table
    was written, the machine and what the runs computed in."""
    meta = provenance()
    commits = ", ".join(f"`{c}`" for c in sorted(set(results["git_commit"].dropna())))
    scored = set(results["scored_on"]) if "scored_on" in results else {"test"}
    images = (
        "the validation images (the ones to tune on)"
        if scored == {"validation"}
        else "the test images (made before the validation images existed; a new study scores the validation images)"
    )
    return (
        f"- runs trained at commit(s) {commits}; table written at `{meta['git_commit']}` on {meta['date_utc']} UTC\n"
        f"- machine: {meta['machine']}; the runs computed in {precisions_ran(results)}; scored on {images}\n\n"
    )


def write_study(reports: Path, name: str, results: pd.DataFrame, text: str) -> str:
    """A study's runs as ``<name>.csv`` and its table as ``<name>.md`` under ``reports`` (atomically); returns the text."""
    write_text_atomic(reports / f"{name}.csv", results.to_csv(index=False))
    write_text_atomic(reports / f"{name}.md", text)
    return text


def lever_of(results: pd.DataFrame) -> pd.Series:
    """The lever of each run: its row is ``"<method>: <lever>"`` (``lever_rows``)."""
    return results["row"].str.split(": ", n=1).str[1]


def lever_effects(results: pd.DataFrame, score: str = "total_miou", reference_row: str = DEFAULT_ROW) -> list[str]:
    """One line per lever: each method's change of ``score`` (mean over seeds) against its own reference row, and
    the methods where the change is beyond the seed noise (Welch, p < 0.05)."""
    lines, levers = [], lever_of(results)
    for lever in levers.drop_duplicates():
        if lever == reference_row:
            continue
        changes, beyond = [], []
        for method in METHODS:
            of_method = results["method"] == method
            values = results.loc[of_method & (levers == lever), score]
            reference = results.loc[of_method & (levers == reference_row), score]
            if values.empty or reference.empty:
                continue
            change = values.mean() - reference.mean()
            changes.append(f"{method} {change:+.1f}")
            if differs(values, reference):
                beyond.append(f"{method} ({'better' if change > 0 else 'worse'})")
        noise = f"beyond the seed noise: {', '.join(beyond)}" if beyond else "none beyond the seed noise"
        lines.append(f"- {lever}: {', '.join(changes)}; {noise}")
    return lines


def pretraining_lengths(results: pd.DataFrame, lengths: dict[str, int] | None = None) -> pd.DataFrame:
    """Where the pretraining saturates: per pretraining length among the rows (``lengths``: lever -> pretraining
    steps; by default the levers of ``LEVERS`` and the reference's), the backbone's own mIoU on held-out
    pretraining scenes, its pretraining seconds and each method's total mIoU."""
    if lengths is None:
        lengths = {DEFAULT_ROW: MEASURED_AT["pretraining_steps"]}
        lengths.update({name: overrides["pretraining_steps"] for name, (overrides, _) in LEVERS.items() if "pretraining_steps" in overrides})
    rows, levers = [], lever_of(results)
    for lever, steps in sorted(lengths.items(), key=lambda item: item[1]):
        runs = results[levers == lever]
        if runs.empty:
            continue
        report = pretraining_report(PretrainingRecipe.of_run(config_for("ours", pretraining_steps=steps)))
        rows.append(
            {
                "pretraining steps": f"{steps:,}",
                "own mIoU": f"{report['test_miou']:.1f}",
                "pretraining seconds": f"{report['seconds']:.0f}",
                **{method: mean_std(runs.loc[runs["method"] == method, "total_miou"]) for method in METHODS},
            }
        )
    return pd.DataFrame(rows).set_index("pretraining steps")


def length_row(steps: int) -> str:
    """The row name of a pretraining length in the saturation study (today's default says so)."""
    default = " (today's default)" if steps == TrainConfig.pretraining_steps else ""
    return f"backbone pretrained {steps:,} steps{default}"


def write_saturation_report(results: pd.DataFrame, lengths: list[int], iterations: int, reports: Path) -> str:
    """Today's recipe (float32 where the machine has no native bfloat16) with each pretraining length in
    ``lengths``, each row tested against today's default length: ``reports/pretraining_saturation.md`` / ``.csv``."""
    reference = length_row(TrainConfig.pretraining_steps)
    made = []
    for steps in lengths:
        report = pretraining_report(PretrainingRecipe.of_run(config_for("ours", pretraining_steps=steps)))
        made.append(f"- {steps:,} steps: pretrained at `{report['git_commit']}` on {report['date_utc']} UTC, {report['machine']}")
    text = (
        report_header("Past today's pretraining: does a longer one still help? (toy-stuff split 1)", "`python -m studies.recipe --pretraining-lengths ...`")
        + f"Today's defaults with the backbone pretrained for each length, {iterations} iterations at batch 16, seeds "
        f"{sorted(set(results['seed']))}; mIoU in %, mean ± std over the seeds; `*`: differs from the same method's row "
        f"at today's default length ({TrainConfig.pretraining_steps:,} steps) beyond the seed noise (Welch's t-test, "
        "p < 0.05). The weights are made once (`python -m pwslib.pretraining --steps N`), so a longer pretraining "
        "costs a downstream run nothing; `run seconds`: mean wall time of one run (1 torch thread, two runs side by side).\n\n"
        + runs_provenance(results)
        + f"{markdown_table(lever_table(results, reference_row=reference))}\n"
        "## Each length against today's (total mIoU, mean over the seeds, same method)\n\n"
        + "\n".join(lever_effects(results, reference_row=reference))
        + "\n\n## The backbones\n\nOwn mIoU: on 300 held-out pretraining scenes; pretraining seconds: on the "
        "machine each was made on (below).\n\n"
        + markdown_table(pretraining_lengths(results, {length_row(steps): steps for steps in lengths}))
        + "\n\n"
        + "\n".join(made)
        + "\n"
    )
    return write_study(reports, "pretraining_saturation", results, text)


def point_weight_row(method: str, weight: float) -> str:
    """The row name of a click-loss weight of ``method`` (its default says so), e.g. "L_in and L_ex at 0.3"."""
    fields = CLICK_LOSSES[method]
    names = " and ".join({"inclusion_weight": "L_in", "exclusion_weight": "L_ex"}[field] for field in fields)
    default = " (today's default)" if all(config_for(method).to_dict()[field] == weight for field in fields) else ""
    return f"{names} at {weight:g}{default}"


def point_weight_rows(weights: list[float]) -> dict[str, tuple[str, dict]]:
    """``point_naive`` and ``ours`` with their click losses (``CLICK_LOSSES``) at each weight, today's recipe else."""
    return {
        f"{method}: {point_weight_row(method, weight)}": (
            method, {**WEIGHTS_MEASURED_AT, **{field: float(weight) for field in fields}}
        )
        for method, fields in CLICK_LOSSES.items()
        for weight in sorted(set(weights))
    }


def default_point_weight_rows() -> dict[str, str]:
    """Each method's row at its default click-loss weight: the reference its other weights are tested against."""
    return {method: point_weight_row(method, config_for(method).to_dict()[fields[0]]) for method, fields in CLICK_LOSSES.items()}


def write_point_weight_report(results: pd.DataFrame, iterations: int, reports: Path) -> str:
    """The click losses of ``point_naive`` (L_in and L_ex) and of ``ours`` (L_ex) at each weight, every row tested
    against its method's default weight: ``reports/point_weights.md`` / ``.csv``."""
    references = default_point_weight_rows()
    of_method = {method: results[results["method"] == method] for method in references}
    tables = [markdown_table(lever_table(of_method[method], reference_row=reference)) for method, reference in references.items()]
    effects = []
    for score, label in (("total_miou", "total mIoU"), ("hiou", "hIoU"), ("novel_miou", "novel mIoU")):
        effects.append(f"\n{label}:\n")
        for method, reference in references.items():
            effects += lever_effects(of_method[method], score=score, reference_row=reference)
    text = (
        report_header("How much the clicks weigh: the click losses' weight (toy-stuff split 1)", "`python -m studies.recipe --point-weights ...`")
        + f"Today's defaults, but the backbone pretrained {WEIGHTS_MEASURED_AT['pretraining_steps']:,} steps (the default when "
        "the weights were measured), with the losses at the clicks weighted by each factor: `point_naive`'s L_in and L_ex "
        f"(the only novel supervision of naive point supervision), `ours`' L_ex (its L_in is off); {iterations} "
        f"iterations at batch 16, seeds {sorted(set(results['seed']))}; mIoU in %, mean ± std over the seeds; `*`: "
        "differs from the same method's row at its default weight beyond the seed noise (Welch's t-test, p < 0.05); "
        "`run seconds`: mean wall time of one run (1 torch thread, two runs side by side).\n\n"
        + runs_provenance(results)
        + "\n".join(tables)
        + "\n## Each weight against the method's default (mean over the seeds)\n"
        + "\n".join(effects)
        + "\n"
    )
    return write_study(reports, "point_weights", results, text)


def precision_comparison(seeds: tuple[int, ...], iterations: int, runs_root: Path, train: bool = True) -> pd.DataFrame:
    """``full_supervision`` and ``ours`` trained in float32 and in bfloat16 (forced, so emulated where the
    hardware has no native bfloat16), same seeds: one row per run with its scores and median images/s."""
    configs = []
    for method in PRECISION_METHODS:
        for seed in seeds:
            reference = config_for(
                method, dataset="toy-stuff", split=1, seed=seed, iterations=iterations, precision="float32"
            )
            configs += [reference, dataclasses.replace(reference, precision="bfloat16")]
    metrics = train_all(configs, runs_root, progress=True, workers=1, train=train)  # one at a time: speeds are compared
    rows = []
    for config in configs:
        log = pd.read_csv(run_folder(runs_root, config) / "log.csv")
        rows.append(
            {
                "method": config.method,
                "precision": config.precision,
                "seed": config.seed,
                **{k: metrics[config.key()][k] for k in ("base_miou", "novel_miou", "total_miou", "hiou")},
                "images_per_second": float(log["images_per_second"].median()),
                "git_commit": metrics[config.key()].get("git_commit"),
            }
        )
    return pd.DataFrame(rows)


def write_precision_report(runs: pd.DataFrame, iterations: int, reports: Path) -> str:
    """Mean ± std per (method, precision) and a Welch t-test of each score between the precisions."""
    rows = []
    for method, group in runs.groupby("method", sort=False):
        single, half = group[group.precision == "float32"], group[group.precision == "bfloat16"]
        for score in ("total_miou", "hiou"):
            rows.append(
                {
                    "method": method,
                    "score": score,
                    "float32": mean_std(single[score]),
                    "bfloat16": mean_std(half[score]),
                    "Welch p": f"{welch_p(single[score], half[score]):.2f}",
                    "float32 images/s": f"{single['images_per_second'].median():.0f}",
                    "bfloat16 images/s": f"{half['images_per_second'].median():.0f}",
                }
            )
    meta = provenance(iterations=iterations, seeds=sorted(set(runs["seed"])))
    native = (
        "natively"
        if native_bfloat16()
        else "emulated (no native bfloat16 here, so its speed says nothing about bfloat16 hardware)"
    )
    text = (
        report_header("float32 against bfloat16 autocast", "`python -m studies.recipe --precision`")
        + "toy-stuff split 1, "
        f"{iterations} iterations, seeds {meta['seeds']}; bfloat16 computed {native}. Losses, costs and matching "
        "stay in float32 in both. A difference is a difference where Welch's p < 0.05.\n\n"
        f"- runs at commit(s) {', '.join(sorted(set(runs['git_commit'].dropna())))}; written at `{meta['git_commit']}` "
        f"on {meta['date_utc']} UTC; {meta['machine']}\n\n"
        f"{markdown_table(pd.DataFrame(rows).set_index('method'))}"
    )
    write_text_atomic(reports / "precision.md", text)
    runs.to_csv(reports / "precision.csv", index=False)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=1000, help="the reference row's iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every row")
    parser.add_argument("--workers", type=positive_whole, default=2, help="runs side by side (1 torch thread each on 2 cores)")
    parser.add_argument("--levers", nargs="+", default=None, metavar="LEVER", help="only these rows (and the reference)")
    parser.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "recipe")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--precision", action="store_true", help="compare float32 and bfloat16 over 3 seeds instead")
    parser.add_argument(
        "--pretraining-lengths", type=int, nargs="+", metavar="STEPS",
        help="instead of the levers: today's recipe with the backbone pretrained for each of these lengths",
    )
    parser.add_argument(
        "--point-weights", type=float, nargs="+", metavar="WEIGHT",
        help="instead of the levers: point_naive's and ours' click losses at each of these weights",
    )
    parser.add_argument(
        "--report-only", action="store_true",
        help="train nothing: the report from finished runs (a run not finished is an error naming it)",
    )
    parser.add_argument(
        "--scored-on", choices=("validation", "test"), default="validation",
        help="the images a row is scored on: validation (default: a decision is tuned there) or test (the reports "
        "made before the validation images existed)",
    )
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds", "levers")
    if args.levers and set(args.levers) - set(LEVERS):
        parser.error(f"unknown levers {sorted(set(args.levers) - set(LEVERS))}; choose from {list(LEVERS)}")
    with one_line_errors("the recipe study"):
        run_study(args)


def run_study(args: argparse.Namespace) -> None:
    """The study ``args`` asks for (``main``'s flags): train what is missing (unless ``--report-only``), write its report."""
    train = not args.report_only
    if args.point_weights:
        weights = sorted(set(args.point_weights))
        schedule = Schedule(seeds=tuple(args.seeds), iterations=args.iterations)
        results = run_grid(
            point_weight_rows(weights), ["toy-stuff"], 1, schedule, args.runs_root, workers=args.workers, train=train,
            scored_on=args.scored_on,
        )
        print(write_point_weight_report(results, args.iterations, args.reports))
        return
    if args.pretraining_lengths:
        lengths = sorted(set(args.pretraining_lengths) | {TrainConfig.pretraining_steps})
        rows = {f"{method}: {length_row(steps)}": (method, {"pretraining_steps": steps}) for method in METHODS for steps in lengths}
        schedule = Schedule(seeds=tuple(args.seeds), iterations=args.iterations)
        results = run_grid(
            rows, ["toy-stuff"], 1, schedule, args.runs_root, workers=args.workers, train=train, scored_on=args.scored_on
        )
        print(write_saturation_report(results, lengths, args.iterations, args.reports))
        return
    if args.precision:
        runs = precision_comparison((0, 1, 2), args.iterations, args.runs_root, train)
        print(write_precision_report(runs, args.iterations, args.reports))
        return
    schedule = Schedule(seeds=tuple(args.seeds), iterations=args.iterations)
    rows = lever_rows(args.iterations, args.levers)
    results = run_grid(
        rows, ["toy-stuff"], 1, schedule, args.runs_root, workers=args.workers, train=train, scored_on=args.scored_on
    )
    write_text_atomic(args.reports / "recipe.csv", results.to_csv(index=False))
    text = (
        report_header("Which lever learns more per CPU second (development split, toy-stuff split 1)", "`python -m studies.recipe`")
        + "mIoU in %, mean ± std over seeds "
        f"{list(schedule.seeds)}; the reference row is today's defaults with the "
        f"{MEASURED_AT['pretraining_steps']:,}-step backbone (the default while the levers were measured; the 16,000-step "
        f"row won and became the default) and trains {args.iterations} iterations at batch "
        f"{schedule.batch_size}, every other row the same wall time (its iterations scaled by the measured cost of "
        "a step); `*`: differs from the same method's reference row beyond the seed noise (Welch's t-test, "
        "p < 0.05). `run seconds`: mean wall time of one run (training + evaluation, 1 torch thread, two runs "
        "side by side).\n\n"
        + runs_provenance(results)
        + f"{markdown_table(lever_table(results))}\n"
        "## Each lever against the reference row (total mIoU, mean over the seeds, same method)\n\n"
        + "\n".join(lever_effects(results))
        + "\n\n## Where the pretraining saturates\n\nThe backbone's own mIoU on held-out pretraining scenes "
        "(`python -m pwslib.pretraining --steps N`; made once, so its seconds are not part of any run) and the "
        "downstream total mIoU of each method (mean ± std over the seeds, the rows above):\n\n"
        + markdown_table(pretraining_lengths(results))
    )
    write_text_atomic(args.reports / "recipe.md", text)
    print(text)


if __name__ == "__main__":
    main()
