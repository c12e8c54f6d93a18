"""Where do the base pixels go? The test-set confusion of the Table 1 methods, split by pixel kind.

    python -m studies.diagnosis                    # the quick preset's cached runs (split 1, development)
    python -m studies.diagnosis --preset full      # the full preset's runs (split 2, 3 seeds)

`ours` loses base mIoU against `base_only` (reports/table1.md). Two different failures would both do
that: novel classes spreading over base regions (the novel proposals' masks are only constrained at the
clicks and by S_c inside the ignore region), or base classes confused with each other (the keypoint
branch and the proposals competing for the same pixel embeddings). The confusion matrix tells them
apart: every base pixel of the test set is predicted as its own class, as another base class, or as a
novel class; every novel pixel as its own class, as a base class, or as another novel class. The
report also names the novel classes that take most base pixels, plots the loss terms over training, and
measures how much of the lost base mIoU a calibration recovers: the novel classes' scores multiplied by a
factor below 1 before the argmax (``NOVEL_SCALES``), which hands contested pixels back to the base classes.
If base mIoU came back at little novel cost, the loss were over-confident novel scores; if not, novel
masks cover base regions outright.
Runs are read from the preset's run cache (nothing is trained here); a missing run is listed, not made.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from pwslib.config import config_for
from pwslib.data.splits import ClassSplit
from pwslib.evaluate import load_model
from pwslib.metrics import confusion_matrix, segmentation_scores
from pwslib.experiments.report import markdown_table, mean_std
from pwslib.experiments.schedules import PRESET_REPORTS, PRESET_SPLITS, SCHEDULES
from pwslib.runs import run_folder
from pwslib.io import CHECKOUT, one_line_errors, provenance, report_header, save_figure, write_text_atomic
from pwslib.viz.figures import _pyplot, training_curves

ROOT = CHECKOUT
METHODS = ("base_only", "point_naive", "keypoint_pseudo", "ours", "full_supervision")
BASE_DESTINATIONS = ("base: own class", "base: another base class", "base: a novel class")
NOVEL_DESTINATIONS = ("novel: own class", "novel: a base class", "novel: another novel class")
NOVEL_SCALES = (1.0, 0.8, 0.6)
CALIBRATION_SCORES = {"base_miou": "Base", "novel_miou": "Novel", "hiou": "hIoU"}
CALIBRATED_METHODS = ("point_naive", "ours")


def pixel_destinations(matrix: np.ndarray, split: ClassSplit) -> dict[str, float]:
    """Shares (%) of base pixels and of novel pixels by what they are predicted as; matrix (C, C) true x predicted."""
    matrix = np.asarray(matrix, dtype=np.float64)
    base, novel = list(split.base_classes), list(split.novel_classes)
    base_rows, novel_rows = matrix[base], matrix[novel]  # (B, C), (N, C)
    base_right, novel_right = np.trace(matrix[np.ix_(base, base)]), np.trace(matrix[np.ix_(novel, novel)])
    base_total, novel_total = max(base_rows.sum(), 1.0), max(novel_rows.sum(), 1.0)
    base_values = (base_right, base_rows[:, base].sum() - base_right, base_rows[:, novel].sum())
    novel_values = (novel_right, novel_rows[:, base].sum(), novel_rows[:, novel].sum() - novel_right)
    return {
        **{name: 100 * value / base_total for name, value in zip(BASE_DESTINATIONS, base_values)},
        **{name: 100 * value / novel_total for name, value in zip(NOVEL_DESTINATIONS, novel_values)},
    }


def novel_takers(matrix: np.ndarray, split: ClassSplit, count: int = 3) -> str:
    """The ``count`` novel classes that take most base pixels, with their share (%) of all base pixels."""
    matrix = np.asarray(matrix, dtype=np.float64)
    base, novel = list(split.base_classes), list(split.novel_classes)
    taken = matrix[np.ix_(base, novel)].sum(0) / max(matrix[base].sum(), 1.0) * 100  # (novel,)
    order = np.argsort(-taken)[:count]
    return ", ".join(f"{split.class_names[novel[i]]} {taken[i]:.1f}" for i in order if taken[i] > 0) or "-"


def diagnose(preset: str, runs_root: Path, datasets: list[str], methods=METHODS) -> tuple:
    """One record per finished run of the preset (method, dataset, seed, destinations, takers); one record per
    (calibrated run, novel scale) with its scores; the log.csv of each method's first-seed run per dataset;
    the runs not found."""
    schedule, split = SCHEDULES[preset], PRESET_SPLITS[preset]
    records, calibration, logs, missing = [], [], {}, []
    for dataset in datasets:
        for method in methods:
            for seed in schedule.seeds:
                config = config_for(method, dataset=dataset, split=split, seed=seed, **schedule.overrides())
                folder = run_folder(runs_root, config)
                if not (folder / "metrics.json").exists():
                    missing.append(folder.name)
                    continue
                trainer = load_model(folder)
                evaluation = (trainer.model, trainer.test_set, trainer.split)
                matrix = confusion_matrix(*evaluation).numpy()
                records.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "seed": seed,
                        **pixel_destinations(matrix, trainer.split),
                        "novel classes taking base pixels (% of base pixels)": novel_takers(matrix, trainer.split),
                    }
                )
                for scale in NOVEL_SCALES if method in CALIBRATED_METHODS else ():
                    scaled = matrix if scale == 1.0 else confusion_matrix(*evaluation, novel_scale=scale).numpy()
                    scores = segmentation_scores(scaled, trainer.split)
                    calibration.append(
                        {"dataset": dataset, "method": method, "seed": seed, "novel scale": scale}
                        | {name: scores[key] for key, name in CALIBRATION_SCORES.items()}
                    )
                if seed == schedule.seeds[0]:
                    logs[(dataset, method)] = pd.read_csv(folder / "log.csv")
    return pd.DataFrame.from_records(records), pd.DataFrame.from_records(calibration), logs, missing


def summary_table(records: pd.DataFrame) -> pd.DataFrame:
    """Mean (± std over seeds) of every destination per (dataset, method)."""
    columns = [*BASE_DESTINATIONS, *NOVEL_DESTINATIONS]

    table = records.groupby(["dataset", "method"], sort=False)[columns].agg(mean_std)
    takers = records.groupby(["dataset", "method"], sort=False)[records.columns[-1]].first()
    table[f"{records.columns[-1]} (first seed)"] = takers
    return table.reset_index().set_index("dataset")


def destinations_figure(records: pd.DataFrame, path: Path):
    """Stacked bars: where the base pixels (left) and the novel pixels (right) of each method go."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(records["dataset"]))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 2.6 * len(datasets)), squeeze=False)
    colours = ("#4c9f70", "#e0a030", "#c0392b")
    for row, dataset in zip(axes, datasets):
        means = records[records["dataset"] == dataset].groupby("method", sort=False).mean(numeric_only=True)
        for ax, names, kind in ((row[0], BASE_DESTINATIONS, "base"), (row[1], NOVEL_DESTINATIONS, "novel")):
            left = np.zeros(len(means))
            for name, colour in zip(names, colours):
                ax.barh(means.index, means[name], left=left, color=colour, label=name.split(": ")[1])
                left += means[name].to_numpy()
            ax.set_xlim(0, 100)
            ax.invert_yaxis()
            ax.set_title(f"{dataset}: {kind} pixels predicted as (% of {kind} pixels)", fontsize=9)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save_figure(fig, path, close=True)


def loss_terms_figure(logs: dict, path: Path):
    """The loss terms of each method's first-seed run over training (first dataset), smoothed."""
    dataset = next(iter(logs))[0]
    terms = ("classification", "pixel_classification", "dice", "inclusion", "exclusion", "consistency", "keypoint")
    fig = training_curves(
        {method: log for (name, method), log in logs.items() if name == dataset},
        terms,
        f"{dataset}: loss terms (a method without a term draws no curve there)",
        columns=3,
    )
    save_figure(fig, path, dpi=80, close=True)


def calibration_table(calibration: pd.DataFrame) -> pd.DataFrame:
    """Mean (± std over seeds) Base / Novel / hIoU per (dataset, method, novel scale)."""
    columns = list(CALIBRATION_SCORES.values())

    table = calibration.groupby(["dataset", "method", "novel scale"], sort=False)[columns].agg(mean_std).reset_index()
    return table.sort_values(["dataset", "method", "novel scale"], ascending=[True, True, False]).set_index("dataset")


def write_report(
    preset: str, records: pd.DataFrame, calibration: pd.DataFrame, logs: dict, missing: list, reports: Path
) -> str:
    figures = reports / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    destinations_figure(records, figures / "base_pixels.png")
    loss_terms_figure(logs, figures / "base_pixels_loss_terms.png")
    meta = provenance(preset=preset, split=PRESET_SPLITS[preset], seeds=list(SCHEDULES[preset].seeds))
    text = (
        report_header("Where do the base pixels go?", f"`python -m studies.diagnosis --preset {preset}`")
        + "The test-set confusion "
        f"of each method's cached `{preset}` run(s) (split {meta['split']}, seeds {meta['seeds']}), as % of the "
        "base pixels and of the novel pixels (ignore pixels excluded). Mean ± std over seeds where several ran.\n\n"
        f"- written at `{meta['git_commit']}` on {meta['date_utc']} UTC; {meta['machine']}\n"
        + (f"- runs not found (not trained yet): {', '.join(missing)}\n" if missing else "")
        + f"\n{markdown_table(summary_table(records))}\n"
        "![where pixels go](figures/base_pixels.png)\n\n"
        "**Calibration probe**: the novel classes' scores multiplied by a factor before the argmax (1 = the "
        "model's own prediction, as in every table). How much base mIoU comes back, and at what novel cost:\n\n"
        f"{markdown_table(calibration_table(calibration)) if not calibration.empty else '(no calibrated run)'}\n"
        "Loss terms over training (first seed, first dataset, smoothed over 20 steps):\n\n"
        "![loss terms](figures/base_pixels_loss_terms.png)\n"
    )
    write_text_atomic(reports / "base_pixels.md", text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=["quick", "full"])
    parser.add_argument("--runs-root", type=Path, default=None, help="default: runs/<preset>")
    parser.add_argument("--datasets", nargs="+", default=["toy-stuff", "toy-scene"])
    args = parser.parse_args(argv)
    runs_root = args.runs_root or ROOT / "runs" / args.preset
    with one_line_errors("the diagnosis"):
        records, calibration, logs, missing = diagnose(args.preset, runs_root, args.datasets)
        if records.empty:
            raise SystemExit(f"no finished run of the {args.preset} preset in {runs_root}: run the reproduction first")
        print(write_report(args.preset, records, calibration, logs, missing, ROOT / PRESET_REPORTS[args.preset]))


if __name__ == "__main__":
    main()
