"""Speed and memory benchmark: prints a table and writes ``reports/benchmark.{md,json}``.

    python -m studies.bench                      # ~3 min on 2 CPU cores
    pip install -e .[bench]                     # adds the Hugging Face peer (transformers; no weights downloaded)

Measures, on ``toy-stuff`` at 96x96 and batch 16, with the recipe's defaults:
- the machine's matrix-multiply peak (2048x2048) in float32 and, where native, bfloat16;
- the training loader's samples/s (augmentation + clicks + base keypoints + collation, one process);
- training images/s of full steps of ``full_supervision`` and ``ours`` (loader, forward, targets, costs,
  matching, losses, bank, backward, AdamW) and, when ``transformers`` is installed, of Hugging Face's
  ``MaskFormerForInstanceSegmentation`` built at the same size (ResNet basic blocks of the same widths,
  same queries, decoder layers, heads and widths; its own Hungarian matcher and losses), measured in
  the same process in interleaved rounds (median of the rounds), and the ratio pwslib / peer;
- the achieved GFLOP/s of a training step (FLOPs counted by ``torch.utils.flop_counter``) against the
  measured matmul peak in the precision the run uses;
- where a training step goes: milliseconds per step in the loader, the forward pass of each part (backbone,
  pixel decoder, transformer decoder, heads), the criterion (targets, costs + matching, losses), the backward
  pass and the optimiser;
- inference images/s, batched (64) and single images, for pwslib and the peer in interleaved rounds, whole
  (network and MaskFormer's semantic combination, the same function for both) and of the network alone;
- the process's peak resident memory;
- what ``precision="auto"`` is choosing between: training images/s of ``ours`` in float32 and in bfloat16 autocast,
  interleaved, with this process's kernels (bfloat16 emulated where they are limited to AVX2) and, on a CPU with
  AVX512-BF16 or AMX, in a second process with its native kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from pwslib.config import TrainConfig, config_for
from pwslib.data import collate
from pwslib.distributed import batch_indices, cpu_flags, native_bfloat16
from pwslib.io import one_line_errors, provenance, report_header, write_json_atomic, write_text_atomic
from pwslib.model.maskformer import predict, semantic_scores
from pwslib.train import Trainer


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 8) -> float:
    """GFLOP/s of a ``size``² matrix product in ``dtype`` on this process's threads."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def loader_throughput(trainer: Trainer, batches: int) -> float:
    config, dataset = trainer.config, trainer.train_set
    start = time.perf_counter()
    for step in range(batches):
        epoch, indices = batch_indices(step, len(dataset), config.batch_size, config.seed)
        dataset.set_epoch(epoch)
        collate([dataset[i] for i in indices])
    return batches * config.batch_size / (time.perf_counter() - start)


def pwslib_steps(trainer: Trainer, steps: int) -> float:
    """Seconds for ``steps`` full training steps of ``trainer``."""
    start = time.perf_counter()
    for _ in range(steps):
        trainer.training_step()
        trainer.step += 1
    return time.perf_counter() - start


MODEL_PARTS = ("backbone", "pixel_decoder", "transformer_decoder")  # timed by forward hooks; the rest is "heads"


@contextlib.contextmanager
def timed_calls(owner, name: str) -> Iterator[list[float]]:
    """Within the block, ``owner.<name>`` (a method or a callable attribute) adds its wall time to the yielded
    one-element list; restored afterwards."""
    original, total = getattr(owner, name), [0.0]

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield total
    finally:
        if name in vars(owner) and isinstance(getattr(type(owner), name, None), types.FunctionType):
            delattr(owner, name)  # a method: the class's again
        else:
            setattr(owner, name, original)


def step_profile(trainer: Trainer, steps: int) -> dict[str, float]:
    """Milliseconds per training step in each part: the loader, the forward pass of the backbone, pixel decoder,
    transformer decoder and heads (forward hooks), the criterion's targets, costs + matching and losses (its
    ``targets_of`` and ``matcher`` wrapped by ``timed_calls``), the backward pass (all parts together) and the
    optimiser (clipping + AdamW)."""
    model, forward_seconds, starts = trainer.model, dict.fromkeys(MODEL_PARTS, 0.0), {}
    hooks = []
    for name in MODEL_PARTS:
        module = getattr(model, name)
        hooks.append(module.register_forward_pre_hook(lambda m, a, n=name: starts.__setitem__(n, time.perf_counter())))
        hooks.append(
            module.register_forward_hook(
                lambda m, a, o, n=name: forward_seconds.__setitem__(n, forward_seconds[n] + time.perf_counter() - starts[n])
            )
        )
    phases = dict(trainer.phase_seconds)
    try:
        with timed_calls(trainer.criterion, "targets_of") as targets, timed_calls(trainer.criterion, "matcher") as matching:
            pwslib_steps(trainer, steps)
    finally:
        for hook in hooks:
            hook.remove()
    phase = {k: v - phases[k] for k, v in trainer.phase_seconds.items()}
    seconds = {
        "loader (augmentation, clicks, collation)": phase["loader"],
        **{f"forward: {name.replace('_', ' ')}": value for name, value in forward_seconds.items()},
        "forward: heads (class, mask, keypoint, pixel classifier)": phase["forward"] - sum(forward_seconds.values()),
        "criterion: targets": targets[0],
        "criterion: costs + Hungarian matching": matching[0],
        "criterion: losses": phase["criterion"] - targets[0] - matching[0],
        "backward (all parts)": phase["backward"],
        "optimiser (clipping + AdamW)": phase["optimiser"],
    }
    return {name: value / steps * 1000 for name, value in seconds.items()}


def training_step_flops(trainer: Trainer) -> int:
    """Floating-point operations of one training step (forward + backward), counted by PyTorch."""
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.training_step()
    return counter.get_total_flops()


def sample_batch(trainer: Trainer, batch_size: int) -> torch.Tensor:
    """The first ``batch_size`` images of the test set (repeated when it is smaller), uint8 (B, 3, H, W)."""
    dataset = trainer.test_set
    return collate([dataset[i % len(dataset)] for i in range(batch_size)])["image"]


def timed_batches(infer, batch: torch.Tensor):
    """callable(batches) -> seconds of ``batches`` calls of ``infer(batch)`` without gradients."""

    def run(batches: int) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(batches):
                infer(batch)
        return time.perf_counter() - start

    return run


def pwslib_inference(trainer: Trainer, batch: torch.Tensor, network_only: bool = False):
    """Timer (``timed_batches``) of pwslib's prediction of ``batch`` (label maps), or of its network alone.
    The model must be in eval mode while it runs."""
    model = trainer.model
    return timed_batches(model if network_only else (lambda images: predict(model, images)), batch)


class HuggingFacePeer:
    """``transformers``' MaskFormer at the size of a pwslib config, trained on the same batches."""

    def __init__(self, trainer: Trainer):
        from transformers import DetrConfig, MaskFormerConfig, MaskFormerForInstanceSegmentation, ResNetConfig

        config = trainer.config
        backbone = ResNetConfig(
            embedding_size=config.backbone_widths[0] // 2,
            hidden_sizes=list(config.backbone_widths),
            depths=[1] * len(config.backbone_widths),
            layer_type="basic",
            out_features=[f"stage{i + 1}" for i in range(len(config.backbone_widths))],
        )
        decoder = DetrConfig(
            d_model=config.embedding_dim,
            encoder_layers=0,
            decoder_layers=config.decoder_layers,
            decoder_attention_heads=config.attention_heads,
            decoder_ffn_dim=config.feed_forward_dim,
            num_queries=config.num_queries,
        )
        peer_config = MaskFormerConfig(
            backbone_config=backbone,
            decoder_config=decoder,
            num_labels=trainer.split.num_classes,
            mask_feature_size=config.embedding_dim,
            fpn_feature_size=config.embedding_dim,
            num_queries=config.num_queries,
            use_pretrained_backbone=False,
        )
        self.trainer = trainer
        self.model = MaskFormerForInstanceSegmentation(peer_config)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, fused=True)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.step = 0

    def _batch(self) -> tuple[torch.Tensor, list, list]:
        config, dataset = self.trainer.config, self.trainer.train_set
        epoch, indices = batch_indices(self.step, len(dataset), config.batch_size, config.seed)
        dataset.set_epoch(epoch)
        batch = collate([dataset[i] for i in indices])
        pixels = self.trainer.model.normalise(batch["image"])
        masks, classes = [], []
        for label in batch["full_label"]:
            present = [c for c in label.unique().tolist() if c != 255]
            classes.append(torch.tensor(present))
            masks.append(torch.stack([(label == c).float() for c in present]))
        return pixels, masks, classes

    def steps(self, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            pixels, masks, classes = self._batch()
            loss = self.model(pixel_values=pixels, mask_labels=masks, class_labels=classes).loss
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimiser.step()
            self.step += 1
        return time.perf_counter() - start

    def inference(self, batch: torch.Tensor, network_only: bool = False):
        """Timer (``timed_batches``) of the peer's prediction of ``batch`` with pwslib's semantic combination, or of
        its network alone. The model must be in eval mode while it runs."""

        def network(images: torch.Tensor):
            return self.model(pixel_values=self.trainer.model.normalise(images))

        def predict_peer(images: torch.Tensor) -> torch.Tensor:
            outputs = network(images)
            size = tuple(images.shape[-2:])
            return semantic_scores(outputs.class_queries_logits, outputs.masks_queries_logits, size).argmax(-1)

        return timed_batches(network if network_only else predict_peer, batch)


def interleaved(contenders: dict, rounds: int, steps: int, batch_size: int) -> dict[str, float]:
    """Median images/s of each contender (name -> callable(steps) -> seconds, a step being ``batch_size``
    images) over interleaved rounds, after one warm-up call each."""
    for run in contenders.values():
        run(2)  # warm-up
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            speeds[name].append(steps * batch_size / run(steps))
    return {name: statistics.median(values) for name, values in speeds.items()}


def inference_speeds(trainer: Trainer, peer: "HuggingFacePeer | None", rounds: int) -> tuple[dict, dict]:
    """Images/s of whole predictions (batch 64 and single images) and of the networks alone (batch 64), pwslib
    and the peer in interleaved rounds."""
    batch, single = sample_batch(trainer, 64), sample_batch(trainer, 1)
    whole = {"pwslib batch 64": pwslib_inference(trainer, batch)}
    network = {"pwslib batch 64": pwslib_inference(trainer, batch, network_only=True)}
    if peer is not None:
        whole["transformers MaskFormer batch 64"] = peer.inference(batch)
        network["transformers MaskFormer batch 64"] = peer.inference(batch, network_only=True)
    models = [trainer.model] + ([peer.model] if peer is not None else [])
    for model in models:
        model.eval()
    try:
        speeds = interleaved(whole, rounds, 4, 64)
        speeds["pwslib single"] = interleaved({"single": pwslib_inference(trainer, single)}, rounds, 40, 1)["single"]
        return speeds, interleaved(network, rounds, 4, 64)
    finally:
        for model in models:
            model.train()


KERNEL_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")  # the AVX2 limit of the reports


def precision_speeds(config: TrainConfig, rounds: int, steps: int) -> dict:
    """Training images/s of ``config`` in float32 and in bfloat16 autocast (forced), interleaved rounds in this
    process, with the kernels it may use and whether they compute bfloat16 natively."""
    trainers = {
        precision: Trainer(
            dataclasses.replace(config, precision=precision),
            Path("/tmp/pwslib-bench") / f"ours-{precision}",
            progress=False,
        )
        for precision in ("float32", "bfloat16")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bfloat16 forced where it is emulated: measured, not warned about
        speeds = interleaved(
            {p: (lambda n, t=t: pwslib_steps(t, n)) for p, t in trainers.items()},
            rounds,
            steps,
            trainers["float32"].config.batch_size,
        )
    return {
        **speeds,
        "bfloat16_over_float32": speeds["bfloat16"] / speeds["float32"],
        "native": native_bfloat16(),
        "kernels": torch.backends.cpu.get_cpu_capability(),
    }


def native_precision_speeds(threads: int, rounds: int, steps: int) -> dict | None:
    """``precision_speeds`` in a second process without the AVX2 limit, on a CPU with AVX512-BF16 or AMX whose
    kernels this process may not use (None elsewhere: this process already measured what the CPU can do)."""
    if native_bfloat16() or not {"avx512_bf16", "amx_bf16"} & cpu_flags():
        return None
    environment = {k: v for k, v in os.environ.items() if k not in KERNEL_LIMITS}
    command = [sys.executable, "-m", "studies.bench", "--precision-only", "--threads", str(threads)]
    command += ["--rounds", str(rounds), "--steps", str(steps)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the training comparison")
    parser.add_argument("--steps", type=int, default=12, help="training steps per contender per round")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument(
        "--precision-only", action="store_true", help="print float32 against bfloat16 training speed as JSON, nothing else"
    )
    args = parser.parse_args(argv)
    if args.precision_only:
        torch.set_num_threads(args.threads)
        print(json.dumps(precision_speeds(config_for("ours", iterations=100_000), args.rounds, args.steps)))
        return
    with one_line_errors("the benchmark"):
        benchmark(args)


def benchmark(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    trainers = {
        method: Trainer(config_for(method, iterations=100_000), Path("/tmp/pwslib-bench") / method, progress=False)
        for method in ("full_supervision", "ours")
    }
    ours = trainers["ours"]
    precision = ours.model.config.precision  # what this machine computes in
    results: dict = {"precision": precision, "parameters": sum(p.numel() for p in ours.model.parameters())}
    results["matmul_gflops_float32"] = matmul_peak(torch.float32)
    if native_bfloat16():
        results["matmul_gflops_bfloat16"] = matmul_peak(torch.bfloat16)
    peak = results[f"matmul_gflops_{precision}"]
    results["loader_samples_per_second"] = loader_throughput(ours, 40)
    contenders = {f"pwslib {m}": (lambda n, t=t: pwslib_steps(t, n)) for m, t in trainers.items()}
    peer = None
    try:
        peer = HuggingFacePeer(ours)
        contenders["transformers MaskFormer"] = peer.steps
        results["peer_parameters"] = peer.parameters
    except ImportError:
        print("transformers is not installed: no peer comparison (pip install -e .[bench])")
    batch = ours.config.batch_size
    results["training_images_per_second"] = interleaved(contenders, args.rounds, args.steps, batch)
    results["step_profile_ms"] = {m: step_profile(t, args.rounds * args.steps) for m, t in trainers.items()}
    flops = {m: training_step_flops(t) for m, t in trainers.items()}
    results["train_step_gflop"] = {m: f / 1e9 for m, f in flops.items()}
    results["achieved_gflops"] = {
        m: flops[m] / 1e9 * results["training_images_per_second"][f"pwslib {m}"] / batch for m in trainers
    }
    results["inference_images_per_second"], results["network_images_per_second"] = inference_speeds(ours, peer, args.rounds)
    results["precision_speeds"] = {"this process": precision_speeds(ours.config, args.rounds, args.steps)}
    native = native_precision_speeds(args.threads, args.rounds, args.steps)
    if native is not None:
        results["precision_speeds"]["native kernels, second process"] = native
    results["peak_memory_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = provenance(config=ours.config.to_dict(), threads=args.threads, rounds=args.rounds, steps=args.steps)
    print(write_report(results, meta, args.out, peak))


def precision_table(measured: dict) -> str:
    """The float32 / bfloat16 comparison of ``ours`` as a Markdown table, one row per set of kernels measured."""
    rows = "\n".join(
        f"| {where} ({m['kernels']} kernels, bfloat16 {'native' if m['native'] else 'emulated'}) | {m['float32']:.0f} | "
        f"{m['bfloat16']:.0f} | {m['bfloat16_over_float32']:.2f}× |"
        for where, m in measured.items()
    )
    return (
        "Training images/s of `ours`, float32 against bfloat16 autocast, interleaved rounds as above. `auto` runs "
        "bfloat16 only on a CUDA GPU that computes it natively, float32 on every CPU.\n\n"
        "| measured in | float32 images/s | bfloat16 images/s | bfloat16 / float32 |\n|---|---|---|---|\n" + rows
    )


def write_report(results: dict, meta: dict, out: Path, peak: float) -> str:
    train, infer = results["training_images_per_second"], results["inference_images_per_second"]
    peer_train = train.get("transformers MaskFormer")
    peer_infer = infer.get("transformers MaskFormer batch 64")
    rows = [("matrix multiply 2048², float32", f"{results['matmul_gflops_float32']:.0f} GFLOP/s")]
    if "matmul_gflops_bfloat16" in results:
        rows.append(("matrix multiply 2048², bfloat16", f"{results['matmul_gflops_bfloat16']:.0f} GFLOP/s"))
    rows.append(("training loader", f"{results['loader_samples_per_second']:.0f} samples/s"))
    for name, speed in train.items():
        ratio = f" ({speed / peer_train:.2f}× the peer)" if peer_train and name != "transformers MaskFormer" else ""
        rows.append((f"training, {name}", f"{speed:.0f} images/s{ratio}"))
    for method, achieved in results["achieved_gflops"].items():
        rows.append(
            (
                f"achieved, pwslib {method} ({results['train_step_gflop'][method]:.2f} GFLOP per step)",
                f"{achieved:.0f} GFLOP/s = {achieved / peak * 100:.0f} % of the {results['precision']} matmul peak",
            )
        )
    for name, speed in infer.items():
        ratio = f" ({speed / peer_infer:.2f}× the peer)" if peer_infer and name == "pwslib batch 64" else ""
        rows.append((f"inference, {name}", f"{speed:.0f} images/s{ratio}"))
    network = results["network_images_per_second"]
    peer_network = network.get("transformers MaskFormer batch 64")
    for name, speed in network.items():
        ratio = f" ({speed / peer_network:.2f}× the peer)" if peer_network and name == "pwslib batch 64" else ""
        rows.append((f"inference, network alone, {name}", f"{speed:.0f} images/s{ratio}"))
    rows.append(("peak resident memory (whole process)", f"{results['peak_memory_mib']:.0f} MiB"))
    table = "| measurement | result |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    profile = results["step_profile_ms"]
    methods = list(profile)
    parts = list(profile[methods[0]])
    totals = {m: sum(profile[m].values()) for m in methods}
    profile_table = (
        "| part of a training step | " + " | ".join(f"{m} ms (share)" for m in methods) + " |\n"
        + "|---" * (len(methods) + 1) + "|\n"
        + "\n".join(
            f"| {part} | " + " | ".join(f"{profile[m][part]:.1f} ({profile[m][part] / totals[m] * 100:.0f} %)" for m in methods) + " |"
            for part in parts
        )
        + "\n| total | " + " | ".join(f"{totals[m]:.1f}" for m in methods) + " |"
    )
    peer = (
        f" The peer is Hugging Face `transformers` {__import__('transformers').__version__} "
        f"`MaskFormerForInstanceSegmentation` at the same size ({results['peer_parameters'] / 1e6:.2f} M parameters "
        f"against pwslib's {results['parameters'] / 1e6:.2f} M), random weights, its own matcher and losses."
        if peer_train
        else " No peer: `transformers` is not installed."
    )
    markdown = (
        report_header("Speed and memory benchmark", "`python -m studies.bench`")
        + f"Commit `{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC, {meta['threads']} threads, "
        f"precision {results['precision']}; training speeds are medians of {meta['rounds']} interleaved rounds "
        f"of {meta['steps']} steps at batch {meta['config']['batch_size']}, 96×96, inference speeds medians of "
        f"{meta['rounds']} interleaved rounds; a prediction is the network and MaskFormer's semantic combination "
        "(masks upsampled to the image, class-weighted sum, argmax: the same function for pwslib and the peer), "
        f"'network alone' the forward pass only.{peer}\n\n{table}\n\n"
        "## Where a training step goes\n\n"
        "Wall time per step of each part, over the same number of steps as the interleaved rounds (forward "
        "hooks time the backbone, pixel decoder and transformer decoder; the heads are the rest of the forward "
        "pass; the backward pass is timed as a whole).\n\n"
        f"{profile_table}\n\n"
        "## Precision: what `auto` chooses between\n\n"
        f"{precision_table(results['precision_speeds'])}\n"
    )
    write_json_atomic(out / "benchmark.json", {"meta": meta, "results": results})
    write_text_atomic(out / "benchmark.md", markdown)
    return markdown


if __name__ == "__main__":
    main()
