import matplotlib
import numpy as np
import pytest
import torch
from conftest import SMALL_TOY

from pwslib.config import config_for
from pwslib.data.summaries import clicked_object, first_object_click
from pwslib.method.matching import CostWeights, cost_terms, matching_cost
from pwslib.train import Trainer
from pwslib.viz.explorer import PANEL_RECTS, PANELS, KeypointMaskExplorer


@pytest.fixture
def explorer(toy_root, monkeypatch, tmp_path):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    runs = {}
    for method in ("ours", "point_naive"):
        config = config_for(
            method,
            iterations=1,
            batch_size=2,
            toy_options=SMALL_TOY,
            pretrained_backbone=False,
            embedding_dim=32,
            precision="float32",  # exact comparisons below; bfloat16 (auto on some CPUs) rounds at 2^-8
        )
        torch.manual_seed(0)
        runs[method] = Trainer(config, tmp_path / method, progress=False)
    return KeypointMaskExplorer(runs, runs["ours"].test_set)


def test_first_object_click_finds_a_novel_object_when_any_test_image_has_one(explorer):
    test, split = explorer.dataset, explorer.split
    index, (y, x), cls = first_object_click(test, split)
    assert cls in split.novel_classes and test.source.load(index)[1][y, x] == cls
    earlier = [i for i in range(index) if set(np.unique(test.source.load(i)[1])) & set(split.novel_classes)]
    assert not earlier  # the first such image, not image 0 by default


def test_explorer_masks_follow_the_click_to_another_object(explorer):
    test, split = explorer.dataset, explorer.split
    index, click, cls = first_object_click(test, split)
    first = explorer.compute("ours", index, [(*click, cls)], cls)
    assert first["keypoint_masks"].shape == (1, 96, 96) and first["class_mask"].shape == (96, 96)
    assert 0 <= first["proposal_index"] < explorer.runs["ours"].config.num_queries
    assert first["prediction"].shape == (96, 96)
    _, other, other_cls = first_object_click(test, split, image_index=index, avoid=cls)
    moved = explorer.compute("ours", index, [(*other, other_cls)], other_cls)
    assert np.abs(moved["class_mask"] - first["class_mask"]).mean() > 1e-3
    two = explorer.compute("ours", index, [(*click, cls), (*other, cls)], cls)
    assert two["keypoint_masks"].shape[0] == 2
    assert (two["class_mask"] >= np.maximum(first["class_mask"], moved["class_mask"]) - 1e-5).all()  # max union


def test_a_click_of_another_class_is_a_negative_and_counts_in_j_ex(explorer):
    index, click, cls = first_object_click(explorer.dataset, explorer.split)
    _, other, other_cls = first_object_click(explorer.dataset, explorer.split, image_index=index, avoid=cls)
    alone = explorer.compute("ours", index, [(*click, cls)], cls)
    with_negative = explorer.compute("ours", index, [(*click, cls), (*other, other_cls)], cls)
    assert alone["costs"]["exclusion"] == 0.0 and with_negative["costs"]["exclusion"] > 0.0
    assert with_negative["keypoint_masks"].shape[0] == 1  # only the chosen class's clicks are shown


def test_the_matched_proposal_is_the_cheapest_under_the_runs_own_costs(explorer, monkeypatch):
    """The explorer's cost terms are the training's matching cost, with the run's own cost settings."""
    calls = []

    def recording(*arguments, **keywords):
        calls.append((arguments, keywords))
        return cost_terms(*arguments, **keywords)

    monkeypatch.setattr("pwslib.viz.explorer.cost_terms", recording)
    index, click, cls = first_object_click(explorer.dataset, explorer.split)
    result = explorer.compute("ours", index, [(*click, cls)], cls)
    arguments, keywords = calls[0]
    assert arguments[5] == CostWeights.of_config(explorer.runs["ours"].config)
    cost = matching_cost(cost_terms(*arguments, **keywords), arguments[3].is_novel)[0, :, 0]  # (N,)
    assert result["proposal_index"] == int(cost.argmin())
    assert sum(result["costs"].values()) == pytest.approx(float(cost.min()), abs=1e-5)


def test_a_run_without_keypoint_branch_still_shows_its_proposal(explorer):
    index, click, cls = first_object_click(explorer.dataset, explorer.split)
    result = explorer.compute("point_naive", index, [(*click, cls)], cls)
    assert result["class_mask"] is None and result["keypoint_masks"].shape[0] == 0
    assert result["prediction"].shape == (96, 96)
    panels = explorer.panels(result, "point_naive", cls)
    assert "no keypoint branch" in panels["keypoint_masks"][0] and list(panels) == list(PANELS)


def test_runs_of_different_splits_are_refused(explorer, tmp_path):
    runs = dict(explorer.runs)
    other = config_for("ours", split=2, iterations=1, batch_size=2, pretrained_backbone=False, embedding_dim=32)
    runs["other"] = type("Run", (), {"config": other, "split": explorer.split, "model": runs["ours"].model})()
    with pytest.raises(ValueError, match="one dataset and split"):
        KeypointMaskExplorer(runs, explorer.dataset)


def test_clicks_on_the_canvas_add_and_remove_points(explorer):
    """The interactive canvas (ipympl): a left click on the image panel adds a click, a right click removes it."""
    pytest.importorskip("ipympl")
    from matplotlib.backend_bases import MouseEvent

    previous = matplotlib.get_backend()
    matplotlib.use("module://ipympl.backend_nbagg")
    try:
        index, click, cls = first_object_click(explorer.dataset, explorer.split)
        box = explorer.show(index, [], cls)
        canvas = box.children[-1]
        figure = canvas.figure
        image_axes = next(ax for ax in figure.axes if ax.get_label() == "image")
        before = next(ax for ax in figure.axes if ax.get_label() == "keypoint_masks").images[0].get_array().copy()
        x, y = image_axes.transData.transform((click[1], click[0]))
        MouseEvent("button_press_event", canvas, x, y, button=1)._process()
        assert box.explorer_state["clicks"] == [(click[0], click[1], cls)]
        after = next(ax for ax in figure.axes if ax.get_label() == "keypoint_masks").images[0].get_array()
        assert np.abs(np.asarray(after) - np.asarray(before)).max() > 0  # the keypoint-mask panel was redrawn
        assert "1 click(s)" in box.children[1].value
        MouseEvent("button_press_event", canvas, x + 3, y, button=3)._process()
        assert box.explorer_state["clicks"] == [] and "0 click(s)" in box.children[1].value  # redrawn, empty
    finally:
        matplotlib.use(previous)


def test_panel_rectangles_stay_inside_the_figure():
    for left, bottom, width, height in PANEL_RECTS.values():
        assert 0 <= left and left + width <= 1 and 0 <= bottom and bottom + height <= 1


def test_the_keypoint_mask_survey_clicks_every_object_once_and_twice(explorer):
    from pwslib.data.summaries import object_clicks
    from pwslib.metrics import keypoint_mask_scores

    survey = explorer.keypoint_mask_survey("ours", images=2)
    labels = [explorer.dataset[i]["full_label"].numpy() for i in range(2)]
    assert len(survey) == 2 * sum(len(object_clicks(label)) for label in labels)
    assert survey["clicks"].tolist() == [1, 2] * (len(survey) // 2)
    assert set(survey["novel"]) <= {True, False} and survey["thing"].notna().all()
    parts = survey["precision"] + survey["spill onto labelled"] + survey["spill onto unlabelled"]
    covered = survey["precision"] > 0
    assert np.allclose(parts[covered], 100)  # a mask's pixels: on the object, spilled onto labelled or unlabelled
    class_id, target, (first, _) = object_clicks(labels[0])[0]
    result = explorer.compute("ours", 0, [(*first, class_id)], class_id)
    one_click = survey.iloc[0]
    expected = keypoint_mask_scores(result["class_mask"], target, result["base_label"] == 255)
    assert one_click["iou"] == pytest.approx(expected["iou"], abs=0.5)  # the same mask, one forward pass per image
    with pytest.raises(ValueError, match="no keypoint branch"):
        explorer.keypoint_mask_survey("point_naive", images=1)


def test_the_live_scores_are_the_class_unions_against_the_clicked_object(explorer):
    index, click, cls = first_object_click(explorer.dataset, explorer.split)
    result = explorer.compute("ours", index, [(*click, cls)], cls)
    scores = explorer.object_scores(result, click)
    assert f"IoU {scores['iou']:.0f} %" in explorer.scores_line(result, cls)
    naive = explorer.compute("point_naive", index, [(*click, cls)], cls)
    assert explorer.scores_line(naive, cls).startswith("no class union")
    figure = explorer.figure(result, "ours", cls)
    assert len(figure.axes) == len(PANELS) + 3  # a colour bar beside each probability panel


def test_the_moved_click_survey_moves_one_click_between_two_novel_objects_of_each_image(explorer):
    from pwslib.data.summaries import novel_object_pairs, thing_classes

    things = thing_classes("toy-stuff")
    pairs = list(novel_object_pairs(explorer.dataset, explorer.split, things))[:2]
    survey = explorer.moved_click_survey("ours", things, images=2)
    names = explorer.split.class_names
    assert survey["image"].tolist() == [index for index, _, _ in pairs]
    assert survey["moved to"].tolist() == [names[moved[1]] for _, _, moved in pairs]
    index, (first, _), (moved, moved_class) = pairs[0]
    result = explorer.compute("ours", index, [(*moved, moved_class)], moved_class)
    on_first = result["class_mask"][clicked_object(result["ground_truth"], first)] > 0.5
    assert survey.loc[0, "first object %"] == round(100 * on_first.mean())
    assert survey[["new object IoU", "first object %"]].isin(range(101)).all().all()


def test_a_survey_without_any_image_to_click_is_an_empty_table_with_its_columns(explorer):
    assert explorer.moved_click_survey("ours", things={-1}).columns.tolist()[-2:] == ["new object IoU", "first object %"]
