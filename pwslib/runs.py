"""A run folder and what it holds: ``config.json``, ``checkpoint.pt``, ``log.csv`` and ``metrics.json``.

Folders are named by the run's dataset, method, seed and config key, so a changed config never reuses a
finished run. Checkpoints are written atomically (a full disk leaves the previous one as it was) behind a
SHA-256 of their bytes, checked on every load, and read with ``weights_only=True`` (``io.save_checkpoint`` /
``io.read_checkpoint``, which the pretraining's checkpoints share), checked against the config they must belong to; the log is cut back to the last checkpoint when an interrupted run resumes.
A folder that holds any run file is never trained into again without ``--resume``, and ``.lock`` keeps a
second process out while one trains.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from pwslib.config import TrainConfig
from pwslib.io import DataError, atomic_path, read_checkpoint
from pwslib.method import losses

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
RUN_FILES = ("config.json", CHECKPOINT, "log.csv", METRICS, "pseudo_labels.npy")  # what a run writes
LOCK = ".lock"  # present while a process trains into the folder


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to train into ``out`` where that would overwrite work: any run file without ``resume``, or a finished
    run (read-only: resuming it would rewrite its metrics and their provenance)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder; choose a folder for the run")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not resume:
        raise DataError(
            f"{out} already holds a run ({', '.join(held)}); pass --resume to continue it, or choose another --out"
        )
    if resume and (out / METRICS).exists():
        raise DataError(
            f"the run in {out} has finished ({METRICS}): a finished run is read-only, so nothing was changed; "
            f"score it again with python -m pwslib.evaluate {out}, or train a new run with another --out"
        )


def _holder(descriptor: int) -> dict | None:
    """The record a lock file holds (pid, host, since), None when it holds none yet or is damaged."""
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0))
        return {"pid": int(holder["pid"]), "host": str(holder["host"]), "since": str(holder["since"])}
    except (ValueError, KeyError, TypeError):
        return None


def _is_current(descriptor: int, path: Path) -> bool:
    """Whether ``descriptor`` is still the file at ``path`` (its holder may have removed it since it was opened)."""
    try:
        return os.fstat(descriptor).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class RunInUse(DataError):
    """Another live process holds the run folder's lock (``run_lock``)."""


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out/.lock`` while a process trains into ``out``: a second process given the
    same folder stops with a line naming the first (the file records its pid, host and start). The kernel releases
    the lock when its holder dies, however it dies (a signal, out of memory), so a lock file left behind holds no
    lock: it is taken over with a line saying so, and the folder's checks (``check_run_folder``) still decide
    whether the run may continue. A folder it made stays only if the run wrote something into it."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    while True:
        descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            who = (
                f"process {holder['pid']} on {holder['host']} has been training into it since {holder['since']} UTC"
                if holder
                else "another process is starting to train into it"
            )
            raise RunInUse(f"{out} is in use: {who}; wait for it to finish, stop it, or choose another --out") from None
        if _is_current(descriptor, path):
            break
        os.close(descriptor)  # locked a file its last holder had just removed: open the folder's lock file again
    left = _holder(descriptor)
    if left:
        print(f"{path} was left by process {left['pid']} (started {left['since']} UTC), which no longer runs: taken over",
              flush=True)
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)
        if created and not any(out.iterdir()):  # a run refused before its first file leaves nothing behind
            out.rmdir()


RECORDED_BY_EVERY_RUN = ("method", "dataset", "seed", "iterations")  # in every config.json since the first version


def read_run_config(folder: Path) -> TrainConfig:
    """The config a run folder's ``config.json`` records, checked: readable JSON, an object of known fields
    (``TrainConfig.from_saved``), holding the fields every run has recorded; anything else is damage, and a
    ``DataError`` says which file and how to go on."""
    path = Path(folder) / "config.json"
    fix = "restore it from a copy, or train the run again with another --out"
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, or not JSON
        raise DataError(f"{path} cannot be read as a run config ({error}): {fix}") from None
    if isinstance(values, dict):
        missing = [name for name in RECORDED_BY_EVERY_RUN if name not in values]
        if missing:
            raise DataError(f"{path} lacks {missing}, which every run records: it is damaged; {fix}")
    return TrainConfig.from_saved(values)


FINAL_SCORES = ("base_miou", "novel_miou", "total_miou", "hiou", "per_class_iou")  # in every metrics.json


def read_run_metrics(folder: Path) -> dict:
    """A finished run's ``metrics.json``, checked: readable JSON, an object holding every final score; anything
    else is damage, and a ``DataError`` says which file and how to go on (the checkpoint scores the run again)."""
    path = Path(folder) / METRICS
    fix = f"delete it and score the run again with python -m pwslib.evaluate {folder}, or restore it from a copy"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path} cannot be read as a run's scores ({error}): {fix}") from None
    missing = [name for name in FINAL_SCORES if name not in metrics] if isinstance(metrics, dict) else list(FINAL_SCORES)
    if missing:
        raise DataError(f"{path} lacks the scores {missing}: it is damaged; {fix}")
    return metrics


def run_folder(runs_root: Path, config: TrainConfig) -> Path:
    """The folder of ``config``'s run under ``runs_root``."""
    return Path(runs_root) / f"{config.dataset}-{config.method}-s{config.seed}-{config.key()}"


def load_checkpoint(path: Path, config: TrainConfig) -> dict:
    """Read a run's checkpoint (``read_checkpoint``) and check it belongs to ``config``."""
    state = read_checkpoint(path)
    if "config" not in state or "model" not in state:
        raise DataError(f"{path} is not a pwslib checkpoint (no config / model state)")
    saved = TrainConfig.from_dict(state["config"])
    if saved.key() != config.key():
        differing = sorted(k for k, v in saved.to_dict().items() if config.to_dict().get(k) != v)
        raise DataError(
            f"checkpoint {path} was trained with another config (differs in {differing}); "
            f"use a new --out folder or the config it was made with"
        )
    return state


def scored_weights(state: dict) -> dict:
    """The model weights a checkpoint's run is scored with: its exponential moving average of the weights when the
    run kept one (``weight_average_decay``; ``AveragedModel`` names them ``module.*``), else its weights."""
    average = state.get("weight_average") or {}
    prefix = "module."
    return {name[len(prefix) :]: value for name, value in average.items() if name.startswith(prefix)} or state["model"]


def log_fields() -> list[str]:
    """The columns of log.csv, one row per step: every loss term of ``losses.LOSS_TERMS`` by name."""
    return ["step", "loss", *(term.name for term in losses.LOSS_TERMS), "matched", "unmatched_targets", "lr", "images_per_second"]


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows at or after ``step`` (left by an interrupted run after its last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != log_fields():
            raise DataError(
                f"{path} has the columns {reader.fieldnames}, not this version's {log_fields()}: move it away to "
                "resume (the checkpoint holds the run; the log restarts at its step)"
            )
        try:
            rows = [row for row in reader if int(row["step"]) < step]
        except (TypeError, ValueError) as error:
            raise DataError(f"{path} has a damaged row ({error}): move it away to resume") from None
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=log_fields())
        writer.writeheader()
        writer.writerows(rows)
