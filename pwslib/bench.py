"""Speed and memory benchmark: prints a table and writes ``reports/benchmark.{md,json}``.

    python -m pwslib.bench                      # ~2 min on 2 CPU cores

Measures, for ``ours`` on ``toy-stuff`` at 96x96 and batch 16:
- the training loader's samples/s (augmentation + clicks + base keypoints + collation, one process);
- training images/s of full steps (loader, forward, targets, costs, matching, losses, bank, backward,
  AdamW), and where a step's time goes (costs + matching measured separately);
- inference images/s, batched (64) and single images;
- the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from pathlib import Path

import torch

import pwslib.losses as losses_module
from pwslib.config import config_for
from pwslib.data import collate
from pwslib.distributed import batch_indices
from pwslib.io import provenance, write_json_atomic, write_text_atomic
from pwslib.model.maskformer import predict
from pwslib.train import Trainer


def _timed(function, bucket: dict, name: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        bucket[name] += time.perf_counter() - start
        return result

    return wrapper


def loader_throughput(trainer: Trainer, batches: int) -> float:
    config, dataset = trainer.config, trainer.train_set
    start = time.perf_counter()
    for step in range(batches):
        epoch, indices = batch_indices(step, len(dataset), config.batch_size, config.seed)
        dataset.set_epoch(epoch)
        collate([dataset[i] for i in indices])
    return batches * config.batch_size / (time.perf_counter() - start)


def training_throughput(trainer: Trainer, warmup: int, steps: int) -> dict:
    timings: dict[str, float] = defaultdict(float)
    originals = {name: getattr(losses_module, name) for name in ("matching_cost", "hungarian_match", "build_targets")}
    for name, function in originals.items():
        setattr(losses_module, name, _timed(function, timings, name))
    try:
        for _ in range(warmup):
            trainer.training_step()
            trainer.step += 1
        timings.clear()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.training_step()
            trainer.step += 1
        seconds = time.perf_counter() - start
    finally:
        for name, function in originals.items():
            setattr(losses_module, name, function)
    matching = timings["matching_cost"] + timings["hungarian_match"]
    return {
        "train_images_per_second": steps * trainer.config.batch_size / seconds,
        "step_ms": seconds / steps * 1000,
        "cost_and_matching_share": matching / seconds,
        "targets_share": timings["build_targets"] / seconds,
    }


@torch.no_grad()
def inference_throughput(trainer: Trainer, batch_size: int, images: int) -> float:
    model, dataset = trainer.model.eval(), trainer.test_set
    batch = collate([dataset[i % len(dataset)] for i in range(batch_size)])["image"]
    predict(model, batch)
    start = time.perf_counter()
    done = 0
    while done < images:
        predict(model, batch)
        done += batch_size
    model.train()
    return done / (time.perf_counter() - start)


def profile_step(trainer: Trainer, steps: int = 5) -> str:
    """torch.profiler's top operators of a few training steps (self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            trainer.training_step()
            trainer.step += 1
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--method", default="ours")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top operators")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = config_for(args.method, iterations=10_000)
    trainer = Trainer(config, Path("/tmp/pwslib-bench"), progress=False)
    results = {"loader_samples_per_second": loader_throughput(trainer, 40)}
    results.update(training_throughput(trainer, warmup=5, steps=args.steps))
    results["inference_images_per_second_batched"] = inference_throughput(trainer, 64, 1024)
    results["inference_images_per_second_single"] = inference_throughput(trainer, 1, 200)
    results["peak_memory_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = provenance(config=config.to_dict(), threads=args.threads, steps=args.steps)
    rows = [
        ("training loader", f"{results['loader_samples_per_second']:.0f} samples/s"),
        (
            f"training step ({args.method}, batch {config.batch_size}, 96x96)",
            f"{results['train_images_per_second']:.0f} images/s ({results['step_ms']:.0f} ms/step)",
        ),
        ("costs + Hungarian matching", f"{results['cost_and_matching_share'] * 100:.1f} % of a step"),
        ("target construction", f"{results['targets_share'] * 100:.1f} % of a step"),
        ("inference, batch 64", f"{results['inference_images_per_second_batched']:.0f} images/s"),
        ("inference, single image", f"{results['inference_images_per_second_single']:.0f} images/s"),
        ("peak resident memory (whole process)", f"{results['peak_memory_mib']:.0f} MiB"),
    ]
    table = "| measurement | result |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)
    markdown = (
        f"# Speed and memory benchmark\n\nGenerated by `python -m pwslib.bench` (do not edit by hand). "
        f"Commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC, {args.steps} timed steps "
        f"after 5 warm-up steps, {args.threads} threads.\n\n{table}\n"
    )
    if args.profile:
        top = profile_step(trainer)
        print(top)
        markdown += f"\n## Profile of 5 training steps (torch.profiler, self CPU time)\n\n```\n{top}\n```\n"
    write_json_atomic(args.out / "benchmark.json", {"meta": meta, "results": results})
    write_text_atomic(args.out / "benchmark.md", markdown)


if __name__ == "__main__":
    main()
