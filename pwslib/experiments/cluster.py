"""A grid's runs as Ray tasks: one machine's process pool, or a cluster's nodes, through the same call.

    ray start --head --num-cpus 2                     # or a cluster: see docs/usage.md
    python -m pwslib.experiments table1 --seeds 0 1 2 --ray 127.0.0.1:6379

Each run still to train becomes one task (Moritz et al., "Ray: A Distributed Framework for Emerging AI
Applications", OSDI 2018) that asks for ``threads`` CPUs, or a GPU where the cluster has them, and calls the same
``run_cached`` as the local pool: it trains into the grid's runs root, which every node must see (a shared file
system), and resumes from the run's checkpoint when the folder has one. A task whose worker dies (a node lost, a
process killed) is retried by Ray, and the retry resumes from the last checkpoint instead of step 0; a run that
fails on its own (bad data, a non-finite loss) is not retried and stops the grid with its message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pwslib.config import TrainConfig
from pwslib.experiments.progress import POLL_SECONDS, GridProgress
from pwslib.io import DataError, default_data_root

RETRIES = 3  # attempts after a worker dies, each resuming from the run's last checkpoint


@dataclass(frozen=True)
class RayCluster:
    """Where a grid's runs train: the Ray head at ``address`` (``host:port``; None: the cluster ``RAY_ADDRESS``
    names, else a new one on this machine), ``threads`` CPUs per run (one by default: two 1-thread runs side by
    side deliver 1.2-1.3x the images/s of one 2-thread run on these small convolutions)."""

    address: str | None = None
    threads: int = 1


def _train_one(run_cached: Callable, config: dict, runs_root: str, threads: int, checkpoint_every: float) -> str:
    """A Ray task: train (or resume, or read) one run with the grid's ``run_cached``; returns its key."""
    torch.set_num_threads(threads)
    run_config = TrainConfig.from_dict(config)
    run_cached(run_config, Path(runs_root), progress=False, checkpoint_every=checkpoint_every)
    return run_config.key()


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (``host:port`` of its head), or with no address the one
    ``RAY_ADDRESS`` names, else start one on this machine. Ray is an optional dependency: ``pip install ray``."""
    try:
        import ray
    except ImportError:
        raise DataError("--ray needs Ray: pip install 'ray>=2.40' (or pip install -e .[cluster])") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
    except ConnectionError as error:
        raise DataError(
            f"no Ray cluster answers at {address}: start one with `ray start --head`, or drop the address to "
            f"start one on this machine ({error})"
        ) from None


def train_on_ray(
    configs: list[TrainConfig], runs_root: Path, cluster: RayCluster, run_cached: Callable, checkpoint_every: float,
    progress: bool = True,
) -> None:
    """Train ``configs`` as Ray tasks on ``cluster``, longest first, each by ``run_cached`` (the grid's: it reads,
    resumes or trains a run) on its threads, or on one GPU where the cluster has any; returns when every run has
    finished. Ctrl-C cancels the tasks: each run keeps its last checkpoint."""
    import ray

    connect(cluster.address)
    threads = cluster.threads
    gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=RETRIES, retry_exceptions=False)(_train_one)
    environment = {"PWSLIB_DATA": str(default_data_root()), "OMP_NUM_THREADS": str(threads)}
    pending = [
        task.options(runtime_env={"env_vars": environment}).remote(
            run_cached, config.to_dict(), str(Path(runs_root).resolve()), threads, checkpoint_every
        )
        for config in sorted(configs, key=lambda config: -config.iterations)
    ]
    line = GridProgress(configs, runs_root, f"grid (Ray, {threads} CPUs a run)", progress)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
            ray.get(done)
            line.poll()
    except BaseException as error:  # Ctrl-C, or a run that failed: stop the others, each keeps its checkpoint
        for reference in pending:
            ray.cancel(reference, force=True)
        cause = getattr(error, "cause", None)  # a task's own exception, inside Ray's RayTaskError
        if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, (DataError, FloatingPointError)):
            raise type(cause)(str(cause)) from None
        raise
    finally:
        line.close()

