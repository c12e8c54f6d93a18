import subprocess

import pytest

from pwslib.io import atomic_path, byte_size, git_commit, provenance, save_figure, write_json_atomic


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_provenance_names_commit_machine_and_extras():
    record = provenance(seed=3)
    assert {"git_commit", "machine", "date_utc"} <= record.keys() and record["seed"] == 3


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    write_json_atomic(tmp_path / "a.json", {})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_changed_reports_do_not_make_the_code_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    (tmp_path / "reports").mkdir()
    (tmp_path / "code").mkdir()
    (tmp_path / "reports" / "table.md").write_text("a")
    (tmp_path / "code" / "model.py").write_text("a")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    (tmp_path / "reports" / "table.md").write_text("b")
    assert not git_commit(tmp_path / "code").endswith("+dirty")
    (tmp_path / "code" / "model.py").write_text("b")
    assert git_commit(tmp_path / "code").endswith("+dirty")


def test_an_unwritable_folder_is_found_before_any_work_and_the_fix_is_named(tmp_path):
    import os

    from pwslib.io import DataError, check_writable

    check_writable(tmp_path / "new" / "reports", "choose one with --reports-dir")
    assert (tmp_path / "new" / "reports").is_dir() and not list((tmp_path / "new" / "reports").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="choose one with --reports-dir"):
        check_writable(tmp_path / "file" / "reports", "choose one with --reports-dir")
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(DataError, match="cannot be written"):
            check_writable(tmp_path / "locked", "x")


def test_one_line_errors_turns_bad_input_and_file_faults_into_one_line():
    import pytest

    from pwslib.io import DataError, one_line_errors

    for fault, expected in [
        (DataError("label 7 out of range in a.png"), "error: label 7 out of range in a.png"),
        (PermissionError(13, "Permission denied", "/reports/x.md"), "error: the job could not use /reports/x.md (Permission denied)"),
        (KeyboardInterrupt(), "the job interrupted"),
    ]:
        with pytest.raises(SystemExit) as stopped, one_line_errors("the job"):
            raise fault
        assert str(stopped.value).startswith(expected) and stopped.value.__cause__ is None


def test_a_byte_size_reads_in_mib_below_a_gib_and_in_gib_from_one_gib():
    assert byte_size(3 * 2**29) == "1.5 GiB"
    assert byte_size(2**30) == "1.0 GiB"
    assert byte_size(2**30 - 2**20) == "1023.0 MiB"
    assert byte_size(4.6 * 2**20) == "4.6 MiB"


def test_a_figure_is_written_whole_or_the_previous_file_stays(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / "figures" / "curve.png"
    figure = plt.figure(figsize=(1, 1))
    save_figure(figure, target)
    first = target.read_bytes()
    assert first.startswith(b"\x89PNG") and plt.fignum_exists(figure.number)  # a notebook still shows it

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    figure.savefig = interrupted
    with pytest.raises(KeyboardInterrupt):
        save_figure(figure, target)
    assert target.read_bytes() == first and [p.name for p in target.parent.iterdir()] == ["curve.png"]
    del figure.savefig
    save_figure(figure, target, close=True)
    assert not plt.fignum_exists(figure.number)
