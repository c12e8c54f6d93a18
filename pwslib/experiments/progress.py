"""One progress line over a whole grid of runs: training steps done of all runs, runs finished, an ETA.

A grid's runs train in other processes (a pool, Ray tasks), each writing its step log (``log.csv``, one row per
step) into its own folder. ``GridProgress`` reads how far each run is from those folders, so it needs nothing
from the workers and counts a resumed run from its checkpoint, not from zero. Its ETA is tqdm's: the steps
left at the rate measured since this grid started (evaluation time is not a step, so the ETA runs a little
short near a run's end).
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from pwslib.config import TrainConfig
from pwslib.runs import METRICS, run_folder

POLL_SECONDS = 5.0  # how often a grid reads its runs' progress while it waits on them


def steps_done(folder: Path, iterations: int) -> int:
    """How many of a run's ``iterations`` steps are trained in ``folder``: all of them once ``metrics.json`` is
    written, else the last whole row of its step log plus one (0 without a log). For display only: a log being
    written, or damaged, reads as the steps it shows and never raises."""
    if (folder / METRICS).exists():
        return iterations
    try:
        with open(folder / "log.csv", "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 4096))
            tail = handle.read()
    except OSError:
        return 0
    whole_rows = tail.split(b"\n")[:-1]  # the part after the last newline may be a row half written
    for row in reversed(whole_rows):
        step = row.split(b",", 1)[0]
        if step.isdigit():
            return min(int(step) + 1, iterations)
    return 0


class GridProgress:
    """A tqdm line over ``configs``' training steps in ``runs_root``: call ``poll()`` now and then, ``close()``
    at the end (or use it as a context manager)."""

    def __init__(self, configs: list[TrainConfig], runs_root: Path, description: str, enabled: bool = True):
        self.runs = [(run_folder(runs_root, config), config.iterations) for config in configs]
        self.bar = tqdm(
            total=sum(iterations for _, iterations in self.runs),
            initial=self.done(),
            desc=description,
            unit="step",
            smoothing=0.05,  # the ETA follows the grid's mean rate, not the last few polls
            disable=not enabled,
            dynamic_ncols=True,
        )
        self.bar.set_postfix_str(self.finished_runs(), refresh=False)

    def done(self) -> int:
        return sum(steps_done(folder, iterations) for folder, iterations in self.runs)

    def finished_runs(self) -> str:
        finished = sum((folder / METRICS).exists() for folder, _ in self.runs)
        return f"{finished}/{len(self.runs)} runs finished"

    def poll(self) -> None:
        """Bring the line up to the steps on disk now."""
        self.bar.update(max(0, self.done() - self.bar.n))
        self.bar.set_postfix_str(self.finished_runs())

    def close(self) -> None:
        self.poll()
        self.bar.close()

    def __enter__(self) -> "GridProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
