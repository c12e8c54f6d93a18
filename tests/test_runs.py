import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import lock_holder
from test_train import tiny_config

from pwslib.io import DataError
from pwslib.runs import CHECKPOINT, LOCK, check_run_folder, load_checkpoint, read_run_config, read_run_metrics, run_lock
from pwslib.train import main, run


def test_a_finished_run_whose_checkpoint_was_deleted_is_never_overwritten(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    run(tiny_config(iterations=1), folder, progress=False)
    (folder / CHECKPOINT).unlink()  # to save space
    metrics = (folder / "metrics.json").read_bytes()
    with pytest.raises(DataError, match="already holds a run"):
        run(tiny_config(iterations=1), folder, progress=False)
    with pytest.raises(DataError, match="has finished"):
        run(tiny_config(iterations=1), folder, resume=True, progress=False)
    assert (folder / "metrics.json").read_bytes() == metrics and not (folder / LOCK).exists()


def test_any_run_file_makes_a_folder_taken_and_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "log.csv").write_text("step,loss\n")
    with pytest.raises(DataError, match=r"holds a run \(log.csv\)"):
        check_run_folder(tmp_path / "taken", resume=False)
    check_run_folder(tmp_path / "taken", resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is a file"):
        check_run_folder(tmp_path / "file", resume=False)


def test_a_second_process_on_the_same_folder_is_refused_while_the_first_trains(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    holder = lock_holder(folder)
    try:
        with pytest.raises(DataError, match=rf"in use: process {holder.pid} "):
            run(tiny_config(iterations=1), folder, resume=True, progress=False)
        assert not (folder / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over_and_the_run_resumes(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": dead.pid, "host": __import__("socket").gethostname(),
                                             "since": "2026-01-01 00:00:00"}))
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert f"process {dead.pid} (started 2026-01-01 00:00:00 UTC), which no longer runs: taken over" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # neither the lock nor the stale one set aside is left


def test_the_held_lock_not_the_record_in_its_file_decides(tmp_path):
    holder = lock_holder(tmp_path)
    try:  # a record naming a dead process does not free a lock that a live one holds
        (tmp_path / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "2026-01-01 00:00:00"}))
        with pytest.raises(DataError, match="in use: process 1 on elsewhere"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path):  # released by the kernel when its holder was killed
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


def test_a_killed_run_resumes_without_touching_its_lock(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    killed = lock_holder(folder)
    killed.terminate()  # SIGTERM: the process dies without unlocking
    killed.wait()
    assert (folder / LOCK).exists()
    run(tiny_config(iterations=1), folder, resume=True, progress=False)
    assert (folder / "metrics.json").exists() and not (folder / LOCK).exists()


def test_an_empty_out_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--out", "", "--iterations", "1"])
    assert "--out: is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_lock_is_released_when_a_run_fails(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    with pytest.raises(DataError):
        run(tiny_config(iterations=1, split=9), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / LOCK).exists()


def test_a_checkpoint_with_flipped_bytes_inside_a_tensor_is_refused(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config(iterations=2)
    run(config, tmp_path / "run", progress=False)
    path = tmp_path / "run" / CHECKPOINT
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0x5A for b in data[middle : middle + 2000])  # 2 KB inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged"):
        load_checkpoint(path, config)
    path.write_bytes(path.read_bytes().split(b"\n", 1)[1])  # a bare torch.save file: no checksum
    with pytest.raises(DataError, match="carries no checksum"):
        load_checkpoint(path, config)


def test_a_finished_run_is_read_only_and_evaluate_says_when_a_run_is_unfinished(tmp_path, toy_root, monkeypatch, capsys):
    from pwslib.evaluate import main as evaluate_main

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    run(tiny_config(iterations=2), folder, progress=False)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(SystemExit, match="a finished run is read-only, so nothing was changed"):
        main(["--out", str(folder), "--resume"])
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # provenance kept
    unfinished = tmp_path / "unfinished"
    assert run(tiny_config(iterations=4), unfinished, progress=False, stop_after=2) is None
    evaluate_main([str(unfinished)])
    printed = capsys.readouterr().out
    assert "has not finished training" in printed and "at step 2 of 4" in printed
    evaluate_main([str(folder)])
    assert "has not finished" not in capsys.readouterr().out


def test_a_resume_keeps_the_thread_count_the_run_trained_with(tmp_path, toy_root, monkeypatch):
    import torch

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    threads = torch.get_num_threads()
    try:
        config = tiny_config(iterations=4)
        assert run(config, tmp_path / "run", progress=False, stop_after=2, threads=1) is None
        assert load_checkpoint(tmp_path / "run" / CHECKPOINT, config)["threads"] == 1
        torch.set_num_threads(2)
        seen = []
        monkeypatch.setattr("pwslib.train.Trainer.fit", lambda self, *a: seen.append(torch.get_num_threads()) or False)
        run(config, tmp_path / "run", resume=True, progress=False)  # no --threads: the run's own
        assert seen == [1]
        with pytest.warns(UserWarning, match="trained on 1 threads and goes on with 2"):
            run(config, tmp_path / "run", resume=True, progress=False, threads=2)
    finally:
        torch.set_num_threads(threads)


def test_resume_compares_values_as_json_so_an_equal_list_is_no_conflict(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    assert run(tiny_config(iterations=3), folder, progress=False, stop_after=1) is None
    widths = json.dumps(list(tiny_config().backbone_widths)).replace(" ", "")
    main(["--out", str(folder), "--resume", "--set", f"backbone_widths={widths}"])
    assert (folder / "metrics.json").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "config.json").write_text("[1, 2]"), "a run config is a JSON object of fields, not list"),
        (lambda folder: (folder / "config.json").write_text("{broken"), "cannot be read as a run config"),
        (lambda folder: (folder / "config.json").write_text("{}"), r"lacks \['method', 'dataset', 'seed', 'iterations'\]"),
        (lambda folder: (folder / "config.json").write_bytes(b"\xff\xfe"), "cannot be read as a run config"),
        (lambda folder: (folder / "log.csv").write_text("step,loss,other\n0,1.0,2\n"), "has the columns"),
        (lambda folder: (folder / "log.csv").write_text(",".join(__import__("pwslib.runs").runs.log_fields()) + "\n\0\0\0\n"), "damaged row"),
    ],
)
def test_run_files_read_back_are_checked(tmp_path, toy_root, monkeypatch, damage, message):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    assert run(tiny_config(iterations=3), folder, progress=False, stop_after=1) is None
    damage(folder)
    with pytest.raises(SystemExit, match=message):
        main(["--out", str(folder), "--resume"])


def test_a_toy_cache_record_of_the_wrong_type_is_one_line(tmp_path):
    from pwslib.data.toy import cache_meta

    (tmp_path / "meta.json").write_text("[]")
    with pytest.raises(DataError, match="is not a toy cache record; delete"):
        cache_meta(tmp_path)


RECORD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    content=st.one_of(
        st.binary(max_size=40),
        RECORD_VALUES.map(json.dumps),
        st.fixed_dictionaries({}, optional={name: RECORD_VALUES for name in ("method", "dataset", "seed", "iterations",
                                                                            "hiou", "per_class_iou")}).map(json.dumps),
    )
)
def test_any_run_record_is_read_or_refused_in_one_error(tmp_path_factory, content):
    """Whatever bytes a run's config.json or metrics.json holds, reading it returns a record or raises DataError."""
    folder = tmp_path_factory.mktemp("record")
    for name, read in (("config.json", read_run_config), ("metrics.json", read_run_metrics)):
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        try:
            read(folder)
        except DataError as error:
            assert str(folder / name) in str(error) or "config" in str(error)


def test_a_damaged_metrics_record_names_the_file_and_the_command_that_scores_the_run_again(tmp_path):
    (tmp_path / "metrics.json").write_text('{"hiou": 1.0}')
    with pytest.raises(DataError, match=r"lacks the scores \['base_miou', 'novel_miou', 'total_miou', 'per_class_iou'\].*pwslib.evaluate"):
        read_run_metrics(tmp_path)
