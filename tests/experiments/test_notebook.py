import json

import pytest

from pwslib.experiments.schedules import PRESET_SPLITS, SCHEDULES
from pwslib.io import DataError
from pwslib.experiments.notebook import setup


def test_notebook_paths_are_relative_to_the_notebooks_folder_wherever_they_run(tmp_path, monkeypatch):
    from pathlib import Path

    from pwslib.experiments.notebook import notebook_path

    monkeypatch.chdir(tmp_path)
    checkout = Path(__file__).resolve().parents[2]
    assert notebook_path("../runs/ci") == checkout / "runs" / "ci"
    assert notebook_path(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_setup_turns_the_parameters_cell_into_a_schedule_and_folders(tmp_path):
    schedule, split, ready, runs_root, reports, figures = setup(
        "ci", "toy-stuff", {"seeds": [0, 1], "runs_root": tmp_path / "runs", "reports_dir": tmp_path / "reports"}
    )
    assert schedule.seeds == (0, 1) and schedule.iterations == 4 and ready
    assert runs_root == tmp_path / "runs" and figures == tmp_path / "reports" / "figures" and figures.is_dir()


def test_setup_stops_on_a_wrong_parameter_in_one_line(tmp_path):
    with pytest.raises(DataError, match="seeds"):
        setup("ci", "toy-stuff", {"seeds": [], "runs_root": tmp_path, "reports_dir": tmp_path})


def test_a_preset_sets_every_notebook_value_and_an_unknown_override_is_refused(tmp_path):
    schedule, split, *_ = setup("ci", "toy-stuff", {"runs_root": tmp_path, "reports_dir": tmp_path})
    assert (schedule, split) == (SCHEDULES["ci"], PRESET_SPLITS["ci"])
    with pytest.raises(DataError, match="not notebook settings"):
        setup("ci", "toy-stuff", {"iteration": 3})
    with pytest.raises(DataError, match="unknown preset"):
        setup("fast", "toy-stuff")


def test_overrides_given_as_json_text_by_papermill_are_read_and_bad_text_is_one_line(tmp_path):
    text = json.dumps({"seeds": [0, 1], "runs_root": str(tmp_path), "reports_dir": str(tmp_path)})
    schedule, *_ = setup("ci", "toy-stuff", text)
    assert schedule.seeds == (0, 1)
    with pytest.raises(DataError, match="overrides must be a dict or its JSON text"):
        setup("ci", "toy-stuff", "{split: 3}")
    with pytest.raises(DataError, match="overrides must be a dict"):
        setup("ci", "toy-stuff", [("split", 3)])


def test_the_test_preset_variable_wins_over_the_parameters_cell_and_says_so(tmp_path, monkeypatch, capsys):
    from pwslib.experiments.notebook import PRESET_VARIABLE

    monkeypatch.setenv(PRESET_VARIABLE, "ci")
    schedule, *_ = setup("quick", "toy-stuff", {"runs_root": tmp_path, "reports_dir": tmp_path})
    assert schedule.iterations == SCHEDULES["ci"].iterations
    assert "from PWSLIB_NOTEBOOK_PRESET" in capsys.readouterr().out


def test_the_comparison_chooses_images_by_its_stated_rule():
    import numpy as np

    from pwslib.experiments.notebook import chosen_images

    ours = np.array([0.9, 0.5, np.nan, 0.2, 0.6, 0.7, 0.4, 0.5])
    naive = np.array([0.1, 0.5, 0.3, 0.8, 0.6, 0.6, 0.4, 0.4])
    chosen = chosen_images({"ours": ours, "point_naive": naive, "full_supervision": ours}, extremes=2, others=2)
    assert [i for i, _ in chosen[:3]] == [0, 5, 3]  # ours ahead most: 0 (+0.8), then 5 and 7 tie at +0.1 -> 5
    assert chosen[0][1] == "ours ahead most (+0.80)" and chosen[2][1] == "point_naive ahead most (+0.60)"
    assert [why for _, why in chosen[3:]] == ["random"] * 3  # point_naive leads on one image only: 3 random
    assert 2 not in [i for i, _ in chosen] and len({i for i, _ in chosen}) == 6  # no image without a novel class
    assert chosen == chosen_images({"ours": ours, "point_naive": naive, "full_supervision": ours})  # seeded
    alone = chosen_images({"full_supervision": ours}, extremes=1, others=1)
    assert len(alone) == 3 and all(why == "random" for _, why in alone)
