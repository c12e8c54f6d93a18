"""The memory check a run makes before its first step, measured: its estimate against real steps.

    python -m studies.step_memory          # ~2 min on 2 CPU cores: reports/step_memory.{md,json}

A run refuses to start when its training step would need more memory than the device has free
(``Trainer.check_memory``): the estimate is the weights, their gradients, AdamW's two moments and the weight
average, plus twice the activations autograd keeps of one training image's forward pass and losses (kept, then
their gradients beside them in the backward pass), times the batch. This study
trains two steps of ``ours`` and ``full_supervision`` at several batch sizes and image sizes, each in a process of
its own, and compares the estimate with what the steps took: the peak resident memory after them less the resident
memory before the first (read from ``/proc/self/statm``, so Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from pwslib.config import config_for
from pwslib.io import one_line_errors, provenance, report_header, write_json_atomic, write_text_atomic
from pwslib.train import Trainer

CASES = (  # (method, batch size, image size)
    *(("ours", batch, 96) for batch in (16, 64, 128)),
    *(("full_supervision", batch, 96) for batch in (16, 64, 128)),
    ("ours", 16, 192),
    ("ours", 32, 192),
)
STEPS = 2
REPEATS = 3  # processes per case: resident memory varies from one process to the next
MIB = 2**20


def resident_bytes() -> int:
    """The process's resident memory now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(method: str, batch_size: int, size: int, threads: int) -> dict:
    """Estimate and measure one case in this process (which must be fresh: the peak is the process's)."""
    torch.set_num_threads(threads)
    toy = {"num_train": max(batch_size, 16), "num_test": 8, "num_validation": 8, "size": size}
    config = config_for(method, iterations=1000, batch_size=batch_size, toy_options=toy)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, Path(out) / "run", progress=False)
        need = trainer.step_memory()
        before = resident_bytes()
        for _ in range(STEPS):
            trainer.training_step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "method": method, "batch_size": batch_size, "image_size": size, "estimate_mib": need.total / MIB,
        "fixed_mib": need.fixed / MIB, "per_image_mib": need.per_image / MIB, "measured_mib": (peak - before) / MIB,
    }


def render_markdown(rows: list[dict], meta: dict) -> str:
    ratios = [row["estimate_mib"] / max(row["measured_mib"]) for row in rows]  # against the largest measured
    table = "\n".join(
        f"| `{row['method']}` | {row['batch_size']} | {row['image_size']}×{row['image_size']} | "
        f"{row['per_image_mib']:.1f} | {row['estimate_mib']:.0f} | "
        f"{min(row['measured_mib']):.0f}–{max(row['measured_mib']):.0f} | {ratio:.2f} |"
        for row, ratio in zip(rows, ratios)
    )
    return (
        report_header("The memory check before a run's first step", "`python -m studies.step_memory`")
        + f"Commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC, {meta['threads']} threads, "
        f"float32, toy-stuff with the default recipe; each case in {REPEATS} fresh processes, {STEPS} training "
        "steps each.\n\n"
        "A run stops before its first step, with the batch size that fits, when its estimate exceeds the memory "
        "the device has free (on the CPU: the kernel's `MemAvailable`, within the container's limit). The "
        "estimate is the weights, gradients, AdamW's two moments and the weight average, plus twice the activations "
        "autograd keeps of one training image's forward pass and losses (kept, then their gradients beside them in "
        "the backward pass; measured on copies of the model and criterion) times the batch. Measured: the peak resident memory after the steps less the resident memory before the first, "
        f"lowest–highest of the {REPEATS} processes; the ratio is against the highest.\n\n"
        "| method | batch | image | per image (MiB) | estimate (MiB) | measured (MiB) | estimate / highest measured |\n"
        "|---|---|---|---|---|---|---|\n" + table + "\n\n"
        f"The estimate is {min(ratios):.2f}–{max(ratios):.2f}× the most the steps took. "
        + (
            "In every process measured it erred towards refusing a step a little larger than fits, not towards "
            "starting one that the kernel then kills; resident memory varies from process to process, so a step "
            "within a few per cent of the free memory may still be killed.\n"
            if min(ratios) >= 1
            else f"It can fall {(1 - min(ratios)) * 100:.0f} % short, so a step whose estimate comes that close to "
            "the free memory may still be killed by the kernel; one whose estimate exceeds it is refused before any "
            "work.\n"
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--measure", nargs=3, metavar=("METHOD", "BATCH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        method, batch, size = args.measure
        print(json.dumps(measure(method, int(batch), int(size), args.threads)))
        return
    with one_line_errors("the memory study"), tempfile.TemporaryDirectory() as data_root:
        rows, environment = [], {**os.environ, "PWSLIB_DATA": data_root}  # small toy sets, made for the study
        for method, batch, size in CASES:
            command = [sys.executable, "-m", "studies.step_memory", "--threads", str(args.threads), "--measure",
                       method, str(batch), str(size)]
            measured = []
            for _ in range(REPEATS):
                done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
                measured.append(json.loads(done.stdout.strip().splitlines()[-1]))
            rows.append({**measured[0], "measured_mib": [one["measured_mib"] for one in measured]})
            print(f"{method} batch {batch} at {size} px: estimate {rows[-1]['estimate_mib']:.0f} MiB, "
                  f"measured {min(rows[-1]['measured_mib']):.0f}-{max(rows[-1]['measured_mib']):.0f} MiB", flush=True)
        meta = provenance(threads=args.threads, repeats=REPEATS, cases=[list(case) for case in CASES])
        write_json_atomic(args.out / "step_memory.json", {"rows": rows, **meta})
        write_text_atomic(args.out / "step_memory.md", render_markdown(rows, meta))


if __name__ == "__main__":
    main()
