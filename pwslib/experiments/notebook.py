"""What every notebook's first code cell does, in one place.

    schedule, split, ready, runs_root, reports, figures = setup(preset, dataset, overrides)

turns the notebook's ``parameters`` cell (which papermill and the reproduction overwrite) into a validated
``Schedule``, the base/novel split, whether the dataset is ready, and the run and report folders. A preset
(``ci``, ``quick``, ``full``; ``schedules.SCHEDULES``) sets them all; ``overrides`` changes any of them.
Notebooks open on ``quick``; the tests run them on ``ci`` by setting ``PWSLIB_NOTEBOOK_PRESET``
(``notebooks/conftest.py``), which wins over the parameters cell and says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from pwslib.config import METHODS
from pwslib.data import collate
from pwslib.evaluate import load_model
from pwslib.experiments.freshness import READS_VARIABLE, record_opened_files
from pwslib.experiments.grid import data_available, grid_config, run_cached, run_grid
from pwslib.experiments.schedules import PRESET_REPORTS, PRESET_SPLITS, SCHEDULES, Schedule, table_iterations
from pwslib.io import CHECKOUT, DataError
from pwslib.metrics import image_novel_iou
from pwslib.model.maskformer import predict
from pwslib.runs import run_folder
from pwslib.viz.figures import visual_comparison

NOTEBOOKS = CHECKOUT / "notebooks"
PRESET_VARIABLE = "PWSLIB_NOTEBOOK_PRESET"  # set by notebooks/conftest.py: nbval runs every notebook on ``ci``


class NotebookSetup(NamedTuple):
    schedule: Schedule
    split: int  # the base/novel split the notebook trains and reports on
    ready: bool  # False (with instructions printed) when a real benchmark is not prepared yet
    runs_root: Path
    reports: Path
    figures: Path  # reports/figures, created


def notebook_path(path: str | Path) -> Path:
    """A notebook parameter's path: relative paths are relative to ``notebooks/`` of the checkout, wherever
    the notebook is executed from (``papermill`` in the repository root, Jupyter in ``notebooks/``)."""
    path = Path(path)
    return path if path.is_absolute() or not NOTEBOOKS.is_dir() else (NOTEBOOKS / path).resolve()


def preset_values(preset: str, table: str | None = None) -> dict:
    """What ``preset`` sets in a notebook (the notebook of ``table``, where the preset trains that table for fewer
    iterations: ``PRESET_TABLES``): split, seeds, iterations, batch size, toy options, run and report folders
    (relative to ``notebooks/``)."""
    if preset not in SCHEDULES:
        raise DataError(f"unknown preset {preset!r}; choose one of {list(SCHEDULES)}")
    schedule = SCHEDULES[preset]
    return {
        "split": PRESET_SPLITS[preset],
        "seeds": list(schedule.seeds),
        "iterations": table_iterations(preset, table),
        "batch_size": schedule.batch_size,
        "toy_options": dict(schedule.toy_options),
        "runs_root": f"../runs/{preset}",
        "reports_dir": f"../{PRESET_REPORTS[preset]}",
    }


def setup(preset: str, dataset: str, overrides: dict | None = None, table: str | None = None) -> NotebookSetup:
    """The parameters cell -> schedule (validated: a wrong value stops here in one line), split, readiness of
    ``dataset``, and the run / report / figure folders; ``table``: the table the notebook trains (its preset may
    train it for fewer iterations). ``PWSLIB_NOTEBOOK_PRESET``, when set, replaces ``preset``."""
    _record_inputs_once()
    forced = os.environ.get(PRESET_VARIABLE)
    if forced and forced != preset:
        print(f"preset {forced!r} from {PRESET_VARIABLE} (the parameters cell says {preset!r})")
        preset = forced
    values = preset_values(preset, table)
    if isinstance(overrides, str):  # papermill's -p passes text; -y passes a dict
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as error:
            raise DataError(f"overrides must be a dict or its JSON text, got {overrides!r} ({error})") from error
    if not isinstance(overrides, (dict, type(None))):
        raise DataError(f"overrides must be a dict, got {overrides!r}")
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise DataError(f"overrides {unknown} are not notebook settings; choose from {sorted(values)}")
    values.update(overrides or {})
    if not isinstance(values["seeds"], (list, tuple)):
        raise DataError(f"seeds must be a non-empty list of whole numbers, got {values['seeds']!r}")
    schedule = Schedule(tuple(values["seeds"]), values["iterations"], values["batch_size"], values["toy_options"])
    reports = notebook_path(values["reports_dir"])
    figures = reports / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    return NotebookSetup(
        schedule, values["split"], data_available(dataset), notebook_path(values["runs_root"]), reports, figures
    )


_recording: list[str] = []  # the log this kernel records its inputs into, once set


def _record_inputs_once() -> None:
    """Under the reproduction (``READS_VARIABLE`` set), record every report and run file this kernel opens
    (``freshness.record_opened_files``), so the executed notebook knows what it showed."""
    log = os.environ.get(READS_VARIABLE)
    if log and log not in _recording:
        record_opened_files(log)
        _recording.append(log)


def trained_runs(
    rows: list[str] | dict[str, tuple[str, dict]], dataset: str, split: int, schedule: Schedule, runs_root: Path
) -> dict:
    """Restored ``Trainer`` of each row's run at the schedule's first seed: the cached run where one has finished,
    else trained now; says which, and how long each took to train and evaluate. ``rows``: method names, or
    ``{name: (method, config overrides)}`` as a table's rows are."""
    rows = rows if isinstance(rows, dict) else {method: (method, {}) for method in rows}
    schedule = dataclasses.replace(schedule, seeds=schedule.seeds[:1])
    cached = set(finished_rows(rows, dataset, split, schedule, runs_root))
    results = run_grid(rows, [dataset], split, schedule, runs_root, progress=False)
    for row in results.itertuples():
        how = "reused the cached run" if row.row in cached else "trained it now"
        print(
            f"{row.row}: {how}: {schedule.iterations} iterations, {row.wall_seconds:.0f} s of training and "
            f"evaluation on {os.cpu_count()} cores (commit {row.git_commit}); total mIoU {row.total_miou:.1f}, "
            f"novel mIoU {row.novel_miou:.1f}"
        )
    return {row.row: load_model(Path(row.run)) for row in results.itertuples()}


def finished_rows(rows: dict[str, tuple[str, dict]], dataset: str, split: int, schedule: Schedule, runs_root: Path) -> list[str]:
    """The rows whose run (first seed of ``schedule``) has finished in ``runs_root``."""
    return [
        name
        for name, (method, overrides) in rows.items()
        if (run_folder(runs_root, grid_config(method, dataset, split, schedule.seeds[0], schedule, overrides)) / "metrics.json").exists()
    ]


def chosen_images(
    scores: dict[str, np.ndarray], first: str = "ours", second: str = "point_naive", extremes: int = 2, others: int = 2,
    seed: int = 0,
) -> list[tuple[int, str]]:
    """Test images to draw, by a stated rule: the ``extremes`` images where ``first`` leads ``second`` most in
    per-image novel IoU, the ``extremes`` where ``second`` leads most (only images where it does lead), then random
    images (``seed``) from the rest up to ``2 * extremes + others``; each with why it was chosen. Without both
    methods, every image at random.
    ``scores``: method -> (N,) per-image novel IoU (NaN: no novel class in the image, never chosen)."""
    valid = np.flatnonzero(np.isfinite(np.mean([scores[m] for m in scores], axis=0)))
    chosen: list[tuple[int, str]] = []
    if first in scores and second in scores:
        lead = scores[first] - scores[second]
        order = valid[np.argsort(-lead[valid], kind="stable")]
        chosen += [(int(i), f"{first} ahead most ({lead[i]:+.2f})") for i in order[:extremes] if lead[i] > 0]
        chosen += [(int(i), f"{second} ahead most ({-lead[i]:+.2f})") for i in order[::-1][:extremes] if lead[i] < 0]
    taken = {index for index, _ in chosen}
    rest = np.array([i for i in valid if i not in taken], dtype=int)
    wanted = 2 * extremes + others - len(chosen)  # a side that is never ahead leaves its places to random images
    picks = np.random.default_rng(seed).choice(rest, size=min(wanted, len(rest)), replace=False) if len(rest) else []
    chosen += [(int(i), "random") for i in sorted(picks)]
    return chosen


@dataclasses.dataclass
class Comparison:
    """A visual comparison: the figure, the chosen images with each method's per-image novel IoU (``table``:
    one row per image, its reason and a column per method) and each method's novel mIoU on the whole test set."""

    figure: object
    table: pd.DataFrame
    test_set_novel_miou: dict[str, float]
    images: int  # the test set's size


def test_predictions(loaded, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (N, H, W, 3), ground truth (N, H, W) and the prediction (N, H, W) of a loaded run on its test set."""
    images, truths, predictions = [], [], []
    test = loaded.test_set
    for offset in range(0, len(test), batch_size):
        batch = collate([test[i] for i in range(offset, min(offset + batch_size, len(test)))])
        with torch.no_grad():
            predictions.append(predict(loaded.model, batch["image"]).numpy())
        images.append(batch["image"].permute(0, 2, 3, 1).numpy())
        truths.append(batch["full_label"].numpy())
    return np.concatenate(images), np.concatenate(truths), np.concatenate(predictions)


def comparison_figure(
    dataset: str, split: int, schedule: Schedule, runs_root: Path, methods: Sequence[str] = METHODS, extremes: int = 2,
    others: int = 2,
) -> Comparison | None:
    """Every method's prediction (first seed) on test images chosen by ``chosen_images`` (where ``ours`` and
    ``point_naive`` differ most in novel IoU, both ways, and a few at random), each row labelled with every
    method's per-image novel IoU; None without data."""
    if not data_available(dataset):
        return None
    predictions, whole, truth, images, classes = {}, {}, None, None, None
    for method in methods:
        config = grid_config(method, dataset, split, schedule.seeds[0], schedule, {})
        whole[method] = run_cached(config, runs_root, progress=False)["novel_miou"]
        loaded = load_model(run_folder(runs_root, config))
        images, truth, predictions[method] = test_predictions(loaded)
        classes = loaded.split
    scores = {method: image_novel_iou(truth, predicted, classes) for method, predicted in predictions.items()}
    chosen = chosen_images(scores, extremes=extremes, others=others)
    rows = [i for i, _ in chosen]
    table = pd.DataFrame(
        [{"test image": i, "chosen because": why, **{m: round(100 * scores[m][i], 1) for m in methods}} for i, why in chosen]
    )
    labels = [f"image {i}\n{why}\n" + "\n".join(f"{m} {100 * scores[m][i]:.0f}" for m in methods) for i, why in chosen]
    figure = visual_comparison(
        images[rows],
        truth[rows],
        {method: predicted[rows] for method, predicted in predictions.items()},
        classes,
        title=f"{dataset}: test images chosen by rule; left, each method's novel IoU on the image (%)",
        row_labels=labels,
    )
    return Comparison(figure, table, whole, len(truth))
