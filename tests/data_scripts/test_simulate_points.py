"""The data scripts end a failure with one line and a non-zero exit, never a traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def simulate_points(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "data_scripts" / "simulate_points.py"), "--dataset", "toy-stuff", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_seed_out_of_range_is_one_line(tmp_path):
    result = simulate_points("--seed", "-3", "--root", str(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: the point simulation's seed must be a whole number in 0..4294967295, got -3"
    ]


def test_a_data_root_that_cannot_be_written_is_one_line_before_any_work(tmp_path):
    (tmp_path / "a-file").write_text("in the way")
    result = simulate_points("--root", str(tmp_path / "a-file" / "data"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'a-file' / 'data'} cannot be written (Not a directory); choose a writable folder with --root"
    ]  # the check comes first: no toy scene was generated (they print progress) before it
