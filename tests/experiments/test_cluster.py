"""The grid on a real Ray head: a worker killed mid-run, the grid still finishes, the run resumes, the table is the
local pool's. The head runs in a network namespace of its own with only loopback up (``unshare --net``, as root),
so its traffic never leaves the machine; ``PWSLIB_RAY_TEST=required`` (CI) turns a missing namespace into a failure."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from pwslib.experiments.cluster import RayCluster, connect
from pwslib.io import DataError, read_checkpoint
from pwslib.runs import CHECKPOINT, LOCK

GRID = [
    "table1", "--rows", "point_naive", "--datasets", "toy-stuff", "--iterations", "150", "--batch-size", "4",
    "--threads", "1", "--set", 'toy_options={"num_train": 24, "num_test": 8}', "embedding_dim=32",
    "backbone_widths=[16,32,48,64]", "pretrained_backbone=false",
]
SCORES = ["row", "seed", "base_miou", "novel_miou", "total_miou", "hiou"]


def namespace_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True).returncode == 0


def needs_namespace():
    if not namespace_available():
        if os.environ.get("PWSLIB_RAY_TEST") == "required":
            pytest.fail("the Ray test is required here but this machine gives no network namespace (root + unshare)")
        pytest.skip("a Ray head is started only inside a network namespace of its own (root + unshare --net)")


def kill_a_worker_mid_run(runs: Path, grid: subprocess.Popen, timeout: float = 300) -> tuple[Path, int, bytes]:
    """Wait for a run with a checkpoint whose worker holds its lock, SIGKILL that worker; return the run folder, the
    checkpoint's step and the log rows written up to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and grid.poll() is None:
        for folder in sorted(runs.glob("*")):
            lock, checkpoint = folder / LOCK, folder / CHECKPOINT
            if not (lock.exists() and checkpoint.exists()):
                continue
            try:
                pid, step = json.loads(lock.read_text())["pid"], int(read_checkpoint(checkpoint)["step"])
            except (ValueError, KeyError, OSError, DataError):
                continue  # being written
            logged = (folder / "log.csv").read_bytes().splitlines(keepends=True)[: step + 1]  # header + rows < step
            if 0 < step < 150:
                os.kill(pid, signal.SIGKILL)
                return folder, step, b"".join(logged)
        time.sleep(0.2)
    raise AssertionError(f"no run reached a checkpoint in time (grid exit code {grid.poll()})")


@pytest.mark.slow
def test_a_grid_on_a_ray_head_survives_a_killed_worker_resumes_the_run_and_gives_the_local_pools_table(
    tmp_path, toy_root
):
    needs_namespace()
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    ray_sessions = tempfile.mkdtemp(prefix="pwslib-ray-")  # short: Ray's socket paths must fit in 107 bytes
    script = tmp_path / "cluster.sh"
    script.write_text(
        "set -e\nip link set lo up\n"
        f'trap "{ray} stop --force > /dev/null 2>&1" EXIT\n'
        f"{ray} start --head --port 6379 --num-cpus 2 --include-dashboard false --disable-usage-stats "
        f"--temp-dir {ray_sessions} > {tmp_path / 'head.log'} 2>&1\n"
        f"{sys.executable} -m pwslib.experiments {' '.join(map(repr, GRID))} --runs-root {tmp_path / 'on-ray'} "
        f"--reports-dir {tmp_path / 'ray-reports'} --ray 127.0.0.1:6379 --checkpoint-every 0.3\n"
    )
    environment = {**os.environ, "PWSLIB_DATA": str(toy_root), "RAY_AUTH_MODE": "token", "TQDM_DISABLE": "1"}
    grid = subprocess.Popen(["unshare", "--net", "bash", str(script)], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed, step, logged_before = kill_a_worker_mid_run(tmp_path / "on-ray", grid)
    output, _ = grid.communicate(timeout=600)
    shutil.rmtree(ray_sessions, ignore_errors=True)
    assert grid.returncode == 0, output[-3000:]
    assert (killed / "metrics.json").exists()
    # resumed, not trained again from step 0: the rows logged before the checkpoint keep their bytes (their
    # images/s were measured once, by the killed worker)
    assert (killed / "log.csv").read_bytes().startswith(logged_before) and step > 0

    local = subprocess.run(
        [sys.executable, "-m", "pwslib.experiments", *GRID, "--runs-root", str(tmp_path / "local"), "--reports-dir",
         str(tmp_path / "local-reports"), "--workers", "1"],
        env=environment, capture_output=True, text=True, timeout=600,
    )
    assert local.returncode == 0, local.stderr[-3000:]
    on_ray = pd.read_csv(tmp_path / "ray-reports" / "table1.csv")[SCORES].sort_values(["row", "seed"])
    in_pool = pd.read_csv(tmp_path / "local-reports" / "table1.csv")[SCORES].sort_values(["row", "seed"])
    pd.testing.assert_frame_equal(on_ray.reset_index(drop=True), in_pool.reset_index(drop=True))


def test_no_ray_head_at_the_address_is_one_line(monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)

    def refuse(**options):
        raise ConnectionError(f"Failed to connect to Ray cluster at {options['address']}")

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(DataError, match="no Ray cluster answers at 10.0.0.9:6379: start one with `ray start --head`"):
        connect(RayCluster("10.0.0.9:6379").address)
