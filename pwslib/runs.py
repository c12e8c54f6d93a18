"""A run folder and what it holds: ``config.json``, ``checkpoint.pt``, ``log.csv`` and ``metrics.json``.

Folders are named by the run's dataset, method, seed and config key, so a changed config never reuses a
finished run. Checkpoints are written atomically (a full disk leaves the previous one as it was) and read
with ``weights_only=True``, checked against the config they must belong to; the log is cut back to the
last checkpoint when an interrupted run resumes.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import torch

from pwslib.config import TrainConfig
from pwslib.io import DataError, atomic_path

CHECKPOINT = "checkpoint.pt"


def run_folder(runs_root: Path, config: TrainConfig) -> Path:
    """The folder of ``config``'s run under ``runs_root``."""
    return Path(runs_root) / f"{config.dataset}-{config.method}-s{config.seed}-{config.key()}"


def load_checkpoint(path: Path, config: TrainConfig) -> dict:
    """Read a checkpoint (``weights_only=True``) and check it belongs to ``config``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise DataError(
            f"checkpoint {path} is unreadable or truncated ({type(error).__name__}: {error}); delete it "
            f"to start the run over, or restore it from a copy"
        ) from error
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise DataError(f"{path} is not a pwslib checkpoint (no config / model state)")
    saved = TrainConfig.from_dict(state["config"])
    if saved.key() != config.key():
        differing = sorted(k for k, v in saved.to_dict().items() if config.to_dict().get(k) != v)
        raise DataError(
            f"checkpoint {path} was trained with another config (differs in {differing}); "
            f"use a new --out folder or the config it was made with"
        )
    return state


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically: a failed write (a full disk) leaves the previous checkpoint as it was."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError ("unexpected pos")
        needed = sum(t.numel() * t.element_size() for t in state["model"].values()) * 3 / 2**20  # weights + AdamW
        free = shutil.disk_usage(path.parent).free / 2**20
        kept = "the previous checkpoint is intact" if path.exists() else "no earlier checkpoint existed"
        raise DataError(
            f"could not write the checkpoint in {path.parent} ({type(error).__name__}: {error}); {free:.0f} MiB free, "
            f"about {needed:.0f} MiB needed; {kept}: free some space and resume with --resume"
        ) from error


LOG_FIELDS = [  # the columns of log.csv, one row per step
    "step",
    "loss",
    "classification",
    "pixel_classification",
    "focal",
    "dice",
    "inclusion",
    "exclusion",
    "consistency",
    "contrastive",
    "keypoint",
    "complementary",
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
