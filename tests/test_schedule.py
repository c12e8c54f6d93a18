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
    from pwslib import pretraining, train
    from pwslib.config import config_for
    from pwslib.pretraining import PretrainingRecipe

    config = config_for("ours", iterations=100, warmup_iterations=10)
    assert train.learning_rate(config, 40) == learning_rate_at(config.learning_rate, 0.4, 40, 10)
    recipe = PretrainingRecipe(steps=1000, warmup_steps=100)
    assert pretraining._learning_rate(recipe, 500) == learning_rate_at(recipe.learning_rate, 0.5, 500, 100)
