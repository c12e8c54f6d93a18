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

import torch

from pwslib.config import METHODS
from pwslib.data import collate
from pwslib.evaluate import load_model
from pwslib.experiments.grid import data_available, grid_config, run_cached, run_grid
from pwslib.experiments.schedules import PRESET_REPORTS, PRESET_SPLITS, SCHEDULES, Schedule, table_iterations
from pwslib.io import CHECKOUT, DataError
from pwslib.model.maskformer import predict
from pwslib.runs import run_folder
from pwslib.viz.figures import comparison_summary, visual_comparison

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
                grid_config(method, dataset, split, schedule.seeds[0], schedule, {}),
            )
            / "metrics.json"
        ).exists()
    ]


def comparison_figure(
    dataset: str, split: int, schedule: Schedule, runs_root: Path, methods: Sequence[str] = METHODS, count: int = 6
):
    """Test images, ground truth and the prediction of each of ``methods`` (first seed), and one sentence per
    method on what it gets right there (``viz.comparison_summary``); None without data."""
    if not data_available(dataset):
        return None, {}
    predictions, batch, classes = {}, None, None
    for method in methods:
        config = grid_config(method, dataset, split, schedule.seeds[0], schedule, {})
        run_cached(config, runs_root, progress=False)
        loaded = load_model(run_folder(runs_root, config))
        if batch is None:
            test = loaded.test_set
            batch = collate([test[i] for i in range(min(count, len(test)))])
            classes = loaded.split
        with torch.no_grad():
            predictions[method] = predict(loaded.model, batch["image"]).numpy()
    ground_truth = batch["full_label"].numpy()
    figure = visual_comparison(
        batch["image"].permute(0, 2, 3, 1).numpy(),
        ground_truth,
        predictions,
        classes,
        title=f"{dataset}: test images, ground truth and every method",
    )
    return figure, comparison_summary(ground_truth, predictions, classes)
