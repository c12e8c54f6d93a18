"""Re-score a finished run's checkpoint (``load_model`` restores its model and test set; the scoring is
``metrics.evaluate_model``).

python -m pwslib.evaluate runs/ours_s0                       # writes runs/ours_s0/evaluation.json
python -m pwslib.evaluate runs/ours_s0 --subset validation   # the tuning images: runs/ours_s0/validation.json

The test images are for reporting; every tuning decision is scored on the toy presets' validation images
(``validation_scores``, which the recipe studies and ``pwslib.experiments --scored-on validation`` read).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from pwslib.assembly import build_model, test_dataset
from pwslib.config import TrainConfig
from pwslib.data.splits import ClassSplit
from pwslib.io import DataError, provenance, write_json_atomic
from pwslib.metrics import evaluate_model
from pwslib.metrics import format_scores
from pwslib.model.maskformer import PointWeakShotMaskFormer
from pwslib.runs import CHECKPOINT, load_checkpoint, read_run_config, read_run_metrics, scored_weights

VALIDATION_RECORD = "validation.json"


@dataclass
class LoadedRun:
    """What scoring and drawing a finished run need, and nothing else (no optimiser, criterion, memory bank,
    training set or backbone pretraining)."""

    config: TrainConfig
    model: PointWeakShotMaskFormer  # in eval mode, the checkpoint's scored weights (the weight average when on)
    test_set: Dataset  # the images it is scored on: the test subset, or the validation subset when asked for
    split: ClassSplit
    step: int  # the training step of the checkpoint


def load_model(folder: Path, subset: str = "test") -> LoadedRun:
    """The model of a run folder, restored from its checkpoint (checksum and config checked), with the images of
    ``subset`` (``test``, or ``validation``) to score it on."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise DataError(f"{folder} has no config.json: is it a run folder written by pwslib.train?")
    if not (folder / CHECKPOINT).exists():
        raise DataError(
            f"{folder} holds no {CHECKPOINT} yet: the run stopped before its first checkpoint; train it with "
            f"python -m pwslib.train --out {folder} --resume"
        )
    config = read_run_config(folder)
    state = load_checkpoint(folder / CHECKPOINT, config)
    test = test_dataset(config, subset)
    # the checkpoint holds every weight: no pretrained backbone is loaded (or pretrained) first
    model = build_model(dataclasses.replace(config, pretrained_backbone=False), test.split.num_classes)
    model.load_state_dict(scored_weights(state))
    return LoadedRun(config, model.eval(), test, test.split, int(state["step"]))


def validation_scores(folder: Path) -> dict:
    """A finished run's scores on its validation images: read from ``validation.json`` when it was made from the
    run's final checkpoint, else computed from that checkpoint and saved there (the run's own files are untouched)."""
    folder = Path(folder)
    record = folder / VALIDATION_RECORD
    if not (folder / "metrics.json").exists():
        raise DataError(f"{folder} has not finished training (no metrics.json): finish it before scoring it")
    final_step = read_run_metrics(folder).get("config", {}).get("iterations")
    if record.exists():
        with contextlib.suppress(ValueError):  # a damaged record is made again below
            saved = json.loads(record.read_text())
            if isinstance(saved, dict) and saved.get("step") == final_step and "hiou" in saved:
                return saved
    loaded = load_model(folder, "validation")
    scores = scored_record(loaded, evaluate_model(loaded.model, loaded.test_set, loaded.split))
    write_json_atomic(record, scores)
    return scores


def scored_record(loaded: LoadedRun, scores: dict) -> dict:
    """What an evaluation file holds: the scores, the checkpoint's step, how many images, and the provenance."""
    return {**scores, "step": loaded.step, "images": len(loaded.test_set), **provenance()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder written by pwslib.train")
    parser.add_argument(
        "--subset", choices=("test", "validation"), default="test", help="the images to score on (default: test)"
    )
    args = parser.parse_args(argv)
    try:
        loaded = load_model(args.run, args.subset)
        scores = evaluate_model(loaded.model, loaded.test_set, loaded.split)
    except (DataError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
    if not (args.run / "metrics.json").exists():
        print(
            f"note: {args.run} has not finished training (no metrics.json): these are the scores of its checkpoint at "
            f"step {loaded.step} of {loaded.config.iterations}, not the run's result"
        )
    print(format_scores(scores))  # first, so a failed write loses nothing
    out = args.run / ("evaluation.json" if args.subset == "test" else VALIDATION_RECORD)
    try:
        write_json_atomic(out, scored_record(loaded, scores))
    except OSError as error:
        sys.exit(f"error: the scores above could not be written to {out} ({error.strerror})")


if __name__ == "__main__":
    main()
