import pandas as pd
import pytest

from pwslib.config import config_for
from studies.recipe import (
    DEFAULT_ROW,
    LEVERS,
    MEASURED_AT,
    METHODS,
    lever_effects,
    lever_rows,
    lever_table,
    main,
    write_precision_report,
)


def test_every_lever_row_is_a_valid_config_on_top_of_the_recipe_the_levers_were_measured_at():
    rows = lever_rows(1000)
    assert len(rows) == len(LEVERS) * len(METHODS)
    for method, overrides in rows.values():
        config_for(method, **overrides)
    assert rows[f"ours: {DEFAULT_ROW}"] == ("ours", MEASURED_AT)
    assert rows["ours: batch 8 for 1.7x the iterations"] == ("ours", {**MEASURED_AT, "batch_size": 8, "iterations": 1700})
    assert rows["ours: backbone pretrained 16,000 steps (the default after 8,000)"] == ("ours", {"pretraining_steps": 16000})


def lever_records():
    return [
        {"row": f"{method}: {lever}", "dataset": "toy-stuff", "method": method, "seed": seed, "reference": False,
         "base_miou": value, "novel_miou": value, "total_miou": value, "hiou": value, "wall_seconds": 100.0,
         "run": f"{method}-{lever}-{seed}"}
        for method, offset in (("ours", 0.0), ("full_supervision", 20.0))
        for lever, shift in ((DEFAULT_ROW, 0.0), ("faster", 5.0), ("same", 0.05))
        for seed, value in ((0, 40.0 + offset + shift), (1, 40.2 + offset + shift), (2, 39.8 + offset + shift))
    ]


def test_the_lever_table_tests_each_row_against_its_own_methods_default():
    table = lever_table(pd.DataFrame(lever_records()))
    assert table.loc["ours: faster", "toy-stuff Total"].endswith("*")
    assert not table.loc["ours: same", "toy-stuff Total"].endswith("*")
    assert table.loc["full_supervision: faster", "toy-stuff Total"].startswith("65.0")
    assert table.loc["full_supervision: faster", "toy-stuff Total"].endswith("*")  # against its own default, not ours'
    assert table.loc["ours: same", "run seconds"] == 100


def test_each_levers_effect_is_stated_per_method_with_the_noise_verdict():
    lines = lever_effects(pd.DataFrame(lever_records()))
    assert lines == [
        "- faster: full_supervision +5.0, ours +5.0; beyond the seed noise: full_supervision (better), ours (better)",
        "- same: full_supervision +0.0, ours +0.0; none beyond the seed noise",
    ]


def test_the_precision_report_compares_means_with_a_welch_test(tmp_path):
    runs = pd.DataFrame(
        [
            {
                "method": "ours",
                "precision": p,
                "seed": s,
                "base_miou": 1.0,
                "novel_miou": 1.0,
                "total_miou": v,
                "hiou": v,
                "images_per_second": 100.0,
                "git_commit": "abc",
            }
            for p, values in (("float32", (40.0, 41.0, 42.0)), ("bfloat16", (40.5, 41.5, 41.0)))
            for s, v in enumerate(values)
        ]
    )
    text = write_precision_report(runs, 500, tmp_path)
    assert "| ours | total_miou | 41.0 ± 1.0 | 41.0 ± 0.5 |" in text
    assert (tmp_path / "precision.csv").exists()


def test_the_pretraining_lengths_are_tabled_shortest_first_with_the_backbones_own_score(monkeypatch):
    from studies import recipe

    reports = {2000: 60.0, 8000: 78.0, 16000: 81.0}
    monkeypatch.setattr(recipe, "pretraining_report", lambda r: {"test_miou": reports[r.steps], "seconds": r.steps / 10})
    lengths = {
        DEFAULT_ROW: 0.0,
        "backbone pretrained 2,000 steps (the first default)": -5.0,
        "backbone pretrained 16,000 steps (the default after 8,000)": 1.0,
    }
    records = pd.DataFrame(
        [
            {"row": f"{method}: {lever}", "method": method, "seed": seed, "total_miou": 40.0 + shift + seed}
            for method in METHODS
            for lever, shift in lengths.items()
            for seed in (0, 1)
        ]
    )
    table = recipe.pretraining_lengths(records)
    assert list(table.index) == ["2,000", "8,000", "16,000"]
    assert list(table["own mIoU"]) == ["60.0", "78.0", "81.0"]
    assert table.loc["16,000", "ours"] == "41.5 ± 0.7" and table.loc["2,000", "pretraining seconds"] == "200"


def test_the_report_says_what_the_runs_computed_in(tmp_path):
    import json

    from studies.recipe import precisions_ran

    runs = []
    for index, precision in enumerate(["float32", "bfloat16", "float32"]):
        folder = tmp_path / f"run{index}"
        folder.mkdir()
        scores = dict.fromkeys(("base_miou", "novel_miou", "total_miou", "hiou", "per_class_iou"), 0.0)
        (folder / "metrics.json").write_text(json.dumps({**scores, "precision_ran": precision}))
        runs.append(str(folder))
    assert precisions_ran(pd.DataFrame({"run": runs})) == "float32 (2 runs), bfloat16 (1 run)"


def test_the_saturation_report_tests_each_length_against_todays_default(monkeypatch, tmp_path):
    from pwslib.config import TrainConfig
    from studies import recipe

    monkeypatch.setattr(recipe, "precisions_ran", lambda results: "float32 (12 runs)")
    monkeypatch.setattr(
        recipe,
        "pretraining_report",
        lambda r: {"test_miou": r.steps / 400, "seconds": r.steps / 10, "git_commit": "abc", "date_utc": "d", "machine": "m"},
    )
    today, longer = TrainConfig.pretraining_steps, 2 * TrainConfig.pretraining_steps
    assert recipe.length_row(today).endswith("(today's default)") and recipe.length_row(longer).endswith("steps")
    records = pd.DataFrame(
        [
            {"row": f"{method}: {recipe.length_row(steps)}", "dataset": "toy-stuff", "method": method, "seed": seed,
             "reference": False, "base_miou": 40.0, "novel_miou": 40.0, "total_miou": 40.0 + shift + seed / 10,
             "hiou": 40.0, "wall_seconds": 100.0, "run": "r", "git_commit": "abc"}
            for method in METHODS
            for steps, shift in ((today, 0.0), (longer, 3.0 if method == "ours" else 0.0))
            for seed in (0, 1)
        ]
    )
    text = recipe.write_saturation_report(records, [today, longer], 1000, tmp_path)
    assert f"- {recipe.length_row(longer)}: full_supervision +0.0, point_naive +0.0, ours +3.0; beyond the seed noise: ours (better)" in text
    assert f"| {longer:,} | {longer / 400:.1f} |" in text
    assert (tmp_path / "pretraining_saturation.csv").exists()


def test_the_click_weight_rows_weigh_every_click_loss_of_each_method_and_name_the_default():
    from studies.recipe import WEIGHTS_MEASURED_AT, default_point_weight_rows, point_weight_rows

    rows = point_weight_rows([1, 0.3, 0.3])
    assert len(rows) == 4
    for method, overrides in rows.values():
        config_for(method, **overrides)
    assert rows["point_naive: L_in and L_ex at 0.3 (today's default)"] == (
        "point_naive", {**WEIGHTS_MEASURED_AT, "inclusion_weight": 0.3, "exclusion_weight": 0.3}
    )
    assert rows["point_naive: L_in and L_ex at 1"] == ("point_naive", {**WEIGHTS_MEASURED_AT, "inclusion_weight": 1.0, "exclusion_weight": 1.0})
    assert rows["ours: L_ex at 1 (today's default)"] == ("ours", {**WEIGHTS_MEASURED_AT, "exclusion_weight": 1.0})
    assert default_point_weight_rows() == {"point_naive": "L_in and L_ex at 0.3 (today's default)", "ours": "L_ex at 1 (today's default)"}


def test_the_click_weight_report_tests_each_weight_against_its_methods_default(monkeypatch, tmp_path):
    from studies import recipe

    monkeypatch.setattr(recipe, "precisions_ran", lambda results: "float32 (12 runs)")
    records = pd.DataFrame(
        [
            {"row": f"{method}: {recipe.point_weight_row(method, weight)}", "dataset": "toy-stuff", "method": method,
             "seed": seed, "base_miou": value, "novel_miou": value, "total_miou": value, "hiou": value,
             "wall_seconds": 100.0, "git_commit": "abc", "run": f"{method}-{weight}-{seed}"}
            for method, default in (("point_naive", 0.3), ("ours", 1.0))
            for weight, shift in ((default, 0.0), (3.0, -5.0))
            for seed, value in ((0, 40.0 + shift), (1, 40.4 + shift), (2, 39.6 + shift))
        ]
    )
    text = recipe.write_point_weight_report(records, 1000, tmp_path)
    assert "| point_naive: L_in and L_ex at 3 | 35.0 ± 0.4* |" in text
    assert "- L_in and L_ex at 3: point_naive -5.0; beyond the seed noise: point_naive (worse)" in text
    assert "- L_ex at 3: ours -5.0; beyond the seed noise: ours (worse)" in text
    assert (tmp_path / "point_weights.csv").exists()


def test_report_only_trains_nothing_and_names_the_runs_it_lacks(tmp_path, capsys):
    with pytest.raises(SystemExit, match="error: 2 of 2 runs have not finished .*without --report-only"):
        main(["--point-weights", "1", "--seeds", "0", "--report-only", "--runs-root", str(tmp_path / "runs"),
              "--reports", str(tmp_path)])
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("*.md"))
