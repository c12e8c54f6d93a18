import pandas as pd
import pytest

from pwslib.config import config_for
from pwslib.experiments.tables import annotation_budget_points, annotation_budget_rows, SECONDS_FULL_MASKS, SECONDS_PER_CLICK_ROUND, select_rows, table1_rows, table3_rows, TABLES
from pwslib.viz.figures import annotation_budget_figure


def test_a_subset_of_rows_keeps_the_reference_row_and_unknown_rows_are_refused():
    rows = table3_rows()
    chosen = select_rows(rows, ["without bank", "bank without confidence"])
    assert list(chosen) == [
        "ours (phi on, max, confident EMA bank, 1 point)",
        "bank without confidence",
        "without bank",
    ]
    with pytest.raises(ValueError, match="unknown rows"):
        select_rows(rows, ["no such row"])


def test_table1_has_the_six_methods():
    assert list(table1_rows()) == [
        "base_only",
        "point_naive",
        "image_weakshot",
        "keypoint_pseudo",
        "ours",
        "full_supervision",
    ]


def test_every_table_row_is_a_valid_config():
    for name, (rows, _) in TABLES.items():
        for row, (method, overrides) in rows().items():
            assert config_for(method, **overrides).method == method, (name, row)


def test_annotation_budget_rows_put_each_run_on_the_seconds_axis():
    rows = annotation_budget_rows()
    assert rows["ours, 1 click"] == ("ours", {}) and rows["point_naive, 10 clicks"][1] == {"points_per_class": 10}
    results = pd.DataFrame(
        [
            {"row": row, "dataset": "toy-stuff", "seed": seed, "novel_miou": 10.0 + seed}
            for row in rows
            for seed in (0, 1)
        ]
    )
    points = annotation_budget_points(results)
    seconds = dict(zip(points["row"], points["seconds"]))
    assert seconds["full_supervision"] == SECONDS_FULL_MASKS
    assert seconds["ours, 5 clicks"] == pytest.approx(5 * SECONDS_PER_CLICK_ROUND)
    assert set(points["method"]) == {"ours", "point_naive", "full_supervision"}
    figure = annotation_budget_figure(points, "test")
    assert len(figure.axes) == 1 and len(figure.axes[0].lines) >= 3
    ticks = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert ticks == [f"{n * SECONDS_PER_CLICK_ROUND:.0f}" for n in (1, 3, 5, 10)]  # the click budgets, in seconds
    with pytest.raises(ValueError, match="not annotation-budget rows"):
        annotation_budget_points(results.assign(row="ours, 2 clicks"))
