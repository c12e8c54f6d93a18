"""How much to train: a ``Schedule`` (seeds, iterations, batch size, toy options) and the presets of runs.

``SCHEDULES`` holds the presets (``ci``: the tests' 4 iterations; ``quick``: the README's main job; ``full``: every
row with 3 seeds), ``PRESET_TABLES`` what a preset trains of each table (the reproduction trains it in one pool).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pwslib.config import config_for
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.experiments.tables import Rows, select_rows
from pwslib.io import DataError

@dataclass(frozen=True)
class Schedule:
    """How much to train: the notebooks' ``parameters`` cell fills one of these."""

    seeds: tuple[int, ...] = (0,)
    iterations: int = 400
    batch_size: int = 16
    toy_options: dict = field(default_factory=dict)
    pretrained_backbone: bool = True  # False only in the library's own fast tests

    def __post_init__(self):
        """Checked when built, so a notebook parameter of the wrong type stops its first cell in one line."""
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise DataError(f"seeds must be a non-empty list of whole numbers, got {list(self.seeds)!r}")
        config_for("ours", **self.overrides())  # the config validates iterations, batch_size, toy_options

    def overrides(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "batch_size": self.batch_size,
            "toy_options": dict(self.toy_options),
            "pretrained_backbone": self.pretrained_backbone,
        }


SCHEDULES = {  # the presets of runs (`--preset`, the notebooks' `preset`); the toy datasets are data.toy.PRESETS
    "ci": Schedule(seeds=(0,), iterations=4, batch_size=8, toy_options={"num_train": 24, "num_test": 8}),
    # Table 1's runs as near their plateaus (reports/convergence.md) as < 30 min on 2 cores allow
    # (reports/reproduction.json); what it leaves out is in PRESET_TABLES
    "quick": Schedule(seeds=(0,), iterations=5000),
    "full": Schedule(seeds=(0, 1, 2), iterations=800),  # every row, 3 seeds (its minutes: reports/reproduction.json)
}


# The split each preset reports on (reports/protocol.md): split 1 is the development split every default
# was tuned on; the reference results (`full`) are on split 2, which no setting was chosen by looking at.
PRESET_SPLITS = {"ci": 1, "quick": 1, "full": 2}


# Where a reproduction writes its tables, figures and executed notebooks, relative to the repository root.
PRESET_REPORTS = {"ci": "runs/ci/reports", "quick": "reports", "full": "reports/full"}


@dataclass(frozen=True)
class TablePlan:
    """What a preset trains of one table: on which datasets, which rows, how long."""

    datasets: tuple[str, ...]  # the datasets the table's notebook trains on (its parameters cell's default)
    rows: tuple[str, ...] = ()  # these rows and the `ours` reference row; () for every row
    iterations: int | None = None  # None: the preset's schedule


# `quick` spends its 30 minutes on the three methods that carry Table 1's story (full supervision above, naive
# point supervision below, `ours` between), trained near their plateaus on toy-stuff: 5,000 iterations, which on
# 2 cores leaves no time for a second dataset (at 3,000 iterations on both presets `point_naive` reached 0.86 of
# its plateau; reports/convergence.md). Tables 2-3 keep, on toy-stuff, the rows the held-out tables found to
# matter beyond the seed noise (L_con: the transfer; L_in: it hurts; the keypoint head phi) at a fifth of Table
# 1's iterations: an ablation compares each row with `ours` at the same schedule. `full` trains every row of
# every table at its schedule: Table 1 on both presets, the ablations of Tables 2-3 on toy-stuff (their
# notebooks' default dataset).
PRESET_TABLES: dict[str, dict[str, TablePlan]] = {
    "quick": {
        "table1": TablePlan(("toy-stuff",), ("full_supervision", "point_naive", "ours")),
        "table2": TablePlan(("toy-stuff",), ("w/o L_con", "+ L_in (L_in + L_ex + L_con + L_ctl)"), 1000),
        "table3": TablePlan(("toy-stuff",), ("keypoint head phi off",), 1000),
    },
    "full": {
        "table1": TablePlan(("toy-stuff", "toy-scene")),
        "table2": TablePlan(("toy-stuff",)),
        "table3": TablePlan(("toy-stuff",)),
    },
}


def preset_rows(preset: str, table: str, rows: Rows) -> Rows:
    """The rows of ``table`` that ``preset`` trains (``PRESET_TABLES``; all of them where it names none)."""
    plan = PRESET_TABLES.get(preset, {}).get(table)
    return select_rows(rows, list(plan.rows)) if plan and plan.rows else rows


def table_datasets(preset: str, table: str) -> list[str]:
    """The datasets ``preset`` trains ``table`` on (``PRESET_TABLES``; every toy preset where it names none)."""
    plan = PRESET_TABLES.get(preset, {}).get(table)
    return list(plan.datasets) if plan else list(TOY_PRESETS)


def table_iterations(preset: str, table: str | None) -> int:
    """The iterations ``preset`` trains ``table``'s runs for (its schedule's, unless ``PRESET_TABLES`` says less)."""
    plan = PRESET_TABLES.get(preset, {}).get(table)
    return plan.iterations if plan and plan.iterations else SCHEDULES[preset].iterations


def preset_name(schedule: Schedule) -> str:
    """The name of the preset ``schedule`` is (``quick``, ``full``, ``ci``), or ``custom``."""
    return next((name for name, preset in SCHEDULES.items() if preset == schedule), "custom")
