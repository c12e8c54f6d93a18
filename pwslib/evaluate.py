"""Score a model on a test subset, or re-score a finished run's checkpoint.

    python -m pwslib.evaluate runs/ours_s0          # writes runs/ours_s0/evaluation.json

The test images are shared out over DDP ranks (image i to rank i mod W); the confusion matrices are
summed with ``all_reduce`` before the scores are computed, so every rank reports the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from pwslib.data import collate
from pwslib.data.splits import ClassSplit
from pwslib.distributed import Distributed
from pwslib.io import DataError, provenance, write_json_atomic
from pwslib.metrics import ConfusionMatrix, segmentation_scores
from pwslib.model.maskformer import predict


@torch.no_grad()
def confusion_matrix(
    model: torch.nn.Module, dataset, split: ClassSplit, batch_size: int = 64, distributed: Distributed | None = None
) -> torch.Tensor:
    """The (C, C) confusion matrix (true class x predicted class, pixels) of ``model`` on ``dataset``'s full
    label maps, summed over every DDP rank."""
    distributed = distributed or Distributed()
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(split.num_classes)
    mine = list(range(distributed.rank, len(dataset), distributed.world_size))
    for offset in range(0, len(mine), batch_size):
        batch = collate([dataset[i] for i in mine[offset : offset + batch_size]])
        confusion.update(predict(model, batch["image"]), batch["full_label"])
    confusion.all_reduce()
    model.train(was_training)
    return confusion.matrix


def evaluate_model(
    model: torch.nn.Module, dataset, split: ClassSplit, batch_size: int = 64, distributed: Distributed | None = None
) -> dict:
    """Base / novel / total mIoU, hIoU and per-class IoU of ``model`` on ``dataset`` (full label maps)."""
    start = time.perf_counter()
    scores = segmentation_scores(confusion_matrix(model, dataset, split, batch_size, distributed), split)
    scores["test_images"] = len(dataset)
    scores["evaluation_seconds"] = time.perf_counter() - start
    return scores


def load_run(folder: Path):
    """The ``Trainer`` of a run folder, restored from its checkpoint (model, bank, datasets, step)."""
    from pwslib.config import TrainConfig
    from pwslib.train import CHECKPOINT, Trainer, load_checkpoint

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise DataError(f"{folder} has no config.json: is it a run folder written by pwslib.train?")
    if not (folder / CHECKPOINT).exists():
        raise DataError(
            f"{folder} holds no {CHECKPOINT} yet: the run stopped before its first checkpoint; train it with "
            f"python -m pwslib.train --out {folder} --resume"
        )
    config = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
    trainer = Trainer(config, folder, progress=False)
    trainer.restore(load_checkpoint(folder / CHECKPOINT, config))
    trainer.model.eval()
    return trainer


def main(argv: list[str] | None = None) -> None:
    from pwslib.train import format_scores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder written by pwslib.train")
    args = parser.parse_args(argv)
    try:
        trainer = load_run(args.run)
    except DataError as error:
        sys.exit(f"error: {error}")
    scores = evaluate_model(trainer.model, trainer.test_set, trainer.split)
    print(format_scores(scores))  # first, so a failed write loses nothing
    try:
        write_json_atomic(args.run / "evaluation.json", {**scores, "step": trainer.step, **provenance()})
    except OSError as error:
        sys.exit(f"error: the scores above could not be written to {args.run / 'evaluation.json'} ({error.strerror})")


if __name__ == "__main__":
    main()
