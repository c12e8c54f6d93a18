import numpy as np
import pytest

from pwslib.data.splits import ClassSplit
from studies.datacard import colour_classifier_scores, render_markdown


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

    from studies.datacard import clicked_labels

    base = torch.full((1, 4, 4), 255)
    base[0, 0] = 0  # a base row; the rest is novel (ignored in the base label map)
    points = torch.tensor([[[2, 3, 5], [3, 1, 6], [-1, -1, -1]]])  # two clicks, one padding row
    labels = clicked_labels({"base_label": base, "points": points})
    assert labels[0, 2, 3] == 5 and labels[0, 3, 1] == 6 and (labels[0, 0] == 0).all()
    assert int((labels == 255).sum()) == 16 - 4 - 2  # every other novel pixel stays ignored


def test_click_probe_compares_clicks_with_full_masks_at_the_same_steps(toy_root, monkeypatch):
    from conftest import SMALL_TOY

    from studies import datacard

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    real_build, built = datacard.build_dataset, []

    def build(preset, subset, **options):
        built.append(subset)
        return real_build(preset, subset, **options, **SMALL_TOY)

    monkeypatch.setattr(datacard, "build_dataset", build)
    scores = datacard.click_probe("toy-stuff", steps=2)
    assert scores["clicks"]["train_images"] == scores["full_masks"]["train_images"] == 2 * 16
    assert scores["steps"] == 2 and scores["split"] == 1 and scores["novel_ratio"] >= 0
    assert built == ["train", "validation"] and scores["scored_on"] == "validation"  # a probe chooses: never on test


def test_clicks_on_every_class_know_each_class_present_at_one_deep_pixel_and_nothing_else():
    import torch

    from studies.datacard import clicks_on_every_class

    full = torch.full((2, 9, 9), 255)
    full[0, :, :5], full[0, :, 5:] = 0, 3  # two classes side by side
    full[1, 1:8, 1:8] = 2  # one class, an unlabelled border
    labels = clicks_on_every_class(full)  # (2, 9, 9)
    clicked = labels != 255
    assert clicked.sum(dim=(1, 2)).tolist() == [2, 1]
    assert sorted(labels[0][clicked[0]].tolist()) == [0, 3] and labels[1][clicked[1]].tolist() == [2]
    assert (labels[clicked] == full[clicked]).all()  # a click carries its pixel's class
    assert torch.nonzero(clicked[1]).tolist() == [[4, 4]]  # the deepest pixel of the square


def test_the_probe_clicks_every_class_only_at_centres_and_names_its_choices(monkeypatch):
    from studies import datacard

    with pytest.raises(ValueError, match="point_rule='centre'"):
        datacard.click_probe("toy-stuff", steps=1, point_rule="uniform", clicked="every class")
    with pytest.raises(ValueError, match="clicked must be one of"):
        datacard.click_probe("toy-stuff", steps=1, clicked="base")


def test_unlabelled_surroundings_measure_the_ring_outside_the_class():
    from pwslib.data.summaries import unlabelled_surroundings

    split = ClassSplit(("base", "novel", "other_novel"), (1, 2))
    labels = np.zeros((1, 20, 20), dtype=np.uint8)
    labels[0, 8:12, 8:12] = 1  # a novel square on base pixels...
    labels[0, :, 14:] = 2  # ...and a second novel class on its right, beyond the ring's outer edge
    shares = unlabelled_surroundings(labels, split, inner=1, outer=2)
    assert shares["novel"] == 0.0  # the ring (distance 2) lies on base pixels only
    labels[0, 8:12, 11:14] = 2  # now the second novel class touches it
    assert unlabelled_surroundings(labels, split, inner=1, outer=2)["novel"] > 0


def test_class_balanced_loss_weighs_a_one_pixel_class_like_a_large_one():
    import torch

    from studies.datacard import class_balanced_cross_entropy

    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 0] = 2.0  # class 0 predicted everywhere
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 1  # class 1 known at one pixel
    target[0, 3, 3] = 255
    per_class = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="none")[0]
    expected = (per_class[target[0] == 0].mean() + per_class[0, 0]) / 2
    assert torch.isclose(class_balanced_cross_entropy(logits, target), expected)


def test_the_card_is_remade_from_its_record_without_probing_and_matches_the_committed_one(tmp_path):
    import shutil

    from pwslib.io import CHECKOUT
    from studies import datacard

    shutil.copy(CHECKOUT / "reports" / "toy_datacard.json", tmp_path / "toy_datacard.json")
    datacard.main(["--report-only", "--out", str(tmp_path)])
    remade = (tmp_path / "toy_datacard.md").read_text()
    assert remade == (CHECKOUT / "reports" / "toy_datacard.md").read_text()  # no hand edit, no stale render
    assert "measured with no mask of any class" in remade
