import json

import pandas as pd
import pytest
from conftest import SMALL_TOY

from pwslib.config import config_for
from pwslib.data.toy import GENERATOR_VERSION
from studies.convergence import (
    curve_run,
    flat_by_endpoints,
    is_flat,
    method_plateaus,
    plateau,
    preset_ratios,
    write_report,
)


def test_a_curve_run_scores_the_test_subset_every_few_steps_and_is_cached(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for(
        "full_supervision",
        iterations=4,
        batch_size=4,
        toy_options=SMALL_TOY,
        embedding_dim=32,
        pretrained_backbone=False,
    )
    source = {"git_commit": "abc", "machine": "m", "date_utc": "d", "note": "alone"}
    curve = curve_run(config, tmp_path / "run", every=2, test_images=3, progress=False, source=source)
    assert [point["iteration"] for point in curve] == [2, 4]
    assert curve[1]["train_seconds"] >= curve[0]["train_seconds"] > 0
    saved = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert saved["test_images"] == 3 and saved["curve"] == curve and saved["source"] == source
    assert curve_run(config, tmp_path / "run", every=2, test_images=3, progress=False) == curve  # finished: reused


def test_plateau_is_the_mean_of_the_last_two_evaluations_with_the_last_quarter_gain():
    curve = [{"iteration": i * 100, "total_miou": v} for i, v in enumerate([10, 30, 40, 44, 46, 47, 48, 48, 48], 1)]
    level = plateau(curve)
    assert level["plateau"] == 48 and level["best"] == 48
    assert level["last_quarter_gain"] == 48 - 47  # the last evaluation at or before 75 % of 900 iterations is 600
    # the line through (600, 47), (700, 48), (800, 48), (900, 48): slope 150 / 50,000 per iteration, over 300
    assert level["fitted_quarter_gain"] == pytest.approx(0.9)


def test_one_dip_at_three_quarters_does_not_decide_flatness_but_a_rise_does():
    noisy = [40.0] * 47 + [48.0] + [49.0, 50.0] * 8  # 64 evaluations; the one at 3/4 (4,800) dips
    level = plateau([{"iteration": (i + 1) * 100, "total_miou": v} for i, v in enumerate(noisy)])
    assert level["last_quarter_gain"] == 2.0 and not flat_by_endpoints(level)
    assert level["fitted_quarter_gain"] < 1.0 and is_flat(level)
    rising = [40.0 + 0.15 * i for i in range(64)]  # 0.15 per evaluation: 2.4 over the last 16 intervals
    level = plateau([{"iteration": (i + 1) * 100, "total_miou": v} for i, v in enumerate(rising)])
    assert level["fitted_quarter_gain"] == pytest.approx(2.4) and not is_flat(level)


def test_a_methods_plateau_is_the_highest_of_its_curves_whatever_their_recipe():
    plateaus = {"toy-stuff/ours/8000": {"plateau": 60.0}, "toy-stuff/ours/16000/pretraining_steps=8000": {"plateau": 62.5}}
    plateaus["toy-scene/ours/8000"] = {"plateau": 50.0}
    assert method_plateaus(plateaus) == {
        "toy-stuff/ours": {"plateau": 62.5, "curve": "16000/pretraining_steps=8000"},
        "toy-scene/ours": {"plateau": 50.0, "curve": "8000"},
    }


def test_presets_are_divided_by_their_methods_plateau_and_the_report_is_written(tmp_path):
    pd.DataFrame(
        [
            {"dataset": "toy-stuff", "method": "ours", "total_miou": 45.0, "toy_generator": GENERATOR_VERSION},
            {"dataset": "toy-stuff", "method": "base_only", "total_miou": 30.0, "toy_generator": GENERATOR_VERSION},
            {"dataset": "toy-stuff", "method": "ours", "total_miou": 10.0, "toy_generator": GENERATOR_VERSION - 1},
        ]
    ).to_csv(tmp_path / "table1.csv", index=False)
    ratios = preset_ratios(tmp_path / "table1.csv", {"toy-stuff/ours": {"plateau": 50.0, "curve": "8000"}})
    just_under = preset_ratios(tmp_path / "table1.csv", {"toy-stuff/ours": {"plateau": 50.22, "curve": "8000"}})
    assert just_under["ratio"].tolist() == [0.896]  # 45 / 50.22: under the 0.9 target, not rounded up to it
    assert ratios.to_dict("records") == [
        {
            "dataset": "toy-stuff",
            "method": "ours",
            "seeds": 1,
            "total_miou": 45.0,
            "plateau": 50.0,
            "plateau's curve": "8000",
            "ratio": 0.9,
        }
    ]
    curve = [
        {"iteration": i, "train_seconds": i / 10, "base_miou": 1, "novel_miou": 1, "total_miou": v, "hiou": 1}
        for i, v in ((100, 20.0), (200, 48.0), (300, 52.0))
    ]
    meta = {"test_images": 5, "every": 100, "recipe": {}, "git_commit": "abc", "machine": "m", "date_utc": "d"}
    meta.update(threads=1, note="alone")
    variants = tmp_path / "archive" / "quick_variants"  # where the main job's earlier variants are archived
    variants.mkdir(parents=True)
    (variants / "table1_quick_5000.csv").write_text((tmp_path / "table1.csv").read_text())  # a longer main job
    text = write_report({"toy-stuff/ours/300": curve, "toy-stuff/ours/300/embedding_dim=32": curve}, meta, tmp_path)
    assert "| toy-stuff | ours | 300 |" in text and "0.9" in text and "Not flat yet" in text
    assert "Every run reaches 0.9" in text  # 45.0 of a 50.0 plateau
    assert "### `quick` preset (table1.csv)" in text and "### `quick` preset at 5,000 iterations" in text
    assert "`full` preset" not in text  # no full/table1.csv here
    saved = json.loads((tmp_path / "convergence.json").read_text())
    assert saved["ratios"]["quick_5000"] == saved["ratios"]["quick"] and saved["ratios"]["full"] == []
    assert (tmp_path / "figures" / "convergence.png").exists()  # today's recipe
    assert (tmp_path / "archive" / "figures" / "convergence_earlier_recipes.png").exists()  # the others


def test_a_table_on_another_split_names_the_commits_its_runs_were_trained_at(tmp_path):
    (tmp_path / "full").mkdir()
    run = {"dataset": "toy-stuff", "method": "ours", "total_miou": 40.0, "toy_generator": GENERATOR_VERSION}
    commits = ("bbb222", "aaa111", "bbb222")  # seeds 0, 1, 2
    pd.DataFrame([{**run, "seed": seed, "git_commit": c} for seed, c in enumerate(commits)]).to_csv(
        tmp_path / "full" / "table1.csv", index=False
    )
    curve = [
        {"iteration": i, "train_seconds": i / 10, "base_miou": 1, "novel_miou": 1, "total_miou": 50.0, "hiou": 1}
        for i in (100, 200, 300)
    ]
    meta = {"test_images": 5, "every": 100, "recipe": {}, "git_commit": "abc", "machine": "m", "date_utc": "d"}
    meta.update(threads=1, note="alone")
    text = write_report({"toy-stuff/ours/300": curve, "toy-stuff/ours/300/embedding_dim=32": curve}, meta, tmp_path)
    assert "its runs are on split 2, trained at commit(s) `aaa111`, `bbb222` (provenance in full/table1.md)" in text


def test_the_report_reads_every_finished_curve_named_by_how_its_recipe_differs(tmp_path):
    from pwslib.io import DataError
    from studies.convergence import finished_curves

    def save(config, last_iteration):
        folder = tmp_path / f"{config.dataset}-{config.method}-{config.key()}"
        folder.mkdir()
        curve = [{"iteration": last_iteration, "total_miou": 1.0}]
        (folder / "curve.json").write_text(json.dumps({"config": config.to_dict(), "curve": curve}))

    save(config_for("ours", dataset="toy-stuff", iterations=4000), 4000)
    save(config_for("ours", dataset="toy-stuff", iterations=4000, pretraining_steps=8000), 4000)
    save(config_for("ours", dataset="toy-stuff", iterations=8000), 2000)  # unfinished: left out
    assert list(finished_curves(tmp_path, ["toy-stuff"], ["ours"])) == [
        "toy-stuff/ours/4000",
        "toy-stuff/ours/4000/pretraining_steps=8000",
    ]
    with pytest.raises(DataError, match="no finished curve of toy-stuff/point_naive"):
        finished_curves(tmp_path, ["toy-stuff"], ["point_naive"])


def test_a_table_without_a_generator_column_is_read_through_its_run_folders(tmp_path):
    from pwslib.config import config_for
    from studies.convergence import run_generator

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config_for("ours").to_dict()))
    assert run_generator(pd.Series({"run": str(folder)})) == GENERATOR_VERSION
    old = {k: v for k, v in config_for("ours").to_dict().items() if k != "toy_generator"}
    (folder / "config.json").write_text(json.dumps(old))
    assert run_generator(pd.Series({"run": str(folder)})) == 2
    assert run_generator(pd.Series({"run": str(tmp_path / "elsewhere")})) is None


def test_a_plateau_from_an_earlier_recipe_is_flagged_as_an_upper_bound_of_the_ratio(tmp_path):
    curve = [
        {"iteration": i, "train_seconds": i / 10, "base_miou": 1, "novel_miou": 1, "total_miou": v, "hiou": 1}
        for i, v in ((100, 50.0), (200, 50.0))
    ]
    meta = {"test_images": 5, "every": 100, "recipe": {}, "git_commit": "abc", "machine": "m", "date_utc": "d"}
    meta.update(threads=1, note="alone")
    text = write_report({"toy-stuff/ours/200/pretraining_steps=8000": curve}, meta, tmp_path)
    assert "| toy-stuff | ours | 200 | pretraining_steps=8000 |" in text
    assert "**No curve at today's defaults yet**: toy-stuff/ours:" in text
    assert "No curve at today's defaults" not in write_report({"toy-stuff/ours/200": curve}, meta, tmp_path)


def test_the_report_says_whether_every_method_has_a_flat_curve_at_todays_defaults(tmp_path):
    def curve(*values):
        return [
            {"iteration": 100 * (i + 1), "train_seconds": i, "base_miou": 1, "novel_miou": 1, "total_miou": v, "hiou": 1}
            for i, v in enumerate(values)
        ]

    meta = {"test_images": 5, "every": 100, "recipe": {}, "git_commit": "abc", "machine": "m", "date_utc": "d"}
    meta.update(threads=1, note="alone")
    rising, flat = curve(40.0, 45.0, 50.0, 55.0), curve(40.0, 45.0, 50.0, 50.5)
    text = write_report({"toy-stuff/ours/400": rising, "toy-stuff/ours/400/pretraining_steps=8000": flat}, meta, tmp_path)
    assert "**No flat curve at today's defaults yet**: toy-stuff/ours." in text  # a flat earlier recipe does not count
    text = write_report({"toy-stuff/ours/400": rising, "toy-stuff/ours/800": flat}, meta, tmp_path)
    assert "**At today's defaults** every method has a flat curve" in text and "Not flat yet" in text


def test_a_curves_name_gives_back_its_config():
    from studies.convergence import config_from_name, curve_name

    earlier = dict(pretraining_steps=8000, precision="bfloat16")
    for config in (
        config_for("ours", dataset="toy-scene", iterations=8000),
        config_for("point_naive", dataset="toy-stuff", iterations=16000, **earlier),
    ):
        assert config_from_name(curve_name(config)) == config


def test_the_next_report_keeps_recorded_curves_whose_runs_are_gone_and_a_new_run_replaces_its_record(tmp_path):
    from studies.convergence import finished_curves, recorded_curves

    curve = [
        {"iteration": i, "train_seconds": i / 10, "base_miou": 1, "novel_miou": 1, "total_miou": v, "hiou": 1}
        for i, v in ((100, 40.0), (200, 50.0))
    ]
    earlier = config_for("ours", dataset="toy-stuff", iterations=200, pretraining_steps=8000)
    meta = {"test_images": 5, "every": 100, "recipe": {}, "git_commit": "old", "machine": "m1", "date_utc": "d1"}
    meta.update(threads=1, note="elsewhere")
    name = "toy-stuff/ours/200/pretraining_steps=8000"
    write_report({name: curve}, meta, tmp_path, {name: earlier.to_dict()})
    recorded = recorded_curves(tmp_path / "convergence.json")
    assert recorded[name]["config"] == earlier and recorded[name]["source"]["machine"] == "m1"

    runs = tmp_path / "runs"
    today = config_for("ours", dataset="toy-stuff", iterations=200)
    for config, last in ((today, 60.0), (earlier, 55.0)):
        folder = runs / f"toy-stuff-ours-{config.key()}"
        folder.mkdir(parents=True)
        points = [{**curve[0]}, {**curve[1], "total_miou": last}]
        (folder / "curve.json").write_text(json.dumps({"config": config.to_dict(), "curve": points}))
    trained_at = {"git_commit": "abc", "machine": "m3", "date_utc": "d3", "note": "one per core"}
    (folder / "curve.json").write_text(json.dumps({"config": earlier.to_dict(), "curve": points, "source": trained_at}))
    found = finished_curves(runs, ["toy-stuff"], ["ours"], recorded)
    assert list(found) == ["toy-stuff/ours/200", name]
    assert found[name]["curve"][-1]["total_miou"] == 55.0 and found[name]["source"] == trained_at  # replaced its record
    assert "source" not in found["toy-stuff/ours/200"]  # saved before curves carried their source: the report's own
    (folder / "curve.json").write_text(json.dumps({"config": earlier.to_dict(), "curve": points}))
    found = finished_curves(runs, ["toy-stuff"], ["ours"], recorded)
    assert found[name]["source"]["machine"] == "m1"  # no source saved with the run: its record's, not the report's own

    assert list(finished_curves(tmp_path / "nowhere", ["toy-stuff"], ["ours"], recorded)) == [name]
    meta_now = {**meta, "git_commit": "new", "date_utc": "d2", "machine": "m2"}
    text = write_report({name: curve}, meta_now, tmp_path, sources={name: recorded[name]["source"]})
    assert "- recorded by an earlier report (commit `old`, m1, d1 UTC; elsewhere): toy-stuff/ours/200 (pretraining_steps=8000)" in text


def test_the_report_states_each_curves_own_evaluation_interval():
    from studies.convergence import evaluation_intervals

    def points(every, count):
        return [{"iteration": every * (i + 1)} for i in range(count)]

    curves = {"toy-stuff/ours/1000": points(500, 2), "toy-scene/ours/1000": points(500, 2)}
    assert evaluation_intervals(curves) == "every 500 iterations"
    curves["toy-stuff/point_naive/4000"] = points(1000, 4)
    assert evaluation_intervals(curves) == "every 500 iterations (1,000: toy-stuff/point_naive/4000)"


def test_where_each_method_levels_off_uses_its_longest_flat_curve_at_todays_defaults():
    from studies.convergence import levelling_off, method_plateaus, plateau, plateau_gaps

    def curve(*values, base=60.0):
        return [
            {"iteration": 100 * (i + 1), "base_miou": base, "novel_miou": v - 10, "total_miou": v, "hiou": v - 5}
            for i, v in enumerate(values)
        ]

    curves = {
        "toy-stuff/ours/400": curve(40.0, 45.0, 50.0, 50.5),
        "toy-stuff/ours/800/pretraining_steps=8000": curve(40.0, 50.0, 60.0, 70.0, 70.0, 70.0, 70.0, 70.0),
        "toy-stuff/point_naive/400": curve(30.0, 35.0, 40.0, 49.0),  # rising: the end of a run, not a plateau
        "toy-stuff/point_naive/800": curve(30.0, 35.0, 40.0, 45.0, 48.0, 49.5, 50.0, 50.0, base=62.0),
    }
    levels = method_plateaus({name: plateau(c) for name, c in curves.items()})
    levelled = levelling_off(curves, levels).set_index("method")
    assert list(levelled.index) == ["point_naive", "ours"]
    assert levelled.loc["ours", "flat curve"] == 400 and levelled.loc["ours", "plateau total"] == 50.2
    assert levelled.loc["point_naive", "flat curve"] == 800 and levelled.loc["point_naive", "plateau base"] == 62.0
    # ends over the highest plateau of any recipe: ours 50.5 / 70.0; point_naive 49 / 50 and 50 / 50
    assert levelled.loc["ours", "end of each run / plateau"] == "400: 0.72"
    assert levelled.loc["point_naive", "end of each run / plateau"] == "400: 0.98, 800: 1.00"
    gaps = plateau_gaps(levelling_off(curves, levels))
    assert gaps == "- toy-stuff: `ours` − `point_naive` at their plateaus: +0.2 novel mIoU, +0.2 total mIoU, +0.2 hIoU\n"


def test_the_report_of_an_empty_runs_folder_is_one_line(tmp_path):
    from studies.convergence import main

    with pytest.raises(SystemExit, match="^error: no finished curve of toy-stuff/point_naive in"):
        main(["--report-only", "--datasets", "toy-stuff", "--methods", "point_naive", "--runs-root", str(tmp_path),
              "--reports", str(tmp_path / "reports")])
