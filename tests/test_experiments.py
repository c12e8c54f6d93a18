import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_TOY

from pwslib.config import config_for
from pwslib.experiments import (
    PRESET_TABLES,
    SCHEDULES,
    Schedule,
    planned_configs,
    table_iterations,
    preset_name,
    run_cached,
    run_grid,
    differs,
    drops_against,
    preset_rows,
    summarise,
    write_table,
)
from pwslib.io import DataError
from pwslib.runs import run_folder
from pwslib.train import run

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = Schedule(seeds=(0, 1), iterations=2, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)


def test_grid_reuses_finished_runs_and_writes_tables(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    rows = {"base_only": ("base_only", {}), "ours": ("ours", {})}
    results = run_grid(rows, ["toy-stuff"], 1, SCHEDULE, tmp_path / "runs", progress=False)
    assert len(results) == 4 and set(results["row"]) == {"base_only", "ours"}
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/metrics.json")}
    again = run_grid(rows, ["toy-stuff"], 1, SCHEDULE, tmp_path / "runs", progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/metrics.json")} == stamps
    assert again["hiou"].tolist() == results["hiou"].tolist()
    text = write_table(results, "table_test", "A test table", tmp_path / "reports", SCHEDULE, 1)
    assert "±" in text and "preset `custom`: seeds [0, 1]" in text and "machine" in text
    assert len(pd.read_csv(tmp_path / "reports" / "table_test.csv")) == 4


def test_grid_overrides_reach_every_run_and_rows_override_them(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    schedule = Schedule(seeds=(0,), iterations=1, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)
    rows = {"ours": ("ours", {}), "ours, 3 clicks": ("ours", {"points_per_class": 3})}
    results = run_grid(
        rows, ["toy-stuff"], 1, schedule, tmp_path / "runs", progress=False, overrides={"points_per_class": 2}
    )
    clicks = {
        row: json.loads((Path(run) / "config.json").read_text())["points_per_class"]
        for row, run in zip(results["row"], results["run"])
    }
    assert clicks == {"ours": 2, "ours, 3 clicks": 3}


def test_grid_trains_in_parallel_processes_and_then_reuses_the_runs(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    rows = {"base_only": ("base_only", {}), "point_naive": ("point_naive", {})}
    results = run_grid(rows, ["toy-stuff"], 1, SCHEDULE, tmp_path / "runs", progress=False, workers=2)
    assert len(results) == 4 and len(list((tmp_path / "runs").glob("*/metrics.json"))) == 4
    again = run_grid(rows, ["toy-stuff"], 1, SCHEDULE, tmp_path / "runs", progress=False, workers=2)
    assert again["hiou"].tolist() == results["hiou"].tolist()


def test_interrupted_run_is_resumed_by_the_cache(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for("ours", iterations=4, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)
    folder = run_folder(tmp_path, config)
    assert run(config, folder, progress=False, stop_after=2) is None
    metrics = run_cached(config, tmp_path, progress=False)
    assert metrics["config_key"] == config.key()
    assert len(pd.read_csv(folder / "log.csv")) == 4


def test_a_schedule_is_named_by_its_preset():
    quick = SCHEDULES["quick"]
    assert preset_name(Schedule(seeds=quick.seeds, iterations=quick.iterations)) == "quick"
    assert preset_name(SCHEDULES["full"]) == "full"
    assert preset_name(Schedule(seeds=(0,), iterations=quick.iterations + 1)) == "custom"


def test_the_presets_are_what_the_readme_promises():
    quick, full, ci = SCHEDULES["quick"], SCHEDULES["full"], SCHEDULES["ci"]
    assert quick.seeds == (0,) and full.seeds == (0, 1, 2)
    assert full.batch_size == quick.batch_size and not quick.toy_options and not full.toy_options  # one recipe
    assert quick.pretrained_backbone and full.pretrained_backbone
    assert ci.iterations < 10 and ci.toy_options["num_train"] < 100


def test_quick_trains_the_rows_that_matter_and_the_other_presets_every_row():
    from pwslib.tables import table1_rows, table2_rows, table3_rows

    quick1 = preset_rows("quick", "table1", table1_rows())
    quick2, quick3 = preset_rows("quick", "table2", table2_rows()), preset_rows("quick", "table3", table3_rows())
    assert set(quick1) == {"full_supervision", "point_naive", "ours"}
    assert set(quick2) == {"w/o L_con", "+ L_in (L_in + L_ex + L_con + L_ctl)", "ours (L_ex + L_con + L_ctl)"}
    assert set(quick3) == {"keypoint head phi off", "ours (phi on, max, confident EMA bank, 1 point)"}
    assert preset_rows("full", "table1", table1_rows()) == table1_rows()
    assert preset_rows("full", "table2", table2_rows()) == table2_rows()
    assert preset_rows("ci", "table3", table3_rows()) == table3_rows()


def test_quick_trains_table1_at_its_schedule_and_the_ablations_at_a_third_of_it():
    assert table_iterations("quick", "table1") == SCHEDULES["quick"].iterations == 3000
    assert table_iterations("quick", "table2") == table_iterations("quick", "table3") == 1000
    assert table_iterations("quick", None) == SCHEDULES["quick"].iterations
    assert table_iterations("full", "table2") == SCHEDULES["full"].iterations


def test_the_planned_runs_are_the_runs_the_notebooks_train_longest_first(tmp_path):
    """The reproduction trains ``planned_configs`` before the notebooks: their keys must be the notebooks' keys."""
    from pwslib.notebook import setup
    from pwslib.tables import TABLES

    planned = planned_configs("quick")
    assert [c.iterations for c in planned] == sorted((c.iterations for c in planned), reverse=True)
    notebook_keys = set()
    for table, plan in PRESET_TABLES["quick"].items():
        schedule = setup("quick", "toy-stuff", {"runs_root": str(tmp_path), "reports_dir": str(tmp_path)}, table).schedule
        for method, overrides in preset_rows("quick", table, TABLES[table][0]()).values():
            for dataset in plan.datasets:
                notebook_keys.add(
                    config_for(method, dataset=dataset, split=1, seed=0, **{**schedule.overrides(), **overrides}).key()
                )
    assert {c.key() for c in planned} == notebook_keys and len(planned) == 10  # 3 x 2 of Table 1, 4 ablation runs


def test_the_planned_datasets_are_the_notebooks_defaults():
    import papermill

    notebooks = {"table1": "05_table1_methods", "table2": "06_table2_ablation", "table3": "07_table3_variants"}
    for table, plan in PRESET_TABLES["quick"].items():
        parameters = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebooks[table]}.ipynb"))
        names = "datasets" if "datasets" in parameters else "dataset"
        default = ast.literal_eval(parameters[names]["default"])
        assert tuple(default if isinstance(default, list) else [default]) == plan.datasets


def test_summary_formats_mean_and_std():
    results = pd.DataFrame(
        {
            "row": ["a", "a", "b"],
            "dataset": ["d"] * 3,
            "base_miou": [10.0, 20.0, 5.0],
            "novel_miou": [1.0, 3.0, 2.0],
            "total_miou": [5.0, 5.0, 5.0],
            "hiou": [2.0, 4.0, 3.0],
            "reference": [True, True, False],
            "run": ["a0", "a1", "b0"],
        }
    )
    table = summarise(results)
    assert table.loc["a", "d Base"] == "15.0 ± 7.1" and table.loc["b", "d hIoU"] == "3.0"


def test_drops_are_measured_against_the_reference_row_whatever_its_name():
    results = pd.DataFrame(
        {
            "row": ["ours (renamed)", "ours (renamed)", "variant", "variant"],
            "hiou": [40.0, 42.0, 35.0, 37.0],
            "reference": [True, True, False, False],
        }
    )
    drops = drops_against(results)
    assert drops.loc["variant", "difference"] == -5.0 and drops.loc["ours (renamed)", "difference"] == 0.0
    assert "difference" not in drops_against(results.assign(reference=False))  # no reference: hIoU only


def test_summary_marks_differences_beyond_the_seed_noise():
    seeds = 3
    results = pd.DataFrame(
        {
            "row": ["ours"] * seeds + ["far"] * seeds + ["near"] * seeds,
            "dataset": ["d"] * 3 * seeds,
            "base_miou": [50.0, 51.0, 49.0, 30.0, 31.0, 29.0, 50.5, 48.0, 51.5],
            "novel_miou": [1.0] * 3 * seeds,
            "total_miou": [1.0] * 3 * seeds,
            "hiou": [1.0] * 3 * seeds,
            "reference": [True] * seeds + [False] * 2 * seeds,
            "run": [f"r{i}" for i in range(3 * seeds)],
        }
    )
    table = summarise(results)
    assert table.loc["far", "d Base"] == "30.0 ± 1.0*"  # 20 points apart, std 1: Welch p < 0.001
    assert table.loc["near", "d Base"] == "50.0 ± 1.8"  # within the noise: no mark
    assert table.loc["ours", "d Base"] == "50.0 ± 1.0"  # the reference is never marked
    assert not differs(pd.Series([1.0, 1.0]), pd.Series([1.0, 1.0]))
    assert differs(pd.Series([1.0, 1.0]), pd.Series([2.0, 2.0]))


def test_integer_given_for_a_float_field_hashes_like_the_float():
    from pwslib.config import TrainConfig

    assert (
        TrainConfig.from_dict({"consistency_weight": 0}).key()
        == TrainConfig.from_dict({"consistency_weight": 0.0}).key()
    )
    assert config_for("ours", consistency_weight=0).key() == config_for("ours", consistency_weight=0.0).key()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(seeds=("0",)), "seeds must be a non-empty list of whole numbers"),
        (dict(iterations="400"), "iterations must be a whole number"),
        (dict(toy_options={"num_train": "24"}), "toy_options num_train must be a positive whole number"),
    ],
)
def test_a_schedule_with_parameters_of_the_wrong_type_is_refused_in_one_line(values, message):
    with pytest.raises(DataError, match=message):
        Schedule(**values)


def test_heldout_results_are_read_by_split(tmp_path):
    from pwslib.experiments import heldout_results

    for split in (3, 2):
        pd.DataFrame([{"row": "ours", "dataset": "toy-stuff", "seed": 0, "hiou": float(split)}]).to_csv(
            tmp_path / f"table1_split{split}.csv", index=False
        )
    (tmp_path / "table2.csv").write_text("row\n")
    results = heldout_results(tmp_path)
    assert list(results) == [2, 3] and results[3]["hiou"].tolist() == [3.0]
    (tmp_path / "table3_bank_split2.csv").write_text("row,hiou\nours,1.0\n")
    assert list(heldout_results(tmp_path, "table3_bank")) == [2]
    (tmp_path / "table1_split2_4000.csv").write_text("row,hiou\nours,40.0\n")
    assert heldout_results(tmp_path)[2]["hiou"].tolist() == [2.0]  # the longer table is not split 24000
    assert heldout_results(tmp_path, suffix="_4000")[2]["hiou"].tolist() == [40.0]


def test_base_and_novel_gaps_compare_each_method_with_the_bounds():
    from pwslib.experiments import base_and_novel_gaps

    rows = [
        ("base_only", 40.0, 0.0),
        ("full_supervision", 44.0, 30.0),
        ("ours", 36.0, 27.0),
        ("point_naive", 37.0, 24.0),
    ]
    results = pd.DataFrame(
        [
            {"row": row, "dataset": "toy-stuff", "seed": seed, "base_miou": base + seed, "novel_miou": novel + seed}
            for row, base, novel in rows
            for seed in (0, 1)
        ]
    )
    gaps = base_and_novel_gaps(results)
    assert list(gaps.index) == ["ours", "point_naive"]
    assert gaps.loc["ours", "toy-stuff base − base_only"] == -4.0
    assert gaps.loc["point_naive", "toy-stuff novel, % of full"] == round(100 * 24.5 / 30.5)


def test_class_iou_reads_the_chosen_classes_of_every_run(tmp_path):
    from pwslib.experiments import class_iou

    records = []
    for row, seed, ious in (("ours", 0, (10.0, 30.0)), ("ours", 1, (20.0, 40.0)), ("without bank", 0, (5.0, 5.0))):
        folder = tmp_path / f"{row}-{seed}"
        folder.mkdir()
        per_class = {"box": ious[0], "tyre": ious[1], "sky": 99.0}
        (folder / "metrics.json").write_text(json.dumps({"per_class_iou": per_class}))
        records.append({"row": row, "dataset": "toy-stuff", "seed": seed, "run": str(folder)})
    table = class_iou(pd.DataFrame(records), {"toy-stuff": ["box", "tyre"]})
    assert list(table.columns) == ["toy-stuff box", "toy-stuff tyre", "mean"]
    assert table.loc["ours", "toy-stuff box"] == "15.0 ± 7.1" and table.loc["ours", "mean"] == "25.0 ± 7.1"
    assert table.loc["without bank", "mean"] == "5.0"  # one seed: the mean alone
