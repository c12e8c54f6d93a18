import math

import pytest

from pwslib.schedule import learning_rate_at


def test_the_warm_up_ramps_linearly_then_poly_decay_reaches_zero_at_the_end():
    assert learning_rate_at(1.0, 0.0, step=0, warmup_steps=4) == pytest.approx(0.25)
    assert learning_rate_at(1.0, 0.0, step=3, warmup_steps=4) == pytest.approx(1.0)
    assert learning_rate_at(2.0, 0.5, step=100, warmup_steps=4) == pytest.approx(2.0 * 0.5**0.9)
    assert learning_rate_at(2.0, 1.0) == 0.0


def test_cosine_decay_halves_midway_and_an_unknown_decay_is_refused():
    assert learning_rate_at(1.0, 0.5, decay="cosine") == pytest.approx(0.5)
    assert learning_rate_at(1.0, 1.0, decay="cosine") == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(learning_rate_at(1.0, 0.25, decay="poly", power=1.0), 0.75)
    with pytest.raises(ValueError, match="linear"):
        learning_rate_at(1.0, 0.5, decay="linear")


def test_the_trainer_the_pretraining_and_the_probes_share_the_schedule():
    import torch

    from pwslib import train
    from pwslib.config import config_for
    from pwslib.model.per_pixel import PerPixelSegmenter, fit_per_pixel

    config = config_for("ours", iterations=100, warmup_iterations=10)
    assert train.learning_rate(config, 40) == learning_rate_at(config.learning_rate, 0.4, 40, 10)
    # the pretraining and the data card's probes train through fit_per_pixel: step 500 of 1,000, 100 warm-up steps
    model = PerPixelSegmenter(2, (8, 16, 16, 16), dim=8)
    optimiser = torch.optim.AdamW(model.parameters())
    batch = (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1, 32, 32, dtype=torch.long))
    fit_per_pixel(model, optimiser, [batch], lambda step: step / 1000, 2e-3, warmup_steps=100, first_step=500)
    assert optimiser.param_groups[0]["lr"] == learning_rate_at(2e-3, 0.5, 500, 100)
