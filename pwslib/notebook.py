"""What every notebook's first code cell does, in one place.

    schedule, ready, runs_root, reports, figures = setup(dataset, seeds, iterations, batch_size, toy_options,
                                                         runs_root, reports_dir)

turns the values of the notebook's ``parameters`` cell (which papermill and the reproduction overwrite)
into a validated ``Schedule``, whether the dataset is ready, and the run and report folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from pwslib.experiments import Schedule, data_available

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookSetup(NamedTuple):
    schedule: Schedule
    ready: bool  # False (with instructions printed) when a real benchmark is not prepared yet
    runs_root: Path
    reports: Path
    figures: Path  # reports/figures, created


def notebook_path(path: str | Path) -> Path:
    """A notebook parameter's path: relative paths are relative to ``notebooks/`` of the checkout, wherever
    the notebook is executed from (``papermill`` in the repository root, Jupyter in ``notebooks/``)."""
    path = Path(path)
    return path if path.is_absolute() or not NOTEBOOKS.is_dir() else (NOTEBOOKS / path).resolve()


def setup(
    dataset: str,
    seeds: list[int],
    iterations: int,
    batch_size: int,
    toy_options: dict,
    runs_root: str | Path,
    reports_dir: str | Path,
) -> NotebookSetup:
    """The parameters cell's values -> schedule (validated: a wrong value stops here in one line), readiness
    of ``dataset``, and the run / report / figure folders (relative paths from ``notebooks/``)."""
    schedule = Schedule(tuple(seeds), iterations, batch_size, toy_options)
    reports = notebook_path(reports_dir)
    figures = reports / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    return NotebookSetup(schedule, data_available(dataset), notebook_path(runs_root), reports, figures)
