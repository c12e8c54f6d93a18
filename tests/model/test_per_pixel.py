import re
from pathlib import Path

import pytest
import torch

from pwslib.model.per_pixel import PerPixelSegmenter, fit_per_pixel

WIDTHS = (8, 16, 16, 16)
REPOSITORY = Path(__file__).resolve().parents[2]


def batches(count: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        image = torch.randint(0, 256, (2, 3, 32, 32), generator=generator, dtype=torch.uint8)  # (B, 3, H, W)
        yield image, (image[:, 0] > 127).long()  # (B, H, W): a class a pixel's red channel names


def test_the_segmenter_gives_class_logits_at_image_size():
    assert PerPixelSegmenter(3, WIDTHS, dim=8)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 3, 32, 32)


def test_fit_learns_stops_at_the_end_of_its_schedule_and_reports_each_step_before_the_next_batch():
    torch.manual_seed(0)
    model = PerPixelSegmenter(2, WIDTHS, dim=8)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    drawn, reported = [], []

    def counted(source):
        for batch in source:
            drawn.append(len(drawn))
            yield batch

    def after_step(steps_done: int) -> None:
        reported.append((steps_done, len(drawn)))
        assert optimiser.param_groups[0]["lr"] <= 1e-2

    image, target = next(batches(1, seed=1))
    before = torch.nn.functional.cross_entropy(model(image), target).item()
    steps, loss = fit_per_pixel(model, optimiser, counted(batches(20)), lambda step: step / 12, 1e-2, after_step=after_step)
    assert steps == 12 and reported == [(step, step) for step in range(1, 13)]  # the 13th batch is drawn, not used
    assert torch.nn.functional.cross_entropy(model(image), target).item() < before and loss < before


def test_fit_counts_from_a_resumed_step_and_ends_when_its_batches_run_out():
    model = PerPixelSegmenter(2, WIDTHS, dim=8)
    optimiser = torch.optim.AdamW(model.parameters())
    steps, _ = fit_per_pixel(model, optimiser, batches(3), lambda step: step / 100, 1e-3, warmup_steps=10, first_step=5)
    assert steps == 8
    assert optimiser.param_groups[0]["lr"] == pytest.approx(1e-3 * (8 / 10) * (1 - 7 / 100) ** 0.9)  # warm-up, decay


def test_a_non_finite_loss_stops_fit_with_its_step():
    model = PerPixelSegmenter(2, WIDTHS, dim=8)
    with pytest.raises(FloatingPointError, match="nan at step 0"):
        fit_per_pixel(
            model, torch.optim.AdamW(model.parameters()), batches(2), lambda step: 0.0, 1e-3,
            loss_of=lambda logits, target: logits.sum() * float("nan"),
        )


def test_every_per_pixel_training_runs_through_fit_one_loop_in_the_project():
    # A training loop is where an optimiser steps after a backward pass: the trainer's (train.py) and the
    # per-pixel one (fit_per_pixel, which the backbone pretraining and the data card's probes call). The speed
    # benchmark also steps Hugging Face's MaskFormer, the peer it is compared with: that loop is the peer's.
    loops = {
        str(path.relative_to(REPOSITORY))
        for folder in ("pwslib", "studies")
        for path in (REPOSITORY / folder).rglob("*.py")
        if re.search(r"\.backward\(", path.read_text())
    }
    assert loops == {"pwslib/train.py", "pwslib/model/per_pixel.py", "studies/bench.py"}
