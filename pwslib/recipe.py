"""The split-1 evidence behind the training recipe's defaults (learning rate, warm-up, pretrained backbone).

    python -m pwslib.recipe              # ~12 min on 2 cores; runs cached under runs/recipe/
    python -m pwslib.recipe --precision  # float32 against bfloat16, 3 seeds: reports/precision.md

Each row changes one thing of the recipe and trains ``full_supervision`` and ``ours`` on the
development split (toy-stuff split 1, seed 0) for the quick preset's budget; the table
(``reports/recipe.md`` / ``.csv``) is what the defaults in ``config.py`` cite. Only split 1 is used,
so no held-out split informs a default.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd
from scipy import stats

from pwslib.config import config_for, native_bfloat16
from pwslib.experiments import Schedule, markdown_table, run_grid, train_all, write_table
from pwslib.runs import run_folder
from pwslib.io import provenance, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = dict(pretrained_backbone=False, learning_rate=1e-3, warmup_iterations=0)
RECIPE_ROWS: dict[str, dict] = {
    "random init, lr 1e-3 (the earlier recipe)": SCRATCH,
    "pretrained backbone, lr 1e-3": dict(learning_rate=1e-3, warmup_iterations=0),
    "pretrained, lr 2e-3, 50 warm-up iterations (default)": dict(),
    "pretrained, lr 4e-3, 50 warm-up iterations": dict(learning_rate=4e-3),
}
# full_supervision only: the same wall time spent as batch 8, and where twice the budget gets to
FULL_SUPERVISION_ROWS: dict[str, dict] = {
    "default at batch 8 x 900 iterations (same wall time)": dict(batch_size=8, iterations=900),
    "default, 1,000 iterations": dict(iterations=1000),
}
METHODS = ("full_supervision", "ours")


def recipe_rows() -> dict[str, tuple[str, dict]]:
    rows = {f"{method}: {name}": (method, overrides) for method in METHODS for name, overrides in RECIPE_ROWS.items()}
    rows.update({f"full_supervision: {name}": ("full_supervision", o) for name, o in FULL_SUPERVISION_ROWS.items()})
    return rows


def precision_comparison(seeds: tuple[int, ...], iterations: int, runs_root: Path) -> pd.DataFrame:
    """``full_supervision`` and ``ours`` trained in float32 and in bfloat16 (forced, so emulated where the
    hardware has no native bfloat16), same seeds: one row per run with its scores and median images/s."""
    configs = []
    for method in METHODS:
        for seed in seeds:
            reference = config_for(
                method, dataset="toy-stuff", split=1, seed=seed, iterations=iterations, precision="float32"
            )
            configs += [reference, dataclasses.replace(reference, precision="bfloat16")]
    metrics = train_all(configs, runs_root, progress=True, workers=1)  # one at a time: the speeds are compared
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
            test = stats.ttest_ind(single[score], half[score], equal_var=False)
            rows.append(
                {
                    "method": method,
                    "score": score,
                    "float32": f"{single[score].mean():.1f} ± {single[score].std(ddof=1):.1f}",
                    "bfloat16": f"{half[score].mean():.1f} ± {half[score].std(ddof=1):.1f}",
                    "Welch p": f"{test.pvalue:.2f}",
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
        "# float32 against bfloat16 autocast\n\n"
        "Produced by `python -m pwslib.recipe --precision`; do not edit by hand. toy-stuff split 1, "
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
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "recipe")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--precision", action="store_true", help="compare float32 and bfloat16 over 3 seeds instead")
    args = parser.parse_args(argv)
    if args.precision:
        runs = precision_comparison((0, 1, 2), args.iterations, args.runs_root)
        print(write_precision_report(runs, args.iterations, args.reports))
        return
    schedule = Schedule(seeds=(0,), iterations=args.iterations)
    results = run_grid(recipe_rows(), ["toy-stuff"], 1, schedule, args.runs_root)
    print(
        write_table(
            results,
            "recipe",
            "Recipe choices on the development split (toy-stuff split 1)",
            args.reports,
            schedule,
            1,
            notes="One seed: differences of 1-2 points are within seed noise (see the full preset's tables for "
            "its size); the defaults follow the large effects (the pretrained backbone) and the direction of the "
            "smaller ones.\n",
            command="`python -m pwslib.recipe`",
        )
    )


if __name__ == "__main__":
    main()
