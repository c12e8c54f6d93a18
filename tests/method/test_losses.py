import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pwslib.config import TrainConfig, config_for
from pwslib.method.losses import (
    INNER_WEIGHTS,
    LOSS_TERMS,
    LossTerm,
    WeakShotCriterion,
    dice_loss,
    point_loss,
    probability_bce,
    sigmoid_focal_loss,
)
from pwslib.method.memory_bank import MemoryBank
from pwslib.runs import log_fields


def test_focal_loss_known_value_and_reduction_to_bce():
    logits, target = torch.tensor([0.0]), torch.tensor([1.0])
    # p = 0.5: alpha 0.25 * (1 - 0.5)^2 * log 2
    assert sigmoid_focal_loss(logits, target).item() == pytest.approx(0.25 * 0.25 * 0.6931, abs=1e-4)
    plain = sigmoid_focal_loss(torch.tensor([1.3]), torch.tensor([0.0]), alpha=0.5, gamma=0.0) * 2
    assert plain.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(torch.tensor([1.3]), torch.tensor([0.0])).item()
    )


def test_dice_loss_known_values():
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert dice_loss(target, target).item() == pytest.approx(0.0)
    assert dice_loss(1 - target, target).item() == pytest.approx(1 - 1 / 5)


@pytest.mark.parametrize("loss", ["focal", "dice", "bce"])
def test_mask_losses_push_logits_toward_the_target(loss):
    logits = torch.zeros(1, 4, requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    value = {
        "focal": lambda: sigmoid_focal_loss(logits, target).sum(),
        "dice": lambda: dice_loss(logits.sigmoid(), target).sum(),
        "bce": lambda: probability_bce(logits.sigmoid(), target).sum(),
    }[loss]()
    value.backward()
    assert (logits.grad[0, :2] < 0).all() and (logits.grad[0, 2:] > 0).all()


def test_point_losses_include_positives_and_exclude_negatives():
    values = torch.zeros(1, 3, requires_grad=True)
    inclusion, pairs = point_loss(values, torch.tensor([[1.0, 0.0, 0.0]]), positive=True)
    exclusion, _ = point_loss(values, torch.tensor([[0.0, 1.0, 1.0]]), positive=False)
    assert inclusion.item() == pytest.approx(0.6931, abs=1e-4) and pairs.item() == 1
    assert exclusion.item() == pytest.approx(0.6931, abs=1e-4)  # mean over the two negatives
    (inclusion + exclusion).backward()
    assert values.grad[0, 0] < 0 and (values.grad[0, 1:] > 0).all()


def _batch(points):
    """Two 32x32 images: class 0 top half, class 1 bottom half, a novel class 2 square at rows 20..27, cols 4..11."""
    full = torch.zeros(2, 32, 32, dtype=torch.int64)
    full[:, 16:] = 1
    full[:, 20:28, 4:12] = 2
    base = full.clone()
    base[full == 2] = 255
    labels = torch.zeros(2, 3, dtype=torch.bool)
    labels[:, :2] = True
    labels[0, 2] = True
    keypoints = torch.tensor([[[4, 4, 0], [30, 30, 1]]] * 2)
    return {
        "image": torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
        "full_label": full,
        "base_label": base,
        "points": points,
        "keypoints": keypoints,
        "image_labels": labels,
    }


def _outputs(batch_size=2, queries=4, classes=3, requires_grad=True, keypoints=4):
    generator = torch.Generator().manual_seed(0)
    outputs = {
        "class_logits": torch.randn(batch_size, queries, classes + 1, generator=generator),
        "mask_logits": torch.randn(batch_size, queries, 8, 8, generator=generator),
        "query_embeddings": torch.randn(batch_size, queries, 16, generator=generator),
        "keypoint_mask_logits": torch.randn(batch_size, keypoints, 8, 8, generator=generator),
    }
    return {k: v.requires_grad_(requires_grad) for k, v in outputs.items()}


@pytest.mark.parametrize(
    "method", ["base_only", "point_naive", "image_weakshot", "keypoint_pseudo", "ours", "full_supervision"]
)
def test_every_method_gives_a_finite_loss_with_gradients(method):
    points = torch.tensor([[[24, 8, 2], [5, 20, 0]], [[-1, -1, -1], [-1, -1, -1]]])  # image 1: no novel click
    config = config_for(method, embedding_dim=16)
    criterion = WeakShotCriterion(config, 3, [2], torch.eye(3), None)
    outputs = _outputs()
    loss, logged = criterion(outputs, _batch(points))
    assert torch.isfinite(loss)
    loss.backward()
    assert outputs["mask_logits"].grad.abs().sum() > 0
    if method == "point_naive":
        assert "inclusion" in logged and "exclusion" in logged
    if method == "ours":  # L_in is off by default (reports/protocol.md)
        assert {"exclusion", "consistency", "keypoint"} <= logged.keys() and "inclusion" not in logged
    if method == "image_weakshot":
        assert "complementary" in logged


def test_image_whose_only_clicks_are_padding_has_no_novel_target_and_zero_novel_terms():
    points = torch.full((2, 2, 3), -1)
    config = config_for("ours", embedding_dim=16, inclusion_weight=1.0)  # every novel term switched on
    criterion = WeakShotCriterion(config, 3, [2], torch.eye(3), None)
    loss, logged = criterion(_outputs(), _batch(points))
    assert torch.isfinite(loss)
    assert logged["inclusion"] == logged["exclusion"] == logged["consistency"] == 0.0


def test_more_targets_than_queries_leaves_the_costliest_unmatched():
    points = torch.tensor([[[24, 8, 2]], [[24, 8, 2]]])
    criterion = WeakShotCriterion(config_for("ours", embedding_dim=16), 3, [2], torch.eye(3), None)
    loss, logged = criterion(_outputs(queries=2, keypoints=3), _batch(points))
    assert torch.isfinite(loss)
    assert logged["matched"] == 4 and logged["unmatched_targets"] == 2


def test_switched_off_terms_are_not_computed():
    points = torch.tensor([[[24, 8, 2]], [[24, 8, 2]]])
    config = config_for("ours", embedding_dim=16, inclusion_weight=0.0, consistency_weight=0.0)
    _, logged = WeakShotCriterion(config, 3, [2], torch.eye(3), None)(_outputs(keypoints=3), _batch(points))
    assert "inclusion" not in logged and "consistency" not in logged and "exclusion" in logged


def test_pixel_classification_uses_the_known_labels_only():
    points = torch.tensor([[[24, 8, 2]], [[24, 8, 2]]])
    outputs = _outputs(keypoints=3)
    outputs["pixel_logits"] = torch.zeros(2, 3, 8, 8, requires_grad=True)
    criterion = WeakShotCriterion(config_for("ours", embedding_dim=16), 3, [2], torch.eye(3), None)
    batch = _batch(points)
    loss, logged = criterion(outputs, batch)
    assert logged["pixel_classification"] == pytest.approx(float(torch.log(torch.tensor(3.0))), abs=1e-5)
    loss.backward()
    novel_cells = batch["base_label"][:, 2::4, 2::4] == 255  # novel pixels: ignored, no gradient
    assert outputs["pixel_logits"].grad.abs().sum(1)[novel_cells].sum() == 0


def unregistered_weight_fields(config_class) -> set[str]:
    """``*_weight`` fields of ``config_class`` that weigh no term of ``LOSS_TERMS`` (nor a term's inside)."""
    weight_fields = {f.name for f in dataclasses.fields(config_class) if f.name.endswith("_weight")}
    return weight_fields - set(INNER_WEIGHTS) - {term.weight_field for term in LOSS_TERMS}


def test_every_weight_field_weighs_a_term_of_the_table_and_every_term_is_logged():
    assert unregistered_weight_fields(TrainConfig) == set()
    assert {term.name for term in LOSS_TERMS} <= set(log_fields())
    assert not [term.name for term in LOSS_TERMS if getattr(TrainConfig, term.weight_field) is None]


@pytest.mark.parametrize("method", ["ours", "image_weakshot", "point_naive", "full_supervision"])
def test_the_total_is_the_weighted_sum_of_every_term_l_ctl_included(method):
    weights = {term.weight_field: 0.5 + k / 4 for k, term in enumerate(LOSS_TERMS)}  # every term on, each its own weight
    config = config_for(method, embedding_dim=16, **weights)
    bank = MemoryBank(3, 16, "ema", momentum=0.5)
    criterion = WeakShotCriterion(config, 3, [2], torch.eye(3), bank)
    points = torch.tensor([[[24, 8, 2], [5, 20, 0]], [[24, 8, 2], [-1, -1, -1]]])
    outputs = {**_outputs(), "pixel_logits": torch.randn(2, 3, 8, 8, requires_grad=True)}
    bank.update(torch.randn(3, 16, generator=torch.Generator().manual_seed(1)), torch.arange(3), torch.ones(3))
    total, logged = criterion(outputs, _batch(points))
    terms = {name: value for name, value in logged.items() if name not in ("matched", "unmatched_targets")}
    assert terms, "no term computed"
    expected = sum(getattr(config, term.weight_field) * terms[term.name] for term in LOSS_TERMS if term.name in terms)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    every_term = {term.name for term in LOSS_TERMS}
    if method == "ours":  # the keypoint branch, novel proposals and the bank: every term but image_weakshot's
        assert set(terms) == every_term and terms["contrastive"] != 0.0


def test_a_term_added_to_the_table_is_computed_weighed_and_summed():
    dummy = LossTerm("dummy", "focal_weight", "every query", "mean class logit", lambda step: step.outputs["class_logits"].mean())
    points = torch.tensor([[[24, 8, 2]], [[24, 8, 2]]])
    criterion = WeakShotCriterion(config_for("ours", embedding_dim=16), 3, [2], torch.eye(3))
    total, logged = criterion(_outputs(keypoints=3), _batch(points))
    with_dummy = WeakShotCriterion(
        config_for("ours", embedding_dim=16), 3, [2], torch.eye(3), terms=criterion.terms + ((dummy, 2.0),)
    )
    total_with, logged_with = with_dummy(_outputs(keypoints=3), _batch(points))
    assert logged_with["dummy"] == pytest.approx(float(_outputs()["class_logits"].mean()))
    assert float(total_with) == pytest.approx(float(total) + 2.0 * logged_with["dummy"], rel=1e-5)
    assert "dummy" not in logged
