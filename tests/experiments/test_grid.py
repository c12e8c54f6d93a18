import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_TOY, lock_holder

from pwslib.config import config_for
from pwslib.io import DataError
from pwslib.experiments.grid import planned_configs, run_cached, run_grid
from pwslib.experiments.report import write_table
from pwslib.experiments.schedules import preset_rows, PRESET_TABLES, Schedule
from pwslib.runs import run_folder
from pwslib.train import run

ROOT = Path(__file__).resolve().parents[2]
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


def test_a_grid_scored_on_validation_reads_the_validation_images_and_keeps_the_run_files(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    schedule = Schedule(seeds=(0,), iterations=2, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)
    rows = {"ours": ("ours", {})}
    tested = run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path / "runs", progress=False)
    metrics = next((tmp_path / "runs").glob("*/metrics.json"))
    before = metrics.read_text()
    validated = run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path / "runs", progress=False, scored_on="validation")
    assert metrics.read_text() == before  # the run's own record is untouched
    record = json.loads((metrics.parent / "validation.json").read_text())
    assert record["images"] == SMALL_TOY["num_test"] and record["step"] == 2
    assert validated["hiou"].tolist() == [record["hiou"]] and list(validated["scored_on"]) == ["validation"]
    assert tested["total_miou"].tolist() != validated["total_miou"].tolist()  # other images, other scores
    stamp = (metrics.parent / "validation.json").stat().st_mtime_ns
    run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path / "runs", progress=False, scored_on="validation")
    assert (metrics.parent / "validation.json").stat().st_mtime_ns == stamp  # read back, not scored again
    with pytest.raises(DataError, match="scored_on"):
        run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path / "runs", progress=False, scored_on="train")


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


def test_a_grid_that_may_not_train_reads_finished_runs_and_names_the_missing_ones(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    rows = {"base_only": ("base_only", {})}
    schedule = Schedule(seeds=(0, 1), iterations=2, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)
    with pytest.raises(DataError, match="2 of 2 runs have not finished .*nothing was trained"):
        run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path, progress=False, train=False)
    assert not list(tmp_path.glob("*"))
    trained = run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path, progress=False)
    again = run_grid(rows, ["toy-stuff"], 1, schedule, tmp_path, progress=False, train=False)
    assert again["hiou"].tolist() == trained["hiou"].tolist()


def test_interrupted_run_is_resumed_by_the_cache(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for("ours", iterations=4, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)
    folder = run_folder(tmp_path, config)
    assert run(config, folder, progress=False, stop_after=2) is None
    metrics = run_cached(config, tmp_path, progress=False)
    assert metrics["config_key"] == config.key()
    assert len(pd.read_csv(folder / "log.csv")) == 4


@pytest.mark.parametrize("preset, count", [("quick", 7), ("full", 90)])
def test_the_planned_runs_are_the_runs_the_notebooks_train_longest_first(tmp_path, preset, count):
    """The reproduction trains ``planned_configs`` before the notebooks: their keys must be the notebooks' keys."""
    from pwslib.experiments.notebook import setup
    from pwslib.experiments.schedules import PRESET_SPLITS, SCHEDULES, table_datasets
    from pwslib.experiments.tables import TABLES

    planned = planned_configs(preset)
    assert [c.iterations for c in planned] == sorted((c.iterations for c in planned), reverse=True)
    notebook_keys = set()
    for table in PRESET_TABLES[preset]:
        schedule = setup(preset, "toy-stuff", {"runs_root": str(tmp_path), "reports_dir": str(tmp_path)}, table).schedule
        for method, overrides in preset_rows(preset, table, TABLES[table][0]()).values():
            for dataset in table_datasets(preset, table):  # what notebooks 05 and 08 train and draw
                for seed in SCHEDULES[preset].seeds:
                    notebook_keys.add(
                        config_for(
                            method, dataset=dataset, split=PRESET_SPLITS[preset], seed=seed,
                            **{**schedule.overrides(), **overrides},
                        ).key()
                    )
    # quick: 3 of Table 1 on toy-stuff and 4 ablation runs; full: 6 x 2 x 3 of Table 1 and 18 ablation
    # rows x 3 on toy-stuff (Table 3's 'without bank' is Table 2's 'w/o L_ctl')
    assert {c.key() for c in planned} == notebook_keys and len(planned) == count


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_planned_datasets_are_the_notebooks_defaults(preset):
    import papermill

    notebooks = {"table1": "05_table1_methods", "table2": "06_table2_ablation", "table3": "07_table3_variants"}
    for table, plan in PRESET_TABLES[preset].items():
        parameters = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{notebooks[table]}.ipynb"))
        names = "datasets" if "datasets" in parameters else "dataset"
        default = ast.literal_eval(parameters[names]["default"])
        if default is None:  # the notebook asks the plan for its datasets
            cells = json.loads((ROOT / "notebooks" / f"{notebooks[table]}.ipynb").read_text())["cells"]
            code = "".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
            assert f'datasets = datasets or table_datasets(preset, "{table}")' in code
        else:
            assert tuple(default if isinstance(default, list) else [default]) == plan.datasets


def test_integer_given_for_a_float_field_hashes_like_the_float():
    from pwslib.config import TrainConfig

    assert (
        TrainConfig.from_dict({"consistency_weight": 0}).key()
        == TrainConfig.from_dict({"consistency_weight": 0.0}).key()
    )
    assert config_for("ours", consistency_weight=0).key() == config_for("ours", consistency_weight=0.0).key()



def _state_and_parent(stat: Path) -> tuple[str, int] | None:
    """A process's state letter and parent pid from its ``/proc/<pid>/stat``; None once it is gone."""
    try:
        state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError):
        return None
    return state, int(parent)


def _live_children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, zombies left out."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        read = _state_and_parent(stat)
        if read and read[0] != "Z" and read[1] == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    read = _state_and_parent(Path(f"/proc/{pid}/stat"))
    return read is not None and read[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_sigterm_to_a_parallel_grid_stops_its_workers_and_keeps_their_checkpoints(tmp_path, toy_root):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys\nfrom pathlib import Path\nfrom pwslib.config import config_for\n"
        "from pwslib.experiments.grid import train_all\n"
        "configs = [config_for('point_naive', seed=seed, iterations=100000, batch_size=4, "
        f"toy_options={SMALL_TOY!r}, pretrained_backbone=False) for seed in (0, 1)]\n"
        "train_all(configs, Path(sys.argv[1]), progress=False, workers=2)\n"
    )
    runs, log = tmp_path / "runs", tmp_path / "stderr.txt"
    environment = {**os.environ, "PWSLIB_DATA": str(toy_root), "PYTHONPATH": str(ROOT)}
    with log.open("w") as stderr:  # a file, not a pipe: workers that outlive the parent would hold a pipe open
        parent = subprocess.Popen([sys.executable, "-c", script, str(runs)], env=environment, stderr=stderr)
    workers = set()
    try:
        deadline = time.monotonic() + 120  # the first checkpoint of a run comes after 10 s
        while len(list(runs.glob("*/checkpoint.pt"))) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.5)
        workers = _live_children(parent.pid)
        assert len(list(runs.glob("*/checkpoint.pt"))) == 2 and len(workers) >= 2, log.read_text()[-2000:]
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) != 0
        assert "KeyboardInterrupt" in log.read_text()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in workers if _alive(pid)], "the workers trained on after their parent stopped"
        assert len(list(runs.glob("*/checkpoint.pt"))) == 2 and not list(runs.glob("*/metrics.json"))
    finally:
        for pid in [parent.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--seeds", "0", "0"], "--seeds repeats 0"),
        (["--datasets", "toy-stuff", "toy-stuff"], "--datasets repeats toy-stuff"),
        (["--rows", "point_naive", "point_naive"], "--rows repeats point_naive"),
        (["--workers", "0"], "--workers: must be a whole number of at least 1"),
        (["--workers", "-3"], "--workers: must be a whole number of at least 1"),
        (["--threads", "-1"], "--threads: must be a whole number of at least 1"),
    ],
)
def test_a_table_refuses_repeated_inputs_and_impossible_process_counts_in_one_line(flags, says, tmp_path, capsys):
    from pwslib.experiments.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["table1", "--runs-root", str(tmp_path / "runs"), *flags])
    assert stopped.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any folder is made


def test_a_table_of_unprepared_datasets_ends_in_one_line(tmp_path, monkeypatch, capsys):
    from pwslib.experiments.cli import main

    monkeypatch.setenv("PWSLIB_DATA", str(tmp_path / "data"))
    arguments = ["table1", "--datasets", "coco_stuff_10k", "--iterations", "2"]
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, "--runs-root", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports")])
    assert "none of ['coco_stuff_10k'] is prepared" in str(stopped.value)
    assert not list((tmp_path / "reports").glob("*.md"))


@pytest.mark.parametrize(
    "flags, environment, says",
    [
        (["--split", "99"], {}, "toy-stuff has splits 1..7, not 99"),
        ([], {"PWSLIB_WORKERS": "abc"}, "PWSLIB_WORKERS must be a whole number of at least 1, got 'abc'"),
        ([], {"PWSLIB_WORKERS": "0"}, "PWSLIB_WORKERS must be a whole number of at least 1, got '0'"),
    ],
)
def test_a_refused_table_says_why_in_one_line_and_leaves_no_folder_behind(flags, environment, says, tmp_path, monkeypatch):
    from pwslib.experiments.cli import main

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        main(["table1", "--runs-root", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports"), *flags])
    assert str(stopped.value) == f"error: {says}" or says in str(stopped.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_a_run_another_grid_is_training_names_the_runs_root_not_an_out_flag(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for("point_naive", iterations=1, batch_size=2, toy_options=SMALL_TOY, pretrained_backbone=False)
    holder = lock_holder(run_folder(tmp_path, config))
    try:
        with pytest.raises(DataError, match=rf"process {holder.pid} .*another grid is training this run.*--runs-root\)$"):
            run_cached(config, tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait()
