from pwslib.config import config_for
from pwslib.experiments.progress import GridProgress, steps_done
from pwslib.runs import log_fields, run_folder


def write_log(folder, steps: int, half_row: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [",".join(log_fields())] + [f"{step}," + ",".join(["1.0"] * (len(log_fields()) - 1)) for step in range(steps)]
    text = "\n".join(rows) + "\n" + (f"{steps},0.9" if half_row else "")
    (folder / "log.csv").write_text(text)


def test_steps_done_reads_the_last_whole_row_of_the_step_log(tmp_path):
    assert steps_done(tmp_path / "missing", 100) == 0
    write_log(tmp_path / "header", 0)
    assert steps_done(tmp_path / "header", 100) == 0
    write_log(tmp_path / "running", 500, half_row=True)  # a row being written is not a step done yet
    assert steps_done(tmp_path / "running", 1000) == 500
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "log.csv").write_bytes(b"\x00\x00\n\xff\n")
    assert steps_done(tmp_path / "damaged", 100) == 0


def test_a_finished_run_counts_every_step(tmp_path):
    write_log(tmp_path, 3)
    (tmp_path / "metrics.json").write_text("{}")
    assert steps_done(tmp_path, 40) == 40


def test_the_grid_line_counts_the_steps_on_disk_resumed_runs_included(tmp_path):
    configs = [config_for("ours", seed=seed, iterations=50) for seed in (0, 1)]
    first, second = (run_folder(tmp_path, config) for config in configs)
    write_log(first, 20)  # resumed: 20 steps were trained before this grid started
    line = GridProgress(configs, tmp_path, "grid", enabled=True)
    assert (line.bar.total, line.bar.n) == (100, 20)
    write_log(first, 50)
    (first / "metrics.json").write_text("{}")
    write_log(second, 7, half_row=True)
    line.poll()
    assert line.bar.n == 57 and line.finished_runs() == "1/2 runs finished"
    line.close()
