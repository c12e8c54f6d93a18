import json
from pathlib import Path

from pwslib.experiments.schedules import SCHEDULES
from pwslib.experiments.notebook import preset_values
from pwslib.reproduce import NOTEBOOKS, record_reproduction


def test_every_reproduction_is_kept_per_preset(tmp_path):
    path = tmp_path / "reproduction.json"
    record_reproduction(path, {"preset": "quick", "wall_seconds": 1250.0, "runs_trained": 29})
    record_reproduction(path, {"preset": "quick", "wall_seconds": 55.0, "runs_trained": 0})
    record_reproduction(path, {"preset": "full", "wall_seconds": 9.0})
    history = json.loads(path.read_text())
    assert [r["wall_seconds"] for r in history["quick"]] == [1250.0, 55.0]
    assert len(history["full"]) == 1


def test_the_quick_preset_reaches_every_notebook_parameter():
    injected = preset_values("quick")
    assert injected["seeds"] == [0] and injected["iterations"] == SCHEDULES["quick"].iterations
    assert injected["runs_root"] == "../runs/quick" and len(NOTEBOOKS) == 9


def test_the_full_preset_reports_on_a_held_out_split_beside_the_quick_one():
    quick, full = preset_values("quick"), preset_values("full")
    assert quick["split"] == 1 and full["split"] == 2  # split 1 is the development split (reports/protocol.md)
    assert quick["reports_dir"] == "../reports" and full["reports_dir"] == "../reports/full"
    assert full["seeds"] == [0, 1, 2]


def test_a_damaged_history_is_set_aside_with_a_warning_not_fatal_after_the_work(tmp_path):
    import pytest

    path = tmp_path / "reproduction.json"
    path.write_text('{"quick": [{"wall_seconds": 1')  # cut off mid-write by hand
    with pytest.warns(UserWarning, match="was not valid JSON"):
        record_reproduction(path, {"preset": "quick", "wall_seconds": 1500.0})
    assert json.loads(path.read_text()) == {"quick": [{"preset": "quick", "wall_seconds": 1500.0}]}
    (aside,) = tmp_path.glob("reproduction.json.damaged-*")
    assert aside.read_text().startswith('{"quick"')


def fake_papermill(root, events):
    """A papermill that copies the source notebook and, as a kernel under notebook.setup does, records that it read
    ``reports/table1.csv``."""
    import os
    import shutil
    import types

    from pwslib.experiments.freshness import READS_VARIABLE

    def execute_notebook(source, target, **kwargs):
        events.append(("notebook", kwargs["parameters"]["preset"]))
        shutil.copy(source, target)
        Path(os.environ[READS_VARIABLE]).write_text("reports/table1.csv\n")

    return types.SimpleNamespace(
        inspect_notebook=lambda path: {"preset": {}},
        execute_notebook=execute_notebook,
        PapermillExecutionError=RuntimeError,
    )


def checkout_with_notebooks(root):
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        cells = [{"cell_type": "markdown", "metadata": {}, "source": [f"# {name}"]}]
        (root / "notebooks" / f"{name}.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}}))
    (root / "reports").mkdir()
    (root / "reports" / "table1.csv").write_text("method,hiou\nours,60.0\n")


def test_the_reproduction_trains_the_planned_runs_in_one_pool_before_the_notebooks(tmp_path, monkeypatch):
    import sys

    import pwslib.reproduce as reproduce
    from pwslib.experiments.cluster import RayCluster
    from pwslib.experiments.grid import planned_configs

    events = []
    checkout_with_notebooks(tmp_path)
    monkeypatch.setitem(sys.modules, "papermill", fake_papermill(tmp_path, events))
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    monkeypatch.setattr(
        reproduce, "train_all",
        lambda configs, root, progress, workers, cluster: events.append(("train", len(configs), workers, cluster)),
    )
    reproduce.main(["--workers", "2"])
    assert events[0] == ("train", len(planned_configs("quick")), 2, None)
    assert events[1:] == [("notebook", "quick")] * len(NOTEBOOKS)
    record = json.loads((tmp_path / "reports" / "reproduction.json").read_text())["quick"][-1]
    assert record["planned_runs"] == len(planned_configs("quick")) == 7  # Table 1 on toy-stuff and 4 ablation runs
    assert record["parameters"]["iterations"] == SCHEDULES["quick"].iterations
    events.clear()
    reproduce.main(["--only", "05_table1_methods"])  # one notebook: it trains what it needs itself
    assert events == [("notebook", "quick")]
    events.clear()
    reproduce.main(["--ray", "10.0.0.9:6379"])  # the planned runs as Ray tasks on that cluster
    assert events[0] == ("train", len(planned_configs("quick")), 2, RayCluster("10.0.0.9:6379"))


def test_stale_executes_only_the_notebooks_older_than_what_they_show(tmp_path, monkeypatch, capsys):
    import sys

    import pwslib.reproduce as reproduce

    events = []
    checkout_with_notebooks(tmp_path)
    monkeypatch.setitem(sys.modules, "papermill", fake_papermill(tmp_path, events))
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    monkeypatch.setattr(reproduce, "train_all", lambda *args, **kwargs: None)
    reproduce.main(["--stale"])  # nothing executed yet: every notebook is stale
    assert len(events) == len(NOTEBOOKS)
    record = json.loads((tmp_path / "reports" / "executed" / "05_table1_methods.ipynb").read_text())["metadata"]
    assert list(record["pwslib_freshness"]["inputs"]) == ["reports/table1.csv"]
    events.clear()
    reproduce.main(["--stale"])
    assert events == [] and "is fresh: nothing to do" in capsys.readouterr().out
    (tmp_path / "reports" / "table1.csv").write_text("method,hiou\nours,61.0\n")  # the report is regenerated
    source = tmp_path / "notebooks" / "01_data_and_split.ipynb"
    source.write_text(source.read_text().replace("# 01", "# 01, retold"))
    reproduce.main(["--stale", "--only", "01_data_and_split", "05_table1_methods"])
    assert "01_data_and_split is stale: 01_data_and_split.ipynb changed; reports/table1.csv changed" in capsys.readouterr().out
    assert len(events) == 2
