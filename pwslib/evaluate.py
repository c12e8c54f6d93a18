"""Re-score a finished run's checkpoint (``load_run`` restores the run; the scoring is ``metrics.evaluate_model``).

python -m pwslib.evaluate runs/ours_s0          # writes runs/ours_s0/evaluation.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pwslib.config import TrainConfig
from pwslib.io import DataError, provenance, write_json_atomic
from pwslib.metrics import evaluate_model
from pwslib.metrics import format_scores
from pwslib.runs import CHECKPOINT, load_checkpoint
from pwslib.train import Trainer


def load_run(folder: Path):
    """The ``Trainer`` of a run folder, restored from its checkpoint (model, bank, datasets, step)."""
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise DataError(f"{folder} has no config.json: is it a run folder written by pwslib.train?")
    if not (folder / CHECKPOINT).exists():
        raise DataError(
            f"{folder} holds no {CHECKPOINT} yet: the run stopped before its first checkpoint; train it with "
            f"python -m pwslib.train --out {folder} --resume"
        )
    config = TrainConfig.from_saved(json.loads((folder / "config.json").read_text()))
    trainer = Trainer(config, folder, progress=False)
    trainer.restore(load_checkpoint(folder / CHECKPOINT, config))
    trainer.model.eval()
    return trainer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder written by pwslib.train")
    args = parser.parse_args(argv)
    try:
        trainer = load_run(args.run)
        scores = evaluate_model(trainer.model, trainer.test_set, trainer.split)
    except (DataError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
    print(format_scores(scores))  # first, so a failed write loses nothing
    try:
        write_json_atomic(args.run / "evaluation.json", {**scores, "step": trainer.step, **provenance()})
    except OSError as error:
        sys.exit(f"error: the scores above could not be written to {args.run / 'evaluation.json'} ({error.strerror})")


if __name__ == "__main__":
    main()
