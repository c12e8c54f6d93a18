"""Reproduce Tables 1-3, the figures and the executed notebooks with one command.

    python -m pwslib.reproduce                   # quick: split 1, 1 seed, Table 1 on toy-stuff at 5,000 iterations (< 30 min, 2 cores)
    python -m pwslib.reproduce --preset full     # split 2 (held out), 3 seeds, 800 iterations per run -> reports/full
    python -m pwslib.reproduce --only 05_table1_methods
    python -m pwslib.reproduce --stale           # only the executed notebooks older than what they show

Trains the runs the preset plans (``experiments.schedules.PRESET_TABLES``) in one pool of processes, longest first, then
runs every notebook in ``notebooks/`` top to bottom with papermill, injecting the preset into its
``parameters`` cell, and saves the executed copies in ``<reports>/executed/`` (``reports/`` for ``quick``,
``reports/full/`` for ``full``: the two presets' tables and figures sit side by side), each carrying a record of
the report and run files it read (``experiments.freshness``); ``--stale`` re-executes only the notebooks whose
record no longer matches the checkout. Training runs are cached
by their full config under ``runs/<preset>/``, so an interrupted reproduction continues where it
stopped and a second one reuses every finished run. ``reports/reproduction.json`` keeps every
reproduction (per preset, oldest first) with its wall time, the runs it trained and the finished runs it found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from pwslib.experiments.cluster import RayCluster
from pwslib.experiments.grid import planned_configs, train_all
from pwslib.experiments.schedules import PRESET_REPORTS, SCHEDULES
from pwslib.io import (
    CHECKOUT,
    DataError,
    atomic_path,
    check_writable,
    provenance,
    read_json_or_set_aside,
    write_json_atomic,
)
from pwslib.experiments.freshness import FRESHNESS_KEY, READS_VARIABLE, freshness_record, stale_reasons
from pwslib.experiments.notebook import preset_values
from pwslib.io import git_commit
from pwslib.command_line import positive_whole

ROOT = CHECKOUT
NOTEBOOKS = (
    "00_overview",
    "01_data_and_split",
    "02_point_annotations",
    "03_model_and_keypoint_masks",
    "04_training",
    "05_table1_methods",
    "06_table2_ablation",
    "07_table3_variants",
    "08_visual_comparison",
)


def record_reproduction(path: Path, record: dict) -> None:
    """Append ``record`` to the history in ``path`` (per preset, oldest first), atomically."""
    history = read_json_or_set_aside(path, {})
    if not isinstance(history, dict):
        history = {}
    history.setdefault(record["preset"], []).append(record)
    write_json_atomic(path, history)


def stale_notebooks(names: list[str], executed: Path) -> dict[str, list[str]]:
    """The notebooks among ``names`` whose executed copy in ``executed`` is missing or stale, with the reasons."""
    stale = {}
    for name in names:
        copy = executed / f"{name}.ipynb"
        reasons = stale_reasons(copy, ROOT / "notebooks" / f"{name}.ipynb", ROOT) if copy.exists() else ["never executed"]
        if reasons:
            stale[name] = reasons
    return stale


def execute_notebook(name: str, preset: str, executed: Path) -> None:
    """Run ``notebooks/<name>.ipynb`` top to bottom on ``preset`` with papermill and save it, with its freshness
    record (the files its kernel opened, ``experiments.freshness``), atomically as ``executed/<name>.ipynb``."""
    import papermill

    source = ROOT / "notebooks" / f"{name}.ipynb"
    parameters = {"preset": preset}
    if "live_widget" in papermill.inspect_notebook(str(source)):
        parameters["live_widget"] = False  # headless executors can block on widgets (jupyter/nbclient#312)
    with tempfile.TemporaryDirectory() as scratch, atomic_path(executed / f"{name}.ipynb") as tmp:
        reads_log = Path(scratch) / "opened.txt"
        os.environ[READS_VARIABLE] = str(reads_log)  # the kernel inherits it; notebook.setup starts recording
        try:
            papermill.execute_notebook(
                str(source), str(tmp), parameters=parameters, cwd=str(ROOT / "notebooks"), progress_bar=False,
                kernel_name="python3",
            )
        finally:
            del os.environ[READS_VARIABLE]
        notebook = json.loads(tmp.read_text())
        notebook["metadata"][FRESHNESS_KEY] = freshness_record(source, reads_log, git_commit(), preset, ROOT)
        tmp.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    import papermill

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", choices=[p for p in SCHEDULES if p != "ci"])
    parser.add_argument("--only", nargs="+", choices=NOTEBOOKS, default=list(NOTEBOOKS))
    parser.add_argument(
        "--workers",
        type=positive_whole,
        default=min(2, os.cpu_count() or 1),
        help="training processes side by side (PWSLIB_WORKERS for the notebooks' kernels; see run_grid)",
    )
    parser.add_argument(
        "--stale", action="store_true", help="execute only the notebooks whose executed copy is stale (each trains "
        "or reuses the runs it shows)",
    )
    parser.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="train the planned runs as Ray tasks (one CPU each) on the cluster whose head is at ADDRESS (without "
        "one: $RAY_ADDRESS, else a new local cluster); the notebooks then read them",
    )
    args = parser.parse_args(argv)
    os.environ["PWSLIB_WORKERS"] = str(args.workers)
    injected = preset_values(args.preset)  # what the notebooks' `preset` parameter resolves to, for the record
    reports = ROOT / PRESET_REPORTS[args.preset]
    executed = reports / "executed"
    if args.stale:
        stale = stale_notebooks(args.only, executed)
        for name, reasons in stale.items():
            print(f"{name} is stale: {'; '.join(reasons)}")
        if not stale:
            print(f"every executed notebook in {executed} is fresh: nothing to do")
            return
        args.only = [name for name in args.only if name in stale]
    runs_root = ROOT / "notebooks" / injected["runs_root"]  # the notebooks resolve it from their own folder
    for folder in (executed, runs_root, reports / "figures"):  # before any training, not after it
        check_writable(folder, "the reproduction writes inside the checkout: run it from a copy you can write to")
    finished_before = len(list(runs_root.glob("*/metrics.json")))
    timings, planned_seconds = {}, 0.0
    start = time.perf_counter()
    planned = planned_configs(args.preset) if args.only == list(NOTEBOOKS) else []
    if planned:
        where = f"{args.workers} processes" if args.ray is None else "Ray tasks"
        print(f"== training the {len(planned)} planned runs ({where}, longest first)", flush=True)
        try:
            cluster = None if args.ray is None else RayCluster(args.ray or None)
            train_all(planned, runs_root, progress=True, workers=args.workers, cluster=cluster)
        except DataError as error:
            sys.exit(f"error: {error}")
        except KeyboardInterrupt:
            sys.exit(
                "interrupted while training: run the same command again; finished runs are reused and interrupted "
                "ones resume from their last checkpoint"
            )
        planned_seconds = round(time.perf_counter() - start, 1)
    for name in args.only:
        print(f"== {name} ({args.preset})", flush=True)
        began = time.perf_counter()
        try:
            execute_notebook(name, args.preset, executed)
        except papermill.PapermillExecutionError as error:
            sys.exit(
                f"error: notebook {name} stopped in cell {error.cell_index}: {error.ename}: {error.evalue.strip()} "
                f"(open notebooks/{name}.ipynb to see the cell); the runs that finished are kept, so the same "
                f"command continues from here once it is fixed"
            )
        except KeyboardInterrupt:
            sys.exit(
                f"interrupted in {name}: run the same command again; finished runs are reused and interrupted "
                f"ones resume from their last checkpoint"
            )
        timings[name] = round(time.perf_counter() - began, 1)
        print(f"   {timings[name]:.0f} s", flush=True)
    total = time.perf_counter() - start
    trained = len(list(runs_root.glob("*/metrics.json"))) - finished_before
    record = provenance(
        preset=args.preset,
        parameters=injected,
        runs_trained=trained,
        runs_finished_before=finished_before,
        planned_runs=len(planned),
        planned_runs_seconds=planned_seconds,
        notebook_seconds=timings,
        workers=args.workers,
        ray=args.ray,
        wall_seconds=round(total, 1),
    )
    record_reproduction(ROOT / "reports" / "reproduction.json", record)
    print(
        f"done in {total / 60:.1f} min: tables in {reports}, figures in {reports / 'figures'}, notebooks in {executed}"
    )


if __name__ == "__main__":
    main()
