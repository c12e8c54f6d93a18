import itertools

import pytest
import torch

from pwslib.method.matching import (
    CostWeights,
    cost_terms,
    dice_cost,
    focal_cost,
    hungarian_match,
    matching_cost,
    point_costs,
    sample_at_points,
)
from pwslib.method.targets import Targets


def brute_force(cost):
    """Minimum total cost over every injective assignment of targets to queries."""
    queries, targets = cost.shape
    best = float("inf")
    for chosen in itertools.permutations(range(queries), min(queries, targets)):
        if targets <= queries:
            best = min(best, sum(cost[q, t] for t, q in enumerate(chosen)))
        else:
            best = min(
                best,
                min(
                    sum(cost[q, t] for q, t in zip(range(queries), cols))
                    for cols in itertools.permutations(range(targets), queries)
                ),
            )
    return best


@pytest.mark.parametrize("queries, targets", [(4, 3), (5, 5), (3, 5)])
def test_hungarian_matching_is_optimal_against_brute_force(queries, targets):
    generator = torch.Generator().manual_seed(queries * 10 + targets)
    for _ in range(5):
        cost = torch.rand(2, queries, targets, generator=generator)
        valid = torch.ones(2, targets, dtype=torch.bool)
        b, q, t = hungarian_match(cost, valid)
        for image in range(2):
            mine = b == image
            total = cost[image, q[mine], t[mine]].sum().item()
            assert total == pytest.approx(brute_force(cost[image].numpy()), abs=1e-6)
            assert mine.sum() == min(queries, targets)  # more targets than queries: N matched, rest left


def test_only_valid_targets_are_matched():
    cost = torch.rand(1, 4, 3)
    valid = torch.tensor([[True, False, True]])
    _, _, t = hungarian_match(cost, valid)
    assert sorted(t.tolist()) == [0, 2]


def test_non_finite_cost_is_an_error():
    cost = torch.zeros(1, 2, 2)
    cost[0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="image 0"):
        hungarian_match(cost, torch.ones(1, 2, dtype=torch.bool))


def test_dice_and_focal_costs_prefer_the_matching_mask():
    masks = torch.tensor([[[1.0, 1, 0, 0], [0.0, 0, 1, 1]]])  # (B=1, T=2, L=4)
    logits = torch.tensor([[[5.0, 5, -5, -5], [-5.0, -5, 5, 5]]])  # proposal 0 ~ mask 0, proposal 1 ~ mask 1
    dice = dice_cost(logits.sigmoid(), masks)[0]
    focal = focal_cost(logits, masks)[0]
    for cost in (dice, focal):
        assert cost[0, 0] < cost[0, 1] and cost[1, 1] < cost[1, 0]
    assert dice[0, 0] == pytest.approx(1 - (2 * 2 * 0.9933 + 1) / (2 * 0.9933 + 2 * 0.0067 + 2 + 1), abs=1e-3)


def test_point_costs_by_hand():
    logits = torch.tensor([[[0.0, 2.0, -1.0]]])  # one query, three clicks
    positive = torch.tensor([[[1.0, 1.0, 0.0]]])
    negative = torch.tensor([[[0.0, 0.0, 1.0]]])
    targets = Targets(
        classes=None,
        valid=None,
        is_novel=None,
        masks=None,
        positive=positive,
        negative=negative,
        points_yx=None,
        ignore_region=None,
        known_labels=None,
    )
    inclusion, exclusion = point_costs(logits, targets, "log")
    expected_in = (-torch.log(torch.sigmoid(torch.tensor(0.0))) - torch.log(torch.sigmoid(torch.tensor(2.0)))) / 2
    assert inclusion.item() == pytest.approx(expected_in.item(), abs=1e-5)
    assert exclusion.item() == pytest.approx(-torch.log(1 - torch.sigmoid(torch.tensor(-1.0))).item(), abs=1e-5)
    inclusion, exclusion = point_costs(logits, targets, "probability")
    expected_in = ((1 - torch.sigmoid(torch.tensor(0.0))) + (1 - torch.sigmoid(torch.tensor(2.0)))) / 2
    assert inclusion.item() == pytest.approx(expected_in.item(), abs=1e-5)
    assert exclusion.item() == pytest.approx(torch.sigmoid(torch.tensor(-1.0)).item(), abs=1e-5)


def test_probability_point_costs_stay_on_the_class_cost_scale_when_masks_saturate():
    # a proposal whose mask logit at the positive click is -30: -log m is ~30, 1 - m is ~1
    logits = torch.tensor([[[-30.0], [30.0]]])  # (B, N=2, P=1)
    targets = Targets(None, None, None, None, torch.ones(1, 1, 1), torch.zeros(1, 1, 1), None, None, None)
    log_in, _ = point_costs(logits, targets, "log")
    probability_in, _ = point_costs(logits, targets, "probability")
    assert log_in[0, 0, 0] > 29 and probability_in[0, 0, 0] == pytest.approx(1.0)
    assert probability_in[0, 1, 0] == pytest.approx(0.0, abs=1e-6)


def test_an_unknown_point_cost_is_a_clear_error():
    with pytest.raises(ValueError, match="point_cost"):
        CostWeights(point_cost="squared")


def test_sample_at_points_reads_the_pixel_under_the_click():
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 1, 2] = 7.0  # cell (1, 2) covers image pixels y 4..7, x 8..11 at stride 4
    value = sample_at_points(maps, torch.tensor([[[5.5, 9.5]]]), (16, 16))
    assert value.item() == pytest.approx(7.0)


def _targets(is_novel, classes, positive, negative, masks, region):
    return Targets(
        classes=classes,
        valid=torch.ones_like(classes, dtype=torch.bool),
        is_novel=is_novel,
        masks=masks,
        positive=positive,
        negative=negative,
        points_yx=None,
        ignore_region=region,
        known_labels=None,
    )


def test_novel_cost_prefers_the_proposal_that_includes_positives_and_excludes_negatives():
    # two proposals over L=4 pixels; the novel target's positive click is value index 0, negative index 1
    point_logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]])  # (B, N=2, P=2)
    targets = _targets(
        torch.tensor([[True]]),
        torch.tensor([[0]]),
        torch.tensor([[[1.0, 0.0]]]),
        torch.tensor([[[0.0, 1.0]]]),
        torch.zeros(1, 1, 4),
        torch.ones(1, 4),
    )
    class_logits = torch.zeros(1, 2, 3)
    cost = matching_cost(
        cost_terms(class_logits, torch.zeros(1, 2, 2, 2), point_logits, targets, None, CostWeights()), targets.is_novel
    )
    assert cost[0, 0, 0] < cost[0, 1, 0]
    class_only = matching_cost(
        cost_terms(
            class_logits, torch.zeros(1, 2, 2, 2), point_logits, targets, None, CostWeights(), point_terms=False
        ),
        targets.is_novel,
    )
    assert class_only[0, 0, 0] == class_only[0, 1, 0]


def test_consistency_cost_follows_the_keypoint_mask_inside_the_ignore_region():
    mask_logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]], [[-5.0, -5.0], [5.0, 5.0]]]])  # (B, N=2, 2, 2)
    keypoint_masks = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])  # (B, T=1, L=4)
    targets = _targets(
        torch.tensor([[True]]),
        torch.tensor([[0]]),
        torch.zeros(1, 1, 1),
        torch.zeros(1, 1, 1),
        torch.zeros(1, 1, 4),
        torch.ones(1, 4),
    )
    weights = CostWeights(classification=0, inclusion=0, exclusion=0, consistency=1)
    terms = cost_terms(torch.zeros(1, 2, 3), mask_logits, torch.zeros(1, 2, 1), targets, keypoint_masks, weights)
    cost = matching_cost(terms, targets.is_novel)
    assert cost[0, 0, 0] < cost[0, 1, 0]


def test_every_cost_term_is_registered_weighed_computed_and_summed():
    import dataclasses

    from pwslib.config import TrainConfig, config_for
    from pwslib.method.matching import COST_TERMS

    names = {term.name for term in COST_TERMS}
    weight_fields = {f.name for f in dataclasses.fields(TrainConfig) if f.name.endswith("_cost") and f.type == "float"}
    assert weight_fields == {term.weight_field for term in COST_TERMS}
    assert set(CostWeights().weights) == names
    assert {term.prices for term in COST_TERMS} == {"all", "mask", "clicks"}
    config = config_for("ours", **{term.weight_field: 0.5 + k for k, term in enumerate(COST_TERMS)})
    assert CostWeights.of_config(config) == CostWeights(
        **{term.name: 0.5 + k for k, term in enumerate(COST_TERMS)}, point_cost=config.point_cost
    )
    targets = _targets(
        torch.tensor([[True, False]]),
        torch.tensor([[0, 1]]),
        torch.tensor([[[1.0], [0.0]]]),
        torch.tensor([[[0.0], [1.0]]]),
        torch.rand(1, 2, 4),
        torch.ones(1, 4),
    )
    terms = cost_terms(
        torch.randn(1, 3, 3), torch.randn(1, 3, 2, 2), torch.randn(1, 3, 1), targets, torch.rand(1, 2, 4), CostWeights()
    )
    assert set(terms) == names
    by_prices = {kind: sum(terms[t.name] for t in COST_TERMS if t.prices == kind) for kind in ("all", "mask", "clicks")}
    cost = matching_cost(terms, targets.is_novel)
    assert torch.allclose(cost[..., 0], (by_prices["all"] + by_prices["clicks"])[..., 0])  # the novel target
    assert torch.allclose(cost[..., 1], (by_prices["all"] + by_prices["mask"])[..., 1])  # the mask target


def test_a_cost_term_added_to_the_table_is_weighed_summed_and_shown_by_the_explorer(monkeypatch):
    """The recipe of docs/architecture.md for a new cost term, followed once: one row in ``COST_TERMS``."""
    from pwslib.method import matching
    from pwslib.method.matching import COST_TERMS, CostTerm
    from pwslib.viz.explorer import click_cost_terms

    planted = CostTerm("planted", "planted_cost", "clicks", "J_planted", "a constant 1", lambda x: torch.ones_like(x.click_costs[0]))
    monkeypatch.setattr(matching, "COST_TERMS", [*COST_TERMS, planted])
    targets = _targets(
        torch.tensor([[True]]), torch.tensor([[0]]), torch.ones(1, 1, 1), torch.zeros(1, 1, 1), torch.zeros(1, 1, 4),
        torch.ones(1, 4),
    )
    arguments = (torch.zeros(1, 2, 3), torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1), targets, None)
    without = matching_cost(cost_terms(*arguments, CostWeights()), targets.is_novel)
    assert CostWeights().weights["planted"] == 0.0  # no config field: off unless weighed
    terms = cost_terms(*arguments, CostWeights(planted=2.5))
    assert torch.equal(terms["planted"], torch.full((1, 2, 1), 2.5))
    assert torch.allclose(matching_cost(terms, targets.is_novel), without + 2.5)
    assert [term.name for term in click_cost_terms()][-1] == "planted"
    with pytest.raises(ValueError, match="unknown cost terms"):
        CostWeights(plantd=1.0)
