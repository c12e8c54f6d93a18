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
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from pwslib.config import LOSS_TERMS, TrainConfig
from pwslib.io import DataError, atomic_path, read_checkpoint

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
RUN_FILES = ("config.json", CHECKPOINT, "log.csv", METRICS, "pseudo_labels.npy")  # what a run writes
LOCK = ".lock"  # present while a process trains into the folder


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to train into ``out`` where that would overwrite work: any run file without ``resume``, or a finished
    run whose checkpoint is gone (resuming it would train it again from scratch over its metrics)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder; choose a folder for the run")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not resume:
        raise DataError(
            f"{out} already holds a run ({', '.join(held)}); pass --resume to continue it, or choose another --out"
        )
    if resume and (out / METRICS).exists() and not (out / CHECKPOINT).exists():
        raise DataError(
            f"the run in {out} has finished ({METRICS}) and its checkpoint is gone, so it cannot be continued; "
            f"its results are kept: train a new run with another --out"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (created exclusively) while a process trains into ``out``: a second process given the same
    folder stops with a line naming the first. A lock left on this machine by a process that no longer runs (killed
    by a signal, out of memory) is taken over with a line saying so: the folder's checks (``check_run_folder``)
    still decide whether the run may continue. The stale lock is first renamed aside, which only one process can
    do, so two processes that find it at once never both train."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pass
        try:
            holder = json.loads(path.read_text())
            pid, host, since = int(holder["pid"]), str(holder["host"]), str(holder["since"])
        except FileNotFoundError:  # its holder finished meanwhile
            continue
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{path} exists but is unreadable; if no process trains into {out}, delete it") from None
        if host != socket.gethostname() or _process_alive(pid):
            raise DataError(
                f"{out} is in use: process {pid} on {host} has been training into it since {since} UTC; wait for it "
                f"to finish, stop it, or choose another --out"
            ) from None
        aside = path.with_name(f"{LOCK}.stale-{os.getpid()}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:  # another process took it over first
            continue
        aside.unlink()
        print(f"{path} was left by process {pid} (started {since} UTC), which no longer runs: taken over", flush=True)
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "since": since}, handle)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


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


LOG_FIELDS = [  # the columns of log.csv, one row per step: every loss term of config.LOSS_TERMS by name
    "step",
    "loss",
    *(term.name for term in LOSS_TERMS),
    "matched",
    "unmatched_targets",
    "lr",
    "images_per_second",
]


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows at or after ``step`` (left by an interrupted run after its last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["step"]) < step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
