import torch

from pwslib.method.targets import build_targets


def batch():
    full = torch.zeros(1, 8, 8, dtype=torch.int64)
    full[0, 4:] = 1
    full[0, 4:, :4] = 3  # novel class 3
    full[0, :2, 6:] = 4  # novel class 4, no click
    base = full.clone()
    base[(full == 3) | (full == 4)] = 255
    labels = torch.tensor([[True, True, False, True, True]])
    points = torch.tensor([[[5, 1, 3], [0, 0, 0], [-1, -1, -1]]])
    return {"full_label": full, "base_label": base, "points": points, "image_labels": labels}


NOVEL = torch.tensor([False, False, False, True, True])


def test_point_targets_positives_and_negatives():
    targets = build_targets(batch(), NOVEL, 5, "points", (4, 4))
    assert targets.classes[0].tolist() == [0, 1, 3]
    assert targets.is_novel[0].tolist() == [False, False, True]
    assert targets.positive[0, 2].tolist() == [1.0, 0.0, 0.0]
    assert targets.negative[0, 2].tolist() == [0.0, 1.0, 0.0]  # the base click, not the padding
    assert targets.masks[0, 2].sum() == 0 and targets.masks[0, 0].sum() > 0
    assert targets.ignore_region[0].sum() > 0


def test_image_label_targets_have_no_clicks():
    targets = build_targets(batch(), NOVEL, 5, "image_labels", (4, 4))
    assert targets.classes[0].tolist() == [0, 1, 3, 4]
    assert targets.positive.sum() == 0 and targets.negative.sum() == 0


def test_full_masks_make_every_class_a_mask_target_and_none_hides_novel():
    full = build_targets(batch(), NOVEL, 5, "full_masks", (4, 4))
    assert full.classes[0].tolist() == [0, 1, 3, 4] and not full.is_novel.any()
    none = build_targets(batch(), NOVEL, 5, "none", (4, 4))
    assert none.classes[0].tolist() == [0, 1]
