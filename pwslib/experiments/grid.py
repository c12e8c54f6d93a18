"""Many runs: a table's grid of (row, dataset, seed) trained or reused, in parallel processes.

A run is cached under ``<runs_root>/<dataset>-<method>-s<seed>-<config hash>``: re-running a table reuses
finished runs (their ``metrics.json``) and resumes interrupted ones from their checkpoint, so an
interrupted reproduction continues where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import torch

from pwslib.command_line import positive_whole
from pwslib.config import TrainConfig, config_for
from pwslib.data import REAL_BENCHMARKS, ensure_points
from pwslib.experiments.cluster import RayCluster, train_on_ray
from pwslib.experiments.progress import POLL_SECONDS, GridProgress
from pwslib.experiments.report import SCORES
from pwslib.experiments.schedules import (
    PRESET_SPLITS,
    PRESET_TABLES,
    SCHEDULES,
    Schedule,
    preset_rows,
    table_iterations,
)
from pwslib.experiments.tables import TABLES
from pwslib.evaluate import validation_scores
from pwslib.io import DataError, default_data_root
from pwslib.pretraining import PretrainingRecipe, pretrained_backbone
from pwslib.runs import RunInUse, read_run_metrics, run_folder
from pwslib.train import run

def grid_config(method: str, dataset: str, split: int, seed: int, schedule: Schedule, overrides: dict) -> TrainConfig:
    """The config of one run of a table: ``method`` at ``schedule``, then ``overrides`` (the row's and the grid's)."""
    return config_for(method, dataset=dataset, split=split, seed=seed, **{**schedule.overrides(), **overrides})


def planned_configs(preset: str) -> list[TrainConfig]:
    """Every run of ``preset``'s tables that ``PRESET_TABLES`` plans, longest first: the reproduction trains them
    in one pool of processes before the notebooks read them (a notebook at a time would leave a core idle)."""
    configs = {}
    for table, plan in PRESET_TABLES.get(preset, {}).items():
        schedule = dataclasses.replace(SCHEDULES[preset], iterations=table_iterations(preset, table))
        for method, row_overrides in preset_rows(preset, table, TABLES[table][0]()).values():
            for dataset in plan.datasets:
                for seed in schedule.seeds:
                    config = grid_config(method, dataset, PRESET_SPLITS[preset], seed, schedule, row_overrides)
                    configs[config.key()] = config
    return sorted(configs.values(), key=lambda config: -config.iterations)


def run_cached(config: TrainConfig, runs_root: Path, progress: bool = True, checkpoint_every: float = 120.0) -> dict:
    """The metrics of ``config``: read if finished, resumed if interrupted, trained otherwise (checkpointed every
    ``checkpoint_every`` seconds)."""
    folder = run_folder(runs_root, config)
    metrics_path = folder / "metrics.json"
    if metrics_path.exists():
        return read_run_metrics(folder)
    try:
        return run(config, folder, resume=True, progress=progress, checkpoint_every=checkpoint_every)  # continue it
    except RunInUse as error:  # a grid names its folders itself: the way out is another runs root, not another --out
        who = str(error).split("; wait for it", 1)[0]
        raise DataError(
            f"{who}: another grid is training this run; wait for it to finish (this grid then reuses the run), stop "
            f"it, or give this grid a runs root of its own (--runs-root)"
        ) from None


def data_available(dataset: str) -> bool:
    """True for the toy presets; for a real benchmark, whether it was prepared (else say how)."""
    if dataset not in REAL_BENCHMARKS:
        return True
    folder = default_data_root() / dataset
    if (folder / "labels" / "train").is_dir():
        return True
    print(
        f"{dataset} is not prepared in {folder}. Get it with:\n"
        f"    python data_scripts/{dataset}.py --root {folder.parent}\n"
        f"(downloads the official archive, verifies it, converts labels, simulates clicks), then run this "
        f"notebook again. Nothing was trained."
    )
    return False


def workers_from_environment() -> int:
    """The processes ``PWSLIB_WORKERS`` asks for (1 when unset), checked: a whole number of at least 1."""
    try:
        return positive_whole(os.environ.get("PWSLIB_WORKERS", "1"))
    except argparse.ArgumentTypeError as error:
        raise DataError(f"PWSLIB_WORKERS {error}: set it so, or unset it") from None


def run_grid(
    rows: dict[str, tuple[str, dict]],
    datasets: list[str],
    split: int,
    schedule: Schedule,
    runs_root: Path,
    progress: bool = True,
    workers: int | None = None,
    overrides: dict[str, Any] | None = None,
    train: bool = True,
    scored_on: str = "test",
    cluster: RayCluster | None = None,
    checkpoint_every: float = 120.0,
) -> pd.DataFrame:
    """Train (or reuse) every (row, dataset, seed); one result row per run.

    ``rows`` maps a row name to ``(method, config overrides)``; ``overrides`` are config fields every run
    gets (e.g. ``{"precision": "float32"}`` to compute in float32 on any machine). With ``workers`` > 1 (default:
    the ``PWSLIB_WORKERS`` environment variable, else 1) the runs still to train are shared out over that
    many processes, each with ``cores / workers`` torch threads: on 2 cores two 1-thread runs side by
    side deliver 1.2-1.3x the images/s of one 2-thread run (small convolutions do not use 2 threads fully).
    ``train=False`` reads finished runs only: a run not finished is an error that names it (a report made again
    from its runs never trains by surprise). ``scored_on="validation"`` scores every run on its toy preset's
    validation images (``evaluate.validation_scores``): the scores to tune on; ``"test"`` (the default) reads the
    reported test scores of ``metrics.json``. ``cluster``: train the runs as Ray tasks there instead
    (``cluster.train_on_ray``); ``checkpoint_every``: seconds between a run's checkpoints.
    """
    if scored_on not in ("test", "validation"):
        raise DataError(f"scored_on must be 'test' or 'validation', got {scored_on!r}")
    workers = workers or workers_from_environment()
    planned = []
    for dataset in datasets:
        if not data_available(dataset):
            continue
        for name, (method, row_overrides) in rows.items():
            for seed in schedule.seeds:
                config = grid_config(method, dataset, split, seed, schedule, {**(overrides or {}), **row_overrides})
                planned.append((name, config, method == "ours" and not row_overrides))
    configs = list({config.key(): config for _, config, _ in planned}.values())
    metrics = train_all(configs, Path(runs_root), progress, workers, train, cluster, checkpoint_every)
    if scored_on == "validation":
        for config in configs:
            scores = validation_scores(run_folder(runs_root, config))
            metrics[config.key()] = {**metrics[config.key()], **{k: scores[k] for k in SCORES}}
    records = [
        {
            "row": name,
            "dataset": config.dataset,
            "method": config.method,
            "seed": config.seed,
            **{k: metrics[config.key()][k] for k in SCORES},
            "wall_seconds": metrics[config.key()].get("wall_seconds"),
            "git_commit": metrics[config.key()].get("git_commit"),
            "toy_generator": config.toy_generator,
            "run": str(run_folder(runs_root, config)),
            "reference": reference,  # `ours` with its defaults: the row the others are tested against
            "scored_on": scored_on,
        }
        for name, config, reference in planned
    ]
    return pd.DataFrame.from_records(records)


def train_all(
    configs: list[TrainConfig], runs_root: Path, progress: bool, workers: int, train: bool = True,
    cluster: RayCluster | None = None, checkpoint_every: float = 120.0,
) -> dict:
    """Metrics of every config by its key: cached ones read, the rest trained here, in ``workers`` processes or as
    Ray tasks on ``cluster`` (``train=False``: the rest is an error naming them)."""
    pending = [c for c in configs if not (run_folder(runs_root, c) / "metrics.json").exists()]
    if pending and not train:
        names = ", ".join(run_folder(runs_root, c).name for c in pending)
        raise DataError(
            f"{len(pending)} of {len(configs)} runs have not finished in {runs_root} ({names}); nothing was trained: "
            "run the same command without --report-only to train them"
        )
    if cluster is None and (workers <= 1 or len(pending) <= 1):
        return {config.key(): run_cached(config, runs_root, progress, checkpoint_every) for config in configs}
    for recipe in {PretrainingRecipe.of_run(config) for config in pending} - {None}:
        pretrained_backbone(recipe)  # once, before the workers would race to pretrain it
    for data in {_training_data(config) for config in pending}:
        ensure_points(*data[:5], data_seed=data[5], **json.loads(data[6]))  # the toy scenes and clicks, once too
    if cluster is not None:
        train_on_ray(pending, runs_root, cluster, run_cached, checkpoint_every, progress)
    else:
        train_in_processes(pending, runs_root, progress, workers, checkpoint_every)
    return {config.key(): run_cached(config, runs_root, progress) for config in configs}


def train_in_processes(
    configs: list[TrainConfig], runs_root: Path, progress: bool, workers: int, checkpoint_every: float = 120.0
) -> None:
    """Train ``configs`` in ``workers`` spawned processes, longest first, so that no core idles at the end.

    If this process stops early (Ctrl-C, a SIGTERM, a run that failed), its workers are stopped at once: each
    interrupted run keeps its last checkpoint, and the next call resumes it. Left alone, a worker would train on
    after its parent died, and a restarted reproduction would train the same run twice, side by side."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    others = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(workers, context, initializer=torch.set_num_threads, initargs=(threads,))
    try:
        with sigterm_interrupts():
            longest_first = sorted(configs, key=lambda config: -config.iterations)
            waiting = {pool.submit(run_cached, config, runs_root, False, checkpoint_every) for config in longest_first}
            with GridProgress(longest_first, runs_root, f"grid ({workers} processes)", progress) as line:
                while waiting:
                    done, waiting = wait(waiting, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                    line.poll()
    except BaseException:
        for worker in set(multiprocessing.active_children()) - others:
            worker.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, a SIGTERM to this process raises ``KeyboardInterrupt`` (as Ctrl-C does) instead of
    killing it outright, so that the code around can stop what it started. Only the main thread receives
    signals; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signal_number, frame):
        raise KeyboardInterrupt(f"stopped by signal {signal_number} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _training_data(config: TrainConfig) -> tuple:
    """What a run's training set is made from, hashable: ``ensure_points``'s arguments."""
    return (
        config.dataset,
        config.split,
        config.points_per_class,
        config.point_rule,
        config.point_seed,
        config.data_seed,
        json.dumps(config.toy_options, sort_keys=True),
    )
