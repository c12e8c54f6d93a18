import numpy as np
import pytest

from pwslib.data.splits import ClassSplit
from pwslib.datacard import colour_classifier_scores, render_markdown


def test_colour_classifier_solves_colour_coded_data_and_fails_on_random_colours():
    split = ClassSplit(("a", "b", "c", "d"), (3,))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(20, 8, 8)).astype(np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)
    coded = colour_classifier_scores(palette[labels], labels, palette[labels], labels, split)
    assert coded["total_miou"] == pytest.approx(100.0)
    noise = rng.integers(0, 256, size=(20, 8, 8, 3)).astype(np.uint8)
    fresh = rng.integers(0, 256, size=(20, 8, 8, 3)).astype(np.uint8)
    random = colour_classifier_scores(noise, labels, fresh, labels, split)
    assert random["total_miou"] < 40


def test_markdown_flags_numbers_outside_the_bands():
    card = {
        "preset": "toy-x",
        "classes": ["a", "b"],
        "stuff_classes": ["a"],
        "thing_classes": ["b"],
        "novel_splits": [["b"]],
        "image_size": 96,
        "num_train": 1,
        "num_test": 1,
        "unlabelled_pixel_share": 2.0,
        "frequencies": [],
        "partners": [],
        "colour_classifier": {"total_miou": 30.0},
        "learnability_probe": {"total_miou": 50.0, "images_per_second": 100.0},
    }
    meta = {"git_commit": "abc", "machine": "m", "date_utc": "d", "wall_seconds": 1.0, "probe_minutes": 5}
    text = render_markdown([card], meta)
    assert "30.0 (**OUTSIDE**)" in text and "50.0 (inside)" in text
