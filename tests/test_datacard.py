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


def test_clicked_labels_know_a_novel_class_only_at_its_clicks():
    import torch

    from pwslib.datacard import clicked_labels

    base = torch.full((1, 4, 4), 255)
    base[0, 0] = 0  # a base row; the rest is novel (ignored in the base label map)
    points = torch.tensor([[[2, 3, 5], [3, 1, 6], [-1, -1, -1]]])  # two clicks, one padding row
    labels = clicked_labels({"base_label": base, "points": points})
    assert labels[0, 2, 3] == 5 and labels[0, 3, 1] == 6 and (labels[0, 0] == 0).all()
    assert int((labels == 255).sum()) == 16 - 4 - 2  # every other novel pixel stays ignored


def test_click_probe_compares_clicks_with_full_masks_at_the_same_steps(toy_root, monkeypatch):
    from conftest import SMALL_TOY

    from pwslib import datacard

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    real_build = datacard.build_dataset
    monkeypatch.setattr(datacard, "build_dataset", lambda *a, **k: real_build(*a, **k, **SMALL_TOY))
    scores = datacard.click_probe("toy-stuff", steps=2)
    assert scores["clicks"]["train_images"] == scores["full_masks"]["train_images"] == 2 * 16
    assert scores["steps"] == 2 and scores["split"] == 1 and scores["novel_ratio"] >= 0
