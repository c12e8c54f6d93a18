"""The toy's stand-in for ImageNet: a backbone pretrained on procedural scenes of *other* classes.

On real data every method starts from an ImageNet ResNet-50; starting the toy runs from
random weights made every table measure how fast a network learns edges and textures, not the methods.
This module pretrains the small ResNet once, by code in this repository, and caches its weights:

- **the pretraining set**: scenes drawn by the toy generator (``data/toy.py``) from classes that share
  no texture pattern and no shape with any class of either toy preset (spirals, rays, marble, cells,
  ramps, scales, triangles, plaid, mottled and hatched textures; pentagons, capsules, ells, bow-ties,
  droplets, wedges, trefoils, keyholes), so the backbone learns generic features and never sees a toy
  class, a toy label map or a toy image (``tests/test_pretraining.py`` checks the disjointness);
- **the task**: per-pixel classification of those 18 classes (backbone + FPN + 1x1 classifier, the data
  card's probe network), AdamW with warm-up and poly decay; only the backbone's weights are kept, as
  only ImageNet's backbone is kept on real data;
- **shipped weights**: as ImageNet weights are loaded, not trained, by a real user, the default recipe's weights
  ship with the package (``pwslib/data/pretrained/<key>.pt``, 2 MB; so do the 16,000-step ones, the default
  before them, that ``reports/pretraining_saturation.md`` measured them against) beside a ``.json`` with their
  SHA-256, test mIoU on held-out pretraining scenes and provenance; the checksum is verified on every load, so a
  damaged file stops with a message instead of starting every run from wrong weights;
- **the cache**: any other recipe is pretrained on first use into ``<data root>/pretrained/`` (same two
  files), deterministic from the recipe (its hash is the key), never downloaded; an interrupted pretraining
  resumes from the checkpoint written beside them every minute (``<key>.partial.pt``), drawing the same batches.

    python -m pwslib.pretraining                      # load the default backbone, write reports/pretraining.md
    python -m pwslib.pretraining --rebuild --ship     # pretrain it again from scratch and replace the shipped file
                                                      # (interrupted? the same command resumes from its checkpoint)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pwslib.config import TrainConfig
from pwslib.data.toy import PRESETS, StuffClass, ThingClass, ToyPreset, load_toy
from pwslib.io import (
    DataError,
    atomic_path,
    default_data_root,
    file_sha256,
    one_line_errors,
    provenance,
    read_checkpoint,
    report_header,
    save_checkpoint,
    write_json_atomic,
    write_text_atomic,
)
from pwslib.metrics import ConfusionMatrix, intersection_over_union
from pwslib.model.per_pixel import PerPixelSegmenter, fit_per_pixel

PRETRAINING_SCENES = ToyPreset(
    name="pretraining",
    stuff=(
        StuffClass("spiral", "spiral", 0.12),
        StuffClass("rays", "rays", 0.10),
        StuffClass("marble", "marble", 0.05, 30.0),
        StuffClass("cells", "cells", 0.06),
        StuffClass("ramp", "ramp", 0.0, 60.0),
        StuffClass("scales", "scales", 0.12),
        StuffClass("triangles", "triangles", 0.08),
        StuffClass("plaid", "plaid", 0.10, 20.0),
        StuffClass("mottled", "mottled", 0.0),
        StuffClass("hatch", "hatch", 0.14),
    ),
    things=(
        ThingClass("pentagon", "pentagon", "hatch", 0.25, (8, 14)),
        ThingClass("capsule", "capsule", "plaid", 0.20, (9, 15)),
        ThingClass("ell", "ell", "triangles", 0.18, (9, 15)),
        ThingClass("bowtie", "bowtie", "ramp", 0.0, (9, 15)),
        ThingClass("droplet", "droplet", "scales", 0.25, (8, 14)),
        ThingClass("wedge", "wedge", "marble", 0.12, (10, 16)),
        ThingClass("trefoil", "trefoil", "mottled", 0.0, (9, 15)),
        ThingClass("keyhole", "keyhole", "spiral", 0.25, (9, 15)),
    ),
    novel_splits=(),
    stuff_per_image=(2, 3),
    things_per_image=(1, 4),
    num_train=4000,
    num_test=300,
)
RECIPE_VERSION = 1
_RUN_DEFAULTS = TrainConfig()


@dataclass(frozen=True)
class PretrainingRecipe:
    """Everything that determines the pretrained weights (its hash names the cache file)."""

    widths: tuple[int, ...] = _RUN_DEFAULTS.backbone_widths  # the run's backbone, whose weights this recipe makes
    embedding_dim: int = 64  # the per-pixel head's width: only the backbone's weights are kept
    steps: int = _RUN_DEFAULTS.pretraining_steps
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    seed: int = 0
    num_train: int = PRETRAINING_SCENES.num_train
    num_test: int = PRETRAINING_SCENES.num_test

    @classmethod
    def of_run(cls, config: TrainConfig) -> "PretrainingRecipe | None":
        """The recipe a run config (``TrainConfig``) starts from, or None (random init / ImageNet ResNet-50)."""
        if config.backbone != "small_resnet" or not config.pretrained_backbone:
            return None
        return cls(widths=tuple(config.backbone_widths), steps=config.pretraining_steps)

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": RECIPE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, generator: torch.Generator, count: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` batches of images drawn with replacement by ``generator``, each flipped left-right with
    probability ½: (B, 3, H, W) uint8 images and (B, H, W) class ids. The generator's state after a batch is all a
    resumed pretraining needs to draw the batches an uninterrupted one would."""
    for _ in range(count):
        indices = np.sort(torch.randint(len(images), (batch_size,), generator=generator).numpy())
        image = torch.from_numpy(images[indices]).permute(0, 3, 1, 2)
        label = torch.from_numpy(labels[indices].astype(np.int64))
        if torch.rand((), generator=generator) < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        yield image, label


@torch.no_grad()
def _evaluate(model: PerPixelSegmenter, images: np.ndarray, labels: np.ndarray) -> float:
    """mIoU (%) of ``model`` on the held-out pretraining scenes."""
    model.eval()
    confusion = ConfusionMatrix(len(PRETRAINING_SCENES.class_names))
    for start in range(0, len(images), 64):
        batch = torch.from_numpy(np.array(images[start : start + 64])).permute(0, 3, 1, 2)
        confusion.update(model(batch).argmax(1), torch.from_numpy(labels[start : start + 64].astype(np.int64)))
    model.train()
    return float(np.nanmean(intersection_over_union(confusion.matrix.numpy()))) * 100


def pretrain(
    recipe: PretrainingRecipe, root: Path | None = None, progress: bool = True, checkpoint_every: float = 60.0,
    stop_after: int | None = None,
) -> tuple[dict, dict] | None:
    """Train the per-pixel network on the pretraining scenes and cache the backbone's weights in the data root:
    (backbone state dict, report). Resumable: every ``checkpoint_every`` seconds the model, optimiser and sampler
    state are written (atomically, with a checksum) beside the cache entry, and a later call continues from there,
    drawing the same batches as an uninterrupted one. ``stop_after``: stop after that many steps of this call
    (checkpointed; returns None)."""
    start = time.perf_counter()
    scenes = load_toy(
        PRETRAINING_SCENES, recipe.seed, root, num_train=recipe.num_train, num_test=recipe.num_test, progress=progress
    )
    names = PRETRAINING_SCENES.class_names
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = PerPixelSegmenter(len(names), recipe.widths, recipe.embedding_dim)
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    checkpoint, first_step, seconds_before = partial_checkpoint(recipe, root), 0, 0.0
    if checkpoint.exists():
        saved = read_checkpoint(checkpoint)
        if saved.get("key") != recipe.key():
            raise DataError(f"{checkpoint} belongs to another pretraining recipe; delete it to start over")
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        generator.set_state(saved["generator"])
        first_step, seconds_before = int(saved["step"]), float(saved["seconds"])
    last_step = min(recipe.steps, first_step + (stop_after or recipe.steps))
    last_save = time.perf_counter()

    def save(step: int) -> None:  # every checkpoint_every seconds and when this call stops early
        nonlocal last_save
        if step < recipe.steps and (step == last_step or time.perf_counter() - last_save > checkpoint_every):
            save_checkpoint(
                checkpoint,
                {
                    "key": recipe.key(),
                    "step": step,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "generator": generator.get_state(),
                    "seconds": seconds_before + time.perf_counter() - start,
                },
                how_to_resume="run the same command again: it resumes from this checkpoint",
            )
            last_save = time.perf_counter()

    batches = tqdm(
        _batches(scenes.images["train"], scenes.labels["train"], recipe.batch_size, generator, last_step - first_step),
        initial=first_step, total=recipe.steps, desc="pretraining the backbone", disable=not progress,
        dynamic_ncols=True,
    )
    _, final_loss = fit_per_pixel(
        model, optimiser, batches, lambda step: step / recipe.steps, recipe.learning_rate, recipe.warmup_steps,
        first_step=first_step, after_step=save,
    )
    if last_step < recipe.steps:
        return None
    train_seconds = seconds_before + time.perf_counter() - start
    test_miou = _evaluate(model, scenes.images["test"], scenes.labels["test"])
    report = {
        "recipe": asdict(recipe),
        "key": recipe.key(),
        "task": f"per-pixel classification of {len(names)} procedural classes",
        "classes": list(names),
        "test_miou": test_miou,
        "final_loss": final_loss,
        "seconds": round(train_seconds, 1),
        **provenance(),
    }
    state = model.backbone.state_dict()
    save_weights(state, report, cache_folder(root))
    checkpoint.unlink(missing_ok=True)
    return state, report


SHIPPED = Path(__file__).resolve().parent / "data" / "pretrained"  # weights that come with the package


def weights_files(recipe: PretrainingRecipe, folder: Path) -> tuple[Path, Path]:
    """The weights file and its report (``.json``: SHA-256, test mIoU, provenance) of ``recipe`` in ``folder``."""
    stem = Path(folder) / f"small_resnet_{recipe.key()}"
    return stem.with_suffix(".pt"), stem.with_suffix(".json")


def _load_verified(weights_path: Path, report_path: Path, how_to_fix: str) -> dict:
    """The state dict in ``weights_path`` after checking its SHA-256 against the one in ``report_path``."""
    try:
        expected = json.loads(report_path.read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{report_path} holds no valid sha256 of {weights_path.name}; {how_to_fix}") from error
    actual = file_sha256(weights_path)
    if actual != expected:
        raise DataError(
            f"{weights_path} is damaged: its SHA-256 is {actual[:16]}..., its report {report_path.name} says "
            f"{expected[:16]}...; {how_to_fix}"
        )
    try:
        return torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DataError(f"{weights_path} is unreadable ({type(error).__name__}); {how_to_fix}") from error


def save_weights(state: dict, report: dict, folder: Path) -> None:
    """Write ``state`` and its report (with the file's SHA-256) into ``folder``, atomically, report last."""
    recipe = PretrainingRecipe(**{**report["recipe"], "widths": tuple(report["recipe"]["widths"])})
    weights_path, report_path = weights_files(recipe, folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights_path) as tmp:
        torch.save(state, tmp)
    write_json_atomic(report_path, {**report, "sha256": file_sha256(weights_path)})  # its presence marks a complete entry


def cache_folder(root: Path | None) -> Path:
    """Where pretrained weights that do not ship are cached: ``<data root>/pretrained``."""
    return (Path(root) if root else default_data_root()) / "pretrained"


def partial_checkpoint(recipe: PretrainingRecipe, root: Path | None) -> Path:
    """The checkpoint of an unfinished pretraining of ``recipe``, beside its cache entry."""
    return weights_files(recipe, cache_folder(root))[0].with_suffix(".partial.pt")


def _locations(recipe: PretrainingRecipe, root: Path | None):
    """(weights, report, how to fix a damaged pair) of ``recipe``, in the order they are looked for: the shipped
    files, then the data root's cache."""
    yield (
        *weights_files(recipe, SHIPPED),
        f"restore it (git checkout -- pwslib/data/pretrained) or make it again with "
        f"python -m pwslib.pretraining --steps {recipe.steps} --rebuild --ship",
    )
    yield (*weights_files(recipe, cache_folder(root)), "delete both files and it will be pretrained again on the next run")


def pretrained_backbone(recipe: PretrainingRecipe, root: Path | None = None, progress: bool = True) -> dict:
    """The backbone weights of ``recipe``: the shipped file if the package has one, else the cache of the data
    root, else pretrained now (resuming an interrupted pretraining) and cached. Every file is checked against its
    SHA-256 before it is used."""
    for weights_path, report_path, how_to_fix in _locations(recipe, root):
        if weights_path.exists() and report_path.exists():
            return _load_verified(weights_path, report_path, how_to_fix)
        if weights_path.exists() != report_path.exists():  # half a pair: never pretrain for an hour over it
            missing, present = (weights_path, report_path) if report_path.exists() else (report_path, weights_path)
            raise DataError(f"{missing} is missing beside {present.name}; {how_to_fix}")
    return pretrain(recipe, root, progress)[0]


def pretraining_report(recipe: PretrainingRecipe, root: Path | None = None) -> dict:
    """The report of ``recipe``'s weights (shipped, cached, or pretrained now)."""
    for _ in range(2):  # the second pass finds what pretrained_backbone has just written
        for weights_path, report_path, _fix in _locations(recipe, root):
            if weights_path.exists() and report_path.exists():
                return json.loads(report_path.read_text())
        pretrained_backbone(recipe, root)
    raise DataError(f"no report of the pretrained backbone {recipe.key()} was written")


def write_report(report: dict, path: Path) -> str:
    toy_patterns = sorted({c.pattern for p in PRESETS.values() for c in (*p.stuff, *p.things)})
    toy_shapes = sorted({t.shape for p in PRESETS.values() for t in p.things})
    text = (
        report_header("The pretrained backbone (the toy's stand-in for ImageNet)", "`python -m pwslib.pretraining`")
        + "Every toy run with "
        "`pretrained_backbone=true` starts from these weights.\n\n"
        f"- task: {report['task']} on {report['recipe']['num_train']} procedural scenes "
        f"(96x96), {report['recipe']['steps']} steps at batch {report['recipe']['batch_size']}\n"
        f"- classes: {', '.join(report['classes'])}\n"
        f"- accuracy: {report['test_miou']:.1f} % mIoU on {report['recipe']['num_test']} held-out pretraining scenes\n"
        f"- wall time: {report['seconds']:.0f} s on {report['machine']} (commit `{report['git_commit']}`, "
        f"{report['date_utc']} UTC); cache key `{report['key']}`\n"
        f"- recipe: `{json.dumps(report['recipe'])}`\n"
        f"- weights: `small_resnet_{report['key']}.pt`, SHA-256 `{report.get('sha256', '-')}` (checked on every load)\n\n"
        "## What it never saw\n\n"
        "No image, label map or class of `toy-stuff` or `toy-scene`. The pretraining classes share no texture "
        f"pattern with the toy classes (toy patterns: {', '.join(toy_patterns)}) and no shape "
        f"(toy shapes: {', '.join(toy_shapes)}); `tests/test_pretraining.py` checks both. What carries over is "
        "what carries over from ImageNet: edges, colour contrast, oriented frequencies, blob and corner detectors.\n"
    )
    write_text_atomic(path, text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs=4, default=list(PretrainingRecipe.widths))
    parser.add_argument("--steps", type=int, default=PretrainingRecipe.steps)
    parser.add_argument(
        "--rebuild", action="store_true",
        help="pretrain again, ignoring shipped and cached weights (an interrupted pretraining resumes from its checkpoint)",
    )
    parser.add_argument("--ship", action="store_true", help="write the weights into the package (pwslib/data/pretrained)")
    parser.add_argument("--out", type=Path, default=Path("reports") / "pretraining.md")
    args = parser.parse_args(argv)
    if args.steps < 1 or min(args.widths) < 1:
        parser.error(f"--steps and --widths must be whole numbers of at least 1, got {args.steps} and {args.widths}")
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a folder; name the report's file, e.g. {args.out / 'pretraining.md'}")
    recipe = PretrainingRecipe(widths=tuple(args.widths), steps=args.steps)
    with one_line_errors("the pretraining"):
        if args.rebuild or args.ship:
            state, report = pretrain(recipe) if args.rebuild else (pretrained_backbone(recipe), pretraining_report(recipe))
            if args.ship:
                save_weights(state, report, SHIPPED)
        print(write_report(pretraining_report(recipe), args.out))


if __name__ == "__main__":
    main()
