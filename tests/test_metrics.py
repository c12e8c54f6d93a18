import math

import numpy as np
import pytest
import torch

from pwslib.data.splits import ClassSplit
from pwslib.metrics import ConfusionMatrix, harmonic_iou, intersection_over_union, segmentation_scores


def test_confusion_matrix_counts_and_excludes_ignore():
    confusion = ConfusionMatrix(3)
    target = torch.tensor([[0, 0, 1, 255], [2, 2, 1, 1]])
    prediction = torch.tensor([[0, 1, 1, 2], [2, 0, 1, 1]])
    confusion.update(prediction, target)
    expected = np.array([[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    assert np.array_equal(confusion.matrix.numpy(), expected)


def test_scores_by_hand_with_an_absent_class():
    # classes: 0 base, 1 base, 2 novel, 3 novel (absent from the test set and never predicted)
    split = ClassSplit(("a", "b", "c", "d"), (2, 3))
    matrix = np.zeros((4, 4), dtype=np.int64)
    matrix[0, 0], matrix[0, 1] = 8, 2  # class 0: TP 8, FN 2
    matrix[1, 1] = 10  # class 1: TP 10, FP 2 -> IoU 10/12
    matrix[2, 2], matrix[2, 0] = 3, 1  # class 2: TP 3, FN 1, FP 0 -> 3/4; class 0 gets FP 1 -> 8/11
    scores = segmentation_scores(matrix, split)
    base = (8 / 11 + 10 / 12) / 2 * 100
    assert scores["base_miou"] == pytest.approx(base)
    assert scores["novel_miou"] == pytest.approx(75.0)  # class 3 left out, not counted as 0
    assert scores["total_miou"] == pytest.approx((8 / 11 + 10 / 12 + 0.75) / 3 * 100)
    assert scores["hiou"] == pytest.approx(2 * base * 75 / (base + 75))
    assert scores["per_class_iou"]["d"] is None


def test_predicted_but_absent_class_scores_zero():
    iou = intersection_over_union(np.array([[5, 1], [0, 0]]))
    assert iou[1] == 0.0 and iou[0] == pytest.approx(5 / 6)


def test_harmonic_iou_edge_cases():
    assert harmonic_iou(0, 0) == 0.0
    assert harmonic_iou(50, 50) == 50
    assert math.isclose(harmonic_iou(60, 20), 30)


def test_shape_mismatch_and_out_of_range_target():
    confusion = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion.update(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="class 5"):
        confusion.update(torch.zeros(1, dtype=torch.int64), torch.tensor([5]))


def test_a_novel_scale_below_one_hands_contested_pixels_to_base_classes(toy_root, monkeypatch):
    import torch
    from conftest import SMALL_TOY

    from pwslib.data import build_dataset
    from pwslib.metrics import confusion_matrix
    from pwslib.model.maskformer import ModelConfig, PointWeakShotMaskFormer

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    test = build_dataset("toy-stuff", "test", **SMALL_TOY)
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=test.split.num_classes, embedding_dim=32))
    novel = list(test.split.novel_classes)
    plain = confusion_matrix(model, test, test.split)
    assert torch.equal(confusion_matrix(model, test, test.split, novel_scale=1.0), plain)
    silenced = confusion_matrix(model, test, test.split, novel_scale=0.0)
    assert int(silenced[:, novel].sum()) == 0 and int(silenced.sum()) == int(plain.sum())


def test_image_novel_iou_by_hand():
    from pwslib.metrics import image_novel_iou

    split = ClassSplit(("sky", "grass", "boat", "cow"), (2, 3))
    truth = np.array([[[0, 2, 2, 255]], [[0, 1, 1, 0]], [[2, 3, 3, 3]]], dtype=np.uint8)  # (3, 1, 4)
    predicted = np.array([[[2, 2, 0, 2]], [[0, 1, 1, 0]], [[2, 3, 0, 0]]], dtype=np.uint8)
    scores = image_novel_iou(truth, predicted, split)
    assert scores[0] == pytest.approx(1 / 3)  # boat: 1 right of {0, 1, 2}; the unlabelled pixel is not counted
    assert math.isnan(scores[1])  # no novel class in the image
    assert scores[2] == pytest.approx((1 / 1 + 1 / 3) / 2)  # boat 1/1, cow 1/3


def test_keypoint_mask_scores_split_a_mask_between_its_object_and_its_spill():
    from pwslib.metrics import keypoint_mask_scores

    target = np.zeros((10, 10), dtype=bool)
    target[0:4, 0:4] = True  # the clicked object: 16 pixels
    unlabelled = np.zeros((10, 10), dtype=bool)
    unlabelled[:, 6:] = True  # a novel partner the base annotation leaves unlabelled
    mask = np.zeros((10, 10))
    mask[0:4, 0:2] = 0.9  # half the object: 8 pixels
    mask[0:2, 4:6] = 0.9  # 4 pixels of a labelled neighbour
    mask[0:2, 6:10] = 0.9  # 8 pixels of the unlabelled partner
    scores = keypoint_mask_scores(mask, target, unlabelled)
    assert scores["recall"] == 50.0 and scores["precision"] == 40.0
    assert scores["iou"] == 100 * 8 / (16 + 12)
    assert scores["spill onto labelled"] == 20.0 and scores["spill onto unlabelled"] == 40.0
    assert keypoint_mask_scores(np.zeros((10, 10)), target, unlabelled)["precision"] == 0.0
