"""torch.distributed set-up for ``torchrun`` (gloo on CPU, nccl on GPUs), step-indexed batches, and the
precision the device computes in.

Batches are a pure function of the step: step s of a run reads the s-th slice of a seeded
permutation of the training set (a new permutation each epoch). Rank r of W takes the r-th
contiguous share of that global batch, so W processes see exactly the images one process sees, in
the same order, and a resumed run continues with the very batch it would have read.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from pwslib.config import CHOICES
from pwslib.io import DataError


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the process group torchrun describes in the environment (single process without it)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Distributed(device=torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    use_cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise RuntimeError(
            f"local rank {local_rank} has no GPU of its own (this machine shows {torch.cuda.device_count()}): "
            f"start at most that many processes per node (torchrun --nproc_per_node), or hide the GPUs "
            f"(CUDA_VISIBLE_DEVICES=) to train on the CPU with gloo"
        )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def batch_indices(
    step: int, num_samples: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1
) -> tuple[int, list[int]]:
    """(epoch, this rank's sample indices) of training step ``step``."""
    if global_batch % world_size:
        raise ValueError(f"the global batch {global_batch} must divide evenly over {world_size} processes")
    steps_per_epoch = max(1, num_samples // global_batch)
    epoch, position = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    start = position * global_batch
    if num_samples < global_batch:  # tiny datasets: wrap around
        order = np.resize(order, global_batch)
        start = 0
    share = global_batch // world_size
    chosen = order[start + rank * share : start + (rank + 1) * share]
    return epoch, [int(i) for i in chosen]


def is_distributed() -> bool:
    """True inside a ``torch.distributed`` process group (``torchrun``), where state must be synchronised."""
    return dist.is_available() and dist.is_initialized()


def collective_device() -> torch.device:
    """Where tensors for collectives must live: CUDA for nccl, the CPU for gloo."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over every rank, as a new tensor on ``tensor``'s device (a copy without DDP)."""
    total = tensor.detach().to(collective_device()).clone()
    if is_distributed():
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over every rank (a copy without DDP)."""
    return all_reduce_sum(tensor) / (dist.get_world_size() if is_distributed() else 1)


def resolve_precision(requested: str) -> str:
    """The precision a run computes in: ``auto`` -> ``bfloat16`` on a CUDA GPU that computes it natively, else
    ``float32``; ``float32`` and ``bfloat16`` as asked (``bfloat16`` without native support is emulated, several
    times slower: a warning says so). ``auto`` stays at float32 on every CPU: native bfloat16 measured no faster
    than float32 at this model's size (0.93x on an AMX Xeon, reports/benchmark.md; 0.96x on an AVX512-BF16 EPYC)."""
    if requested not in CHOICES["precision"]:
        raise DataError(f"unknown precision {requested!r}; choose one of {list(CHOICES['precision'])}")
    if requested == "auto":
        return "bfloat16" if torch.cuda.is_available() and native_bfloat16() else "float32"
    if requested == "bfloat16" and not native_bfloat16():
        warnings.warn("this machine has no native bfloat16 (no CUDA bf16, no AVX512-BF16 / AMX): emulated, slow")
    return requested


def native_bfloat16() -> bool:
    """Whether bfloat16 matrix products run natively here: a CUDA GPU that supports them, or a CPU with
    AVX512-BF16 or AMX-BF16 that PyTorch is allowed to use (``ATEN_CPU_CAPABILITY=avx2`` limits it to AVX2, as
    on the AVX2-only machines the quick preset is timed for); elsewhere PyTorch emulates bfloat16 on the CPU,
    several times slower."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    allowed = torch.backends.cpu.get_cpu_capability().upper().startswith(("AVX512", "AMX"))
    return allowed and bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def free_memory(device: torch.device) -> int:
    """Bytes a run on ``device`` can still take: a GPU's free memory, or on the CPU the kernel's estimate of
    what can be allocated without swapping (``MemAvailable``), capped by the container's memory limit (cgroup
    v2 ``memory.max`` less ``memory.current``) where one is set."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        available = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return available
