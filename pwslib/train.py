"""Train one run of any method, resumable, on one CPU or under ``torchrun`` with DDP.

    python -m pwslib.train --dataset toy-stuff --method ours --seed 0 --out runs/ours_s0
    python -m pwslib.train --out runs/ours_s0 --resume                    # continue an interrupted run
    torchrun --standalone --nproc_per_node=2 -m pwslib.train --method ours --out runs/ddp  # 2 ranks, same global batch

A run folder holds ``config.json``, ``checkpoint.pt`` (atomic, every ``--checkpoint-every`` seconds and
at the end), ``log.csv`` (one row per step: every loss term, learning rate, images/s) and, when done,
``metrics.json`` (base / novel / total mIoU, hIoU, per-class IoU, config, commit, machine, wall time).
AdamW with poly (or cosine) learning-rate decay, optionally scored through an EMA of the weights; the schedule is in iterations, so a run's result does not depend
on the machine's speed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from pwslib.assembly import build_bank, build_model, datasets
from pwslib.command_line import output_folder, parse_overrides, positive_seconds, positive_whole
from pwslib.config import METHODS, TrainConfig, config_for
from pwslib.data import DATASETS, collate, training_cooccurrence
from pwslib.distributed import Distributed, all_reduce_mean, batch_indices, free_memory, setup_distributed
from pwslib.metrics import check_finite_parameters, evaluate_model, format_scores
from pwslib.io import DataError, array_sha256, byte_size, default_data_root, provenance, save_array_atomic, save_checkpoint, write_json_atomic
from pwslib.method.losses import WeakShotCriterion, weighted_terms
from pwslib.model.maskformer import PointWeakShotMaskFormer
from pwslib.method.pseudo_labels import pseudo_labels
from pwslib.schedule import learning_rate_at
from pwslib.runs import (
    CHECKPOINT,
    log_fields,
    check_run_folder,
    load_checkpoint,
    read_run_config,
    run_lock,
    truncate_log,
)


PSEUDO_LABELS = "pseudo_labels.npy"  # keypoint_pseudo's second-stage labels, in the run folder
STEP_PHASES = ("loader", "forward", "criterion", "backward", "optimiser")  # the phases of Trainer.training_step


def learning_rate(config: TrainConfig, step: int) -> float:
    """The config's schedule at ``step``: warm-up over ``warmup_iterations``, then its decay over ``iterations``."""
    return learning_rate_at(
        config.learning_rate,
        step / config.iterations,
        step,
        config.warmup_iterations,
        config.learning_rate_decay,
        config.poly_power,
    )


def parameter_groups(model: PointWeakShotMaskFormer, config: TrainConfig) -> list[dict]:
    """The optimiser's groups: the backbone at ``backbone_learning_rate_factor`` x the learning rate, the rest at
    1x (``factor`` is read by the schedule at every step)."""
    backbone = list(model.backbone.parameters())
    chosen = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    return [
        {"params": backbone, "factor": config.backbone_learning_rate_factor},
        {"params": rest, "factor": 1.0},
    ]


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """What a training step holds at its peak, estimated before the first one: ``fixed`` bytes (the weights,
    their gradients, AdamW's two moments and the weight average) and ``per_image`` bytes for each of the
    ``images`` images on this rank: the activations autograd keeps of one image's forward pass and losses, twice
    (kept, then their gradients beside them in the backward pass). ``reports/step_memory.md`` measures it against
    the peak resident memory of real steps."""

    fixed: int
    per_image: int
    images: int

    @property
    def total(self) -> int:
        return self.fixed + self.per_image * self.images


def saved_for_backward(compute: Callable[[], object], parameters: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for the backward pass while ``compute()`` runs, other than
    those of ``parameters`` (the weights a layer keeps are counted once, not per image)."""
    weights = {parameter.untyped_storage().data_ptr() for parameter in parameters}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        compute()
    return sum(storages.values())


class Trainer:
    def __init__(self, config: TrainConfig, out: Path, distributed: Distributed | None = None, progress: bool = True):
        self.config, self.out, self.progress = config, Path(out), progress
        self.distributed = distributed or Distributed()
        torch.manual_seed(config.seed)
        self.train_set, self.test_set = datasets(config)
        if config.batch_size > len(self.train_set):  # checked before any memory is taken for a batch
            raise DataError(
                f"--batch-size {config.batch_size} is larger than the {len(self.train_set)} training images of "
                f"{config.dataset}: choose at most {len(self.train_set)}"
            )
        split = self.split = self.train_set.split
        self.model = build_model(config, split.num_classes).to(self.distributed.device)
        self.bank = build_bank(config, split.num_classes)
        if self.bank is not None:
            self.bank.to(self.distributed.device)
        cooccurrence = torch.from_numpy(training_cooccurrence(self.train_set)).float()
        self.criterion = WeakShotCriterion(
            config, split.num_classes, list(split.novel_classes), cooccurrence, self.bank
        )
        self.optimiser = torch.optim.AdamW(  # fused: one kernel for all parameters (8 % of a CPU step as a loop)
            parameter_groups(self.model, config), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
        self.network = DistributedDataParallel(self.model) if self.distributed.world_size > 1 else self.model
        self.weight_average = (  # an EMA of the weights, updated after every step; the scored model when on
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.weight_average_decay), use_buffers=True)
            if config.weight_average_decay
            else None
        )
        self.check_memory()
        self.step = 0
        self.pseudo_labels_sha256: str | None = None  # keypoint_pseudo's second-stage labels, once made or read
        self.phase_seconds = dict.fromkeys(STEP_PHASES, 0.0)  # wall time of each phase of training_step so far
        self.seconds_before, self.started = 0.0, time.perf_counter()  # wall time of earlier segments, this one's start
        self.stage_switch = (
            int(config.iterations * config.pseudo_label_share) if config.method == "keypoint_pseudo" else None
        )

    def step_memory(self) -> StepMemory:
        """The memory a training step will take (``StepMemory``), from one training image's forward pass and
        losses on copies of the model and criterion, so the run's weights, statistics and random streams are
        untouched."""
        config, device = self.config, self.distributed.device
        model, criterion = copy.deepcopy(self.model), copy.deepcopy(self.criterion)
        one = {k: v.to(device) for k, v in collate([self.train_set[0]]).items()}  # a batch of one image

        def forward_and_losses() -> None:
            criterion(model(one["image"], criterion.keypoints_for(one)), one, config.novel_supervision)

        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            per_image = 2 * saved_for_backward(forward_and_losses, model.parameters())
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        copies = 4 + (self.weight_average is not None)  # weights, gradients, two AdamW moments, the average
        return StepMemory(weights * copies, per_image, -(-config.batch_size // self.distributed.world_size))

    def check_memory(self) -> None:
        """Stop before the first step when the step would need more memory than the device has free."""
        need, free = self.step_memory(), free_memory(self.distributed.device)
        if need.total > free:
            fits = max(0, (free - need.fixed) // need.per_image) * self.distributed.world_size
            raise DataError(
                f"--batch-size {self.config.batch_size} needs about {byte_size(need.total)} for a training step "
                f"({byte_size(need.per_image)} per image for its activations and their gradients, estimated before "
                f"starting), more than the {byte_size(free)} free on {self.distributed.device}: choose --batch-size "
                f"{fits} or less" + (" (or a smaller crop_size)" if fits == 0 else "")
            )

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "step": self.step,
            "bank": self.bank.state_dict() if self.bank is not None else {},
            "weight_average": self.weight_average.state_dict() if self.weight_average is not None else {},
            "torch_rng": torch.get_rng_state(),
            "wall_seconds": self.wall_seconds(),
            "precision_ran": self.model.config.precision,
            "threads": torch.get_num_threads(),  # the sums of a step depend on it: a resume reuses it
            "pseudo_labels_sha256": self.pseudo_labels_sha256,
        }

    def wall_seconds(self) -> float:
        """Wall time of the run so far, over every segment of an interrupted and resumed run."""
        return self.seconds_before + time.perf_counter() - self.started

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])  # map_location="cpu" tensors are copied onto the model's device
        self.optimiser.load_state_dict(state["optimiser"])
        if self.bank is not None:
            self.bank.load_state_dict(state["bank"])
        if self.weight_average is not None:
            self.weight_average.load_state_dict(state["weight_average"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.seconds_before = float(state.get("wall_seconds", 0.0))
        ran = state.get("precision_ran", self.model.config.precision)
        if ran != self.model.config.precision:  # a run computes in one precision from its first step to its last
            warnings.warn(
                f"{self.out} computed in {ran} up to step {self.step}, and precision {self.config.precision!r} "
                f"resolves to {self.model.config.precision} here: it goes on in {ran}"
            )
            for model in (self.model, self.scored_model()):
                model.config = dataclasses.replace(model.config, precision=ran)
        if self.stage_switch is not None and self.step >= self.stage_switch:
            self.train_set.pseudo_labels = self.saved_pseudo_labels(state.get("pseudo_labels_sha256"))
            self.pseudo_labels_sha256 = array_sha256(self.train_set.pseudo_labels)

    def scored_model(self) -> PointWeakShotMaskFormer:
        """The model that is scored and drawn: the weight average when ``weight_average_decay`` is on."""
        return self.weight_average.module if self.weight_average is not None else self.model

    # ---------------------------------------------------------------- one step
    def supervision(self) -> str:
        if self.stage_switch is not None and self.step >= self.stage_switch:
            return "pseudo_masks"
        return self.config.novel_supervision

    def non_finite_message(self, loss: torch.Tensor, logged: dict, indices) -> str:
        """What a non-finite loss says: the terms that are not finite (or whose weighted sum overflowed), with their
        weights, and what can be done: there is a checkpoint to resume from only if one was written."""
        weights = {term.name: weight for term, weight in weighted_terms(self.config)}
        broken = [f"{name} = {value} (weight {weights[name]})" for name, value in logged.items() if name in weights and not np.isfinite(value)]
        cause = (
            "non-finite terms: " + ", ".join(broken)
            if broken
            else "every term is finite, their weighted sum is not: "
            + ", ".join(f"{name} = {value:.4g} x {weights[name]:.4g}" for name, value in logged.items() if name in weights)
        )
        checkpoint = self.out / CHECKPOINT
        advice = (
            f"the checkpoint in {self.out} (step {int(self.step)} or earlier) is intact, but a resumed run keeps its config: "
            "train a new run with --out elsewhere and a lower learning rate or weight"
            if checkpoint.exists()
            else "no checkpoint was written yet: train a new run with a lower learning rate or weight"
        )
        return f"the loss is {float(loss.detach())} at step {self.step} (training images {list(indices)}); {cause}; stopped before the update; {advice}"

    def training_step(self) -> dict:
        """One step: load the batch, forward, criterion (targets, matching, losses), backward, optimiser; the wall
        time of each phase is added to ``phase_seconds`` (read by the benchmark's profile)."""
        config, seconds = self.config, self.phase_seconds
        started = time.perf_counter()
        epoch, indices = batch_indices(
            self.step,
            len(self.train_set),
            config.batch_size,
            config.seed,
            self.distributed.rank,
            self.distributed.world_size,
        )
        self.train_set.set_epoch(epoch)
        batch = {k: v.to(self.distributed.device) for k, v in collate([self.train_set[i] for i in indices]).items()}
        keypoints = self.criterion.keypoints_for(batch)
        seconds["loader"] += (now := time.perf_counter()) - started
        outputs = self.network(batch["image"], keypoints)
        seconds["forward"] += (then := time.perf_counter()) - now
        loss, logged = self.criterion(outputs, batch, self.supervision())
        seconds["criterion"] += (now := time.perf_counter()) - then
        if not torch.isfinite(loss):
            raise FloatingPointError(self.non_finite_message(loss, logged, indices))
        for group in self.optimiser.param_groups:
            group["lr"] = learning_rate(config, self.step) * group["factor"]
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        seconds["backward"] += (then := time.perf_counter()) - now
        if config.gradient_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.gradient_clip)
        self.optimiser.step()
        if self.weight_average is not None:
            self.weight_average.update_parameters(self.model)
        logged.update(step=self.step, loss=float(all_reduce_mean(loss)), lr=learning_rate(config, self.step))
        seconds["optimiser"] += time.perf_counter() - then
        return logged

    # ---------------------------------------------------------------- loop
    def fit(
        self, stop_after: int | None = None, time_budget: float | None = None, checkpoint_every: float = 120.0
    ) -> bool:
        """Train until ``config.iterations`` (True) or until ``stop_after`` steps / ``time_budget`` seconds of
        this call (False: checkpointed, resumable)."""
        config, main = self.config, self.distributed.is_main
        start_time, last_save, start_step = time.perf_counter(), time.perf_counter(), self.step
        saved_before = (self.out / CHECKPOINT).exists()
        log_path = self.out / "log.csv"
        truncate_log(log_path, self.step)
        bar = tqdm(
            total=config.iterations,
            initial=self.step,
            desc=f"{config.method} s{config.seed}",
            disable=not (self.progress and main),
            dynamic_ncols=True,
        )
        writer_file, writer = None, None
        try:
            while self.step < config.iterations:
                if (
                    self.stage_switch is not None
                    and self.step == self.stage_switch
                    and self.train_set.pseudo_labels is None
                ):
                    self._enter_pseudo_stage()
                step_start = time.perf_counter()
                logged = self.training_step()
                logged["images_per_second"] = config.batch_size / (time.perf_counter() - step_start)
                self.step += 1
                if main:
                    if writer is None:
                        new = not log_path.exists()
                        writer_file = open(log_path, "a", newline="")
                        writer = csv.DictWriter(writer_file, fieldnames=log_fields())  # an unlogged term raises
                        if new:
                            writer.writeheader()
                    writer.writerow(logged)
                    bar.set_postfix(loss=f"{logged['loss']:.3f}", refresh=False)
                bar.update(1)
                elapsed = time.perf_counter() - start_time
                finished = self.step >= config.iterations
                interrupted = (stop_after is not None and self.step - start_step >= stop_after) or (
                    time_budget is not None and elapsed >= time_budget
                )
                # the first checkpoint comes after 10 s at most, so a short run interrupted early loses little
                interval = checkpoint_every if saved_before else min(checkpoint_every, 10.0)
                if finished:
                    check_finite_parameters(self.scored_model(), f"at the end of training (step {self.step})")
                if finished or interrupted or time.perf_counter() - last_save >= interval:
                    if writer_file:
                        writer_file.flush()
                    if main:
                        save_checkpoint(self.out / CHECKPOINT, self.state())
                    last_save, saved_before = time.perf_counter(), True
                if interrupted and not finished:
                    return False
        finally:
            bar.close()
            if writer_file:
                writer_file.close()
        return True

    def _enter_pseudo_stage(self) -> None:
        labels = pseudo_labels(self.model, self.train_set, self.config.class_union)
        if self.distributed.is_main:
            save_array_atomic(self.out / PSEUDO_LABELS, labels)
        self.train_set.pseudo_labels, self.pseudo_labels_sha256 = labels, array_sha256(labels)

    def saved_pseudo_labels(self, digest: str | None) -> np.ndarray:
        """The second stage's pseudo labels (N, H, W) from the run folder, trusted only when their SHA-256 is the
        one the checkpoint recorded (they come from the weights of the stage switch, which no later checkpoint
        holds, so damaged labels cannot be made again)."""
        path = self.out / PSEUDO_LABELS
        try:
            labels = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{path} cannot be read ({error}): {self.pseudo_labels_lost}") from None
        if digest is not None and array_sha256(labels) != digest:
            raise DataError(f"{path} is not the one this run made (its SHA-256 differs): {self.pseudo_labels_lost}")
        if labels.ndim != 3 or len(labels) != len(self.train_set) or labels.dtype != np.uint8:
            raise DataError(
                f"{path} holds {labels.dtype} {labels.shape}, not uint8 maps of the {len(self.train_set)} training "
                f"images: {self.pseudo_labels_lost}"
            )
        return labels

    @property
    def pseudo_labels_lost(self) -> str:
        return (
            "keypoint_pseudo's second stage trains on the labels of its stage switch, which cannot be made again "
            "from a later checkpoint; train the run again with another --out"
        )


def run(
    config: TrainConfig,
    out: Path,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    time_budget: float | None = None,
    checkpoint_every: float = 120.0,
    threads: int | None = None,
) -> dict | None:
    """Train (or resume) a run into ``out`` and score it; returns the metrics, or None if stopped early."""
    out = Path(out)
    distributed = setup_distributed()
    if threads:
        torch.set_num_threads(threads)
    with run_lock(out) if distributed.is_main else contextlib.nullcontext():  # rank 0 speaks for the folder
        if distributed.is_main:
            check_run_folder(out, resume)
        return _train_and_score(config, out, distributed, progress, stop_after, time_budget, checkpoint_every, threads)


def _train_and_score(config, out, distributed, progress, stop_after, time_budget, checkpoint_every, threads) -> dict | None:
    trainer = Trainer(config, out, distributed, progress)
    checkpoint = out / CHECKPOINT
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, config)
        recorded = state.get("threads")
        if recorded and recorded != torch.get_num_threads():
            if threads is None:  # a resume is the run: the thread count it trained with, unless told otherwise
                torch.set_num_threads(recorded)
            else:
                warnings.warn(
                    f"{out} trained on {recorded} threads and goes on with {threads}: from step {state['step']} on "
                    f"its losses differ from an uninterrupted run's (drop --threads to keep {recorded})"
                )
        trainer.restore(state)
    if distributed.is_main:
        write_json_atomic(out / "config.json", config.to_dict())
    finished = trainer.fit(stop_after, time_budget, checkpoint_every)
    if not finished:
        return None
    scores = evaluate_model(trainer.scored_model(), trainer.test_set, trainer.split, distributed=distributed)
    metrics = {
        **scores,
        "config": config.to_dict(),
        "config_key": config.key(),
        "precision_ran": trainer.model.config.precision,
        **provenance(wall_seconds=trainer.wall_seconds(), world_size=distributed.world_size),
    }
    if distributed.is_main:
        write_json_atomic(out / "metrics.json", metrics)
    return metrics


def unwritable(error: OSError, out: Path) -> str:
    """One line for a write that failed: the path, why, and which setting chooses that folder (``--out``, or the
    data root where the toy data and pretrained weights are cached)."""
    path = Path(error.filename or out).absolute()
    root = default_data_root().absolute()
    if path == root or root in path.parents:
        where = f"the data root {root} holds the generated data and weights: set PWSLIB_DATA to a folder you can write"
    else:
        where = "choose a writable --out"
    return f"cannot write {path} ({error.strerror}); {where}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, choices=DATASETS, help="default: toy-stuff")
    parser.add_argument("--method", default=None, choices=list(METHODS), help="default: ours")
    parser.add_argument("--seed", type=int, default=None, help="default: 0")
    parser.add_argument("--split", type=int, default=None, help="default: 1")
    parser.add_argument("--iterations", type=int, default=None, help="training steps (default: the method's)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="any config field, e.g. --set class_union=noisy_or points_per_class=3",
    )
    parser.add_argument("--out", type=output_folder, required=True, help="a new folder for the run (or its own, with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--time-budget", type=positive_seconds, default=None, help="stop (resumably) after this many seconds")
    parser.add_argument("--checkpoint-every", type=positive_seconds, default=120.0, help="seconds between checkpoints")
    parser.add_argument("--threads", type=positive_whole, default=None, help="torch CPU threads per process")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        for flag in ("method", "dataset", "seed", "split", "iterations", "batch_size"):
            if flag in overrides:
                raise DataError(f"set {flag} with --{flag.replace('_', '-')}, not --set {flag}=...")
            if getattr(args, flag) is not None:
                overrides[flag] = getattr(args, flag)
        if args.resume and not (args.out / "config.json").exists():  # a mistyped folder must not start a new run
            raise DataError(
                f"nothing to resume in {args.out} (no config.json): check the folder, or drop --resume to start a "
                "new run there"
            )
        if args.resume:
            config = read_run_config(args.out)
            saved_values = json.loads(json.dumps(config.to_dict()))  # JSON types: a list and a tuple compare equal
            conflicts = {k: v for k, v in overrides.items() if saved_values.get(k) != json.loads(json.dumps(v))}
            if conflicts:
                saved = ", ".join(f"{k}={config.to_dict().get(k)!r}" for k in conflicts)
                raise DataError(
                    f"the run in {args.out} was made with {saved}; --resume continues it as it was, so drop "
                    f"{sorted(conflicts)} from the command or start a new run with another --out"
                )
        else:
            config = config_for(overrides.pop("method", "ours"), **overrides)
        metrics = run(
            config,
            args.out,
            args.resume,
            time_budget=args.time_budget,
            checkpoint_every=args.checkpoint_every,
            threads=args.threads,
        )
    except (DataError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        if not (args.out / "config.json").exists():  # stopped while the data or the model was being made
            sys.exit("interrupted before the run started: nothing to resume; run the same command again")
        sys.exit(f"interrupted; continue from the last checkpoint with: python -m pwslib.train --out {args.out} --resume")
    except OSError as error:  # a folder that cannot be written (read-only, a file in the way, disk full)
        sys.exit(f"error: {unwritable(error, args.out)}")
    if metrics is None:
        print(f"stopped early; continue with: python -m pwslib.train --out {args.out} --resume")
    elif setup_distributed().is_main:
        print(format_scores(metrics))


if __name__ == "__main__":
    main()
