import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pwslib.config import config_for
from pwslib.distributed import resolve_precision
from pwslib.io import DataError
from pwslib.runs import CHECKPOINT, load_checkpoint
from pwslib.train import Trainer, run

TINY = {"num_train": 24, "num_test": 8}


def tiny_config(method="ours", **overrides):
    values = dict(
        iterations=6,
        batch_size=4,
        toy_options=TINY,
        embedding_dim=32,
        backbone_widths=(16, 32, 48, 64),
        pretrained_backbone=False,
    )
    values.update(overrides)
    return config_for(method, **values)


def losses(run_dir):
    with open(run_dir / "log.csv") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_run_writes_metrics_config_log_and_checkpoint(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    metrics = run(tiny_config(), tmp_path / "run", progress=False)
    for name in ("metrics.json", "config.json", "log.csv", CHECKPOINT):
        assert (tmp_path / "run" / name).exists()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {
        "base_miou",
        "novel_miou",
        "total_miou",
        "hiou",
        "per_class_iou",
        "git_commit",
        "wall_seconds",
    } <= saved.keys()
    assert saved["hiou"] == metrics["hiou"] and len(losses(tmp_path / "run")) == 6
    assert saved["config"]["precision"] == tiny_config().precision  # what was asked: the key's
    assert saved["precision_ran"] == resolve_precision(tiny_config().precision)  # what this machine computed in


def test_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config()
    straight = run(config, tmp_path / "straight", progress=False)
    assert run(config, tmp_path / "resumed", progress=False, stop_after=3) is None
    assert load_checkpoint(tmp_path / "resumed" / CHECKPOINT, config)["step"] == 3
    resumed = run(config, tmp_path / "resumed", resume=True, progress=False)
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT, config)
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT, config)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["bank"]["prototypes"], b["bank"]["prototypes"])
    assert straight["hiou"] == resumed["hiou"]


def test_a_bfloat16_run_resumes_bit_identically(tmp_path, toy_root, monkeypatch):
    import pwslib.distributed

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    monkeypatch.setattr(pwslib.distributed, "native_bfloat16", lambda: True)  # emulated on CPUs without it: slow, exact
    config = tiny_config(precision="bfloat16", iterations=4)
    assert config.precision == "bfloat16"
    straight = run(config, tmp_path / "straight", progress=False)
    assert run(config, tmp_path / "resumed", progress=False, stop_after=2) is None
    resumed = run(config, tmp_path / "resumed", resume=True, progress=False)
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT, config)
    b = load_checkpoint(tmp_path / "resumed" / CHECKPOINT, config)
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    assert straight["total_miou"] == resumed["total_miou"]


def test_a_resumed_run_goes_on_in_the_precision_it_started_in(tmp_path, toy_root, monkeypatch):
    """``auto`` resolves per machine: a run begun where it gave bfloat16 and resumed where it gives float32 keeps
    bfloat16 to its last step (with a warning) rather than mixing the two."""
    import pwslib.assembly
    import pwslib.distributed

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    monkeypatch.setattr(pwslib.distributed, "native_bfloat16", lambda: True)
    config = tiny_config(iterations=4)
    assert config.precision == "auto"
    monkeypatch.setattr(pwslib.assembly, "resolve_precision", lambda requested: "bfloat16")  # the first machine
    assert run(config, tmp_path / "run", progress=False, stop_after=2) is None
    monkeypatch.setattr(pwslib.assembly, "resolve_precision", lambda requested: "float32")  # the second one
    with pytest.warns(UserWarning, match="computed in bfloat16 up to step 2"):
        metrics = run(config, tmp_path / "run", resume=True, progress=False)
    assert metrics["precision_ran"] == "bfloat16"


def test_the_pretrained_backbone_is_loaded_into_a_run(tmp_path, toy_root, monkeypatch):
    from pwslib.pretraining import PretrainingRecipe, pretrained_backbone
    from pwslib.assembly import build_model

    monkeypatch.setenv("PWSLIB_DATA", str(tmp_path))
    config = tiny_config(pretrained_backbone=True, pretraining_steps=2)
    recipe = PretrainingRecipe(widths=config.backbone_widths, steps=2)
    weights = pretrained_backbone(recipe, tmp_path, progress=False)  # what build_model finds in the cache
    model = build_model(config, 24)
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_keypoint_pseudo_resumes_across_its_two_stages(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config("keypoint_pseudo")
    run(config, tmp_path / "straight", progress=False)
    run(config, tmp_path / "resumed", progress=False, stop_after=4)  # stops in the second stage
    assert (tmp_path / "resumed" / "pseudo_labels.npy").exists()
    run(config, tmp_path / "resumed", resume=True, progress=False)
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


@pytest.mark.parametrize("damage", ["overwritten", "truncated", "reshaped"])
def test_keypoint_pseudo_refuses_pseudo_labels_it_did_not_make(tmp_path, toy_root, monkeypatch, damage):
    """The second stage's labels cannot be made again from a later checkpoint: damaged, they stop the resume."""
    import numpy as np

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config("keypoint_pseudo")
    folder = tmp_path / "run"
    run(config, folder, progress=False, stop_after=4)  # stops in the second stage
    path = folder / "pseudo_labels.npy"
    labels = np.load(path)
    if damage == "overwritten":
        np.save(path, np.zeros_like(labels))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        np.save(path, labels[:-1])
    with pytest.raises(DataError, match="pseudo_labels.npy .*train the run again with another --out"):
        run(config, folder, resume=True, progress=False)


def test_existing_run_needs_resume(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    run(tiny_config(iterations=1), tmp_path / "run", progress=False)
    with pytest.raises(DataError, match="--resume"):
        run(tiny_config(iterations=1), tmp_path / "run", progress=False)


def test_checkpoint_of_another_config_and_truncated_checkpoint(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    run(tiny_config(iterations=1), tmp_path / "run", progress=False)
    with pytest.raises(DataError, match=r"another config \(differs in \['class_union'\]\)"):
        load_checkpoint(tmp_path / "run" / CHECKPOINT, tiny_config(iterations=1, class_union="noisy_or"))
    path = tmp_path / "run" / CHECKPOINT
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="damaged"):
        load_checkpoint(path, tiny_config(iterations=1))


def test_nan_loss_stops_with_step_and_images_named_and_checkpoint_intact(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config()
    trainer = Trainer(config, tmp_path, progress=False)
    criterion = trainer.criterion

    def poisoned(outputs, batch, supervision=None):
        loss, logged = criterion(outputs, batch, supervision)
        return (loss * float("nan") if trainer.step == 2 else loss), logged

    trainer.criterion = poisoned
    trainer.criterion.keypoints_for = criterion.keypoints_for
    with pytest.raises(FloatingPointError, match=r"at step 2 \(training images \[") as stopped:
        trainer.fit(checkpoint_every=0.0)
    assert "is intact, but a resumed run keeps its config: train a new run" in str(stopped.value)
    assert load_checkpoint(tmp_path / CHECKPOINT, config)["step"] == 2


def test_an_overflowing_weight_is_named_and_no_checkpoint_is_promised(tmp_path, toy_root, monkeypatch):
    """A weight so large that the weighted sum overflows: the message names the terms and their weights, and does
    not send the user to a checkpoint that was never written."""
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    with pytest.raises(FloatingPointError) as stopped:
        run(tiny_config(focal_weight=1e308, dice_weight=1e308), tmp_path / "run", progress=False)
    message = str(stopped.value)
    assert "at step 0" in message and "their weighted sum is not" in message and "focal = " in message
    assert "x 1e+308" in message and "no checkpoint was written yet" in message


def test_evaluate_cli_rescores_a_checkpoint(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    metrics = run(tiny_config(iterations=2), tmp_path / "run", progress=False)
    result = subprocess.run(
        [sys.executable, "-m", "pwslib.evaluate", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "PWSLIB_DATA": str(toy_root)},
    )
    assert result.returncode == 0, result.stderr
    rescored = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert rescored["hiou"] == pytest.approx(metrics["hiou"]) and rescored["total_miou"] == pytest.approx(
        metrics["total_miou"]
    )


@pytest.mark.slow
def test_two_processes_follow_the_loss_trajectory_of_one(tmp_path, toy_root):
    """torchrun --nproc_per_node=2 (gloo) with the same global batch as one process.

    Step 0 (same weights, same images) must agree to float precision: a bug in sharding, global loss
    normalisation or bank synchronisation shows there. Later steps may drift by float noise (kernels differ
    between batch 4 and batch 8, and AdamW amplifies noise in near-zero gradients), bounded at 0.5 %.
    """
    # GPUs hidden: the comparison is of gloo on the CPU, whatever the machine has
    env = {**os.environ, "PWSLIB_DATA": str(toy_root), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    common = [
        "--method",
        "ours",
        "--iterations",
        "5",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--set",
        'toy_options={"num_train": 24, "num_test": 8}',
        "embedding_dim=32",
        "backbone_widths=[16,32,48,64]",
        "pretrained_backbone=false",
    ]
    single = subprocess.run(
        [sys.executable, "-m", "pwslib.train", "--out", str(tmp_path / "one"), *common],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "pwslib.train",
            "--out",
            str(tmp_path / "two"),
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 5
    assert two[0] == pytest.approx(one[0], rel=1e-5)
    assert two == pytest.approx(one, rel=5e-3)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["total_miou"] == pytest.approx(one["total_miou"], abs=0.5)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--iterations", "0"], "iterations must be positive"),
        (["--batch-size", "0"], "batch_size must be positive"),
        (["--set", "iterations=-5"], "set iterations with --iterations"),
        (["--set", "method=full_supervision"], "set method with --method"),
        (["--set", 'toy_options={"num_train": 0}'], "toy_options num_train must be a positive whole number"),
        (["--set", "class_union=union"], "unknown class_union"),
        (["--set", "learning_rate=Infinity"], "learning_rate must be a finite number"),
    ],
)
def test_bad_command_line_values_stop_before_anything_is_written(tmp_path, arguments, message):
    from pwslib.train import main

    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(tmp_path / "run"), *arguments])
    assert message in str(stopped.value)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_folder_without_a_run_and_flags_that_contradict_it_and_keeps_the_total_wall_time(
    tmp_path, toy_root, monkeypatch
):
    from pwslib.train import main

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    folder = tmp_path / "run"
    assert run(tiny_config(), folder, progress=False, stop_after=3) is None
    first_segment = load_checkpoint(folder / CHECKPOINT, tiny_config())["wall_seconds"]
    config_before = (folder / "config.json").read_text()
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(folder), "--resume", "--method", "point_naive"])
    assert "made with method='ours'" in str(stopped.value) and "drop ['method']" in str(stopped.value)
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(folder), "--resume", "--set", "class_union=noisy_or"])
    assert "class_union='max'" in str(stopped.value)
    assert (folder / "config.json").read_text() == config_before
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(tmp_path / "mistyped"), "--resume"])
    assert "nothing to resume in" in str(stopped.value) and not (tmp_path / "mistyped" / "config.json").exists()
    metrics = run(tiny_config(), folder, resume=True, progress=False)
    assert metrics["wall_seconds"] > first_segment


def test_evaluate_explains_a_folder_without_checkpoint(tmp_path, toy_root, monkeypatch, capsys):
    from pwslib.evaluate import main as evaluate_main
    from pwslib.io import write_json_atomic

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    write_json_atomic(tmp_path / "config.json", tiny_config().to_dict())
    with pytest.raises(SystemExit) as stopped:
        evaluate_main([str(tmp_path)])
    assert "holds no checkpoint.pt yet" in str(stopped.value) and "--resume" in str(stopped.value)


def test_a_checkpoint_write_that_fails_half_way_keeps_the_previous_one_and_the_run_resumes(
    tmp_path, toy_root, monkeypatch
):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config()
    straight = run(config, tmp_path / "straight", progress=False)
    folder = tmp_path / "faulty"
    assert run(config, folder, progress=False, stop_after=2) is None
    before = (folder / CHECKPOINT).read_bytes()
    real_write = Path.write_bytes

    def disk_full(self, data):
        if CHECKPOINT not in self.name:
            return real_write(self, data)
        real_write(self, data[: len(data) // 2])  # half of the checkpoint, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(DataError, match=r"[MG]iB free, about [0-9.]+ MiB needed; the previous checkpoint is intact"):
        run(config, folder, resume=True, progress=False, stop_after=2)
    monkeypatch.setattr(Path, "write_bytes", real_write)
    assert (folder / CHECKPOINT).read_bytes() == before
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    resumed = run(config, folder, resume=True, progress=False)
    assert losses(tmp_path / "straight") == losses(folder) and resumed["hiou"] == straight["hiou"]


def test_an_output_folder_that_cannot_be_written_gets_one_line(tmp_path, toy_root, monkeypatch):
    from pwslib.train import main

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    (tmp_path / "file").write_text("in the way")
    arguments = ["--iterations", "2", "--batch-size", "4", "--set", 'toy_options={"num_train": 24, "num_test": 8}']
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(tmp_path / "file" / "run"), *arguments, "pretrained_backbone=false"])
    assert "cannot write" in str(stopped.value) and "choose a writable --out" in str(stopped.value)
    monkeypatch.setenv("PWSLIB_DATA", str(tmp_path / "file"))  # a data root that is a file
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(tmp_path / "run"), *arguments, "pretrained_backbone=false"])
    assert "set PWSLIB_DATA to a folder you can write" in str(stopped.value) and "--out" not in str(stopped.value)


def test_evaluate_prints_the_scores_before_a_failed_write(tmp_path, toy_root, monkeypatch, capsys):
    from pwslib.evaluate import main as evaluate_main

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    run(tiny_config(iterations=2), tmp_path / "run", progress=False)
    (tmp_path / "run" / "evaluation.json").mkdir()  # something that cannot be replaced by a file
    with pytest.raises(SystemExit) as stopped:
        evaluate_main([str(tmp_path / "run")])
    assert "could not be written" in str(stopped.value)
    assert "hIoU" in capsys.readouterr().out  # the scores reached the user first


def test_the_backbone_learns_at_its_own_factor_of_the_learning_rate(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    (tmp_path / "run").mkdir()
    trainer = Trainer(tiny_config(backbone_learning_rate_factor=0.25, warmup_iterations=0), tmp_path / "run", progress=False)
    trainer.fit(stop_after=1)
    backbone_group, rest_group = trainer.optimiser.param_groups
    backbone = {id(p) for p in trainer.model.backbone.parameters()}
    assert {id(p) for p in backbone_group["params"]} == backbone
    assert not backbone & {id(p) for p in rest_group["params"]}
    assert len(backbone_group["params"]) + len(rest_group["params"]) == len(list(trainer.model.parameters()))
    assert backbone_group["lr"] == pytest.approx(0.25 * rest_group["lr"]) and rest_group["lr"] > 0


@pytest.mark.parametrize(
    "arguments",
    [["--threads", "0"], ["--checkpoint-every", "inf"], ["--checkpoint-every", "0"], ["--time-budget", "nan"], ["--out", ""]],
)
def test_bad_flags_stop_in_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys, arguments):
    from pwslib.train import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--out", "run", *arguments])
    assert arguments[0] in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_model_with_non_finite_weights_is_never_scored(toy_root):
    from pwslib.data import build_dataset
    from pwslib.metrics import evaluate_model
    from pwslib.assembly import build_model

    test = build_dataset("toy-stuff", "test", root=toy_root, **TINY)
    model = build_model(tiny_config(), test.split.num_classes)
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN or infinite before scoring"):
        evaluate_model(model, test, test.split)


def test_load_model_restores_the_weights_and_builds_no_trainer(tmp_path, toy_root, monkeypatch):
    import pwslib.evaluate as evaluate_module
    import pwslib.pretraining as pretraining_module

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config(iterations=2)
    run(config, tmp_path / "run", progress=False)
    monkeypatch.setattr(pretraining_module, "pretrained_backbone", lambda *a, **k: pytest.fail("pretrained backbone loaded"))
    monkeypatch.setattr(evaluate_module, "Trainer", None, raising=False)
    loaded = evaluate_module.load_model(tmp_path / "run")
    saved = load_checkpoint(tmp_path / "run" / CHECKPOINT, config)["model"]
    assert all(torch.equal(loaded.model.state_dict()[k], saved[k]) for k in saved)
    assert loaded.step == 2 and not loaded.model.training and loaded.config == config
    assert len(loaded.test_set) == TINY["num_test"] and loaded.split.num_classes == 24


def test_cosine_decay_halves_the_learning_rate_midway_and_ends_near_zero():
    from pwslib.train import learning_rate

    config = tiny_config(iterations=100, warmup_iterations=0, learning_rate_decay="cosine")
    assert learning_rate(config, 0) == pytest.approx(config.learning_rate)
    assert learning_rate(config, 50) == pytest.approx(config.learning_rate / 2)
    assert learning_rate(config, 99) < 0.001 * config.learning_rate
    poly = tiny_config(iterations=100, warmup_iterations=0)
    assert learning_rate(poly, 50) == pytest.approx(config.learning_rate * 0.5**poly.poly_power)


def test_the_weight_average_is_scored_resumed_and_reloaded(tmp_path, toy_root, monkeypatch):
    from pwslib.evaluate import load_model
    from pwslib.metrics import evaluate_model

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = tiny_config(weight_average_decay=0.5)
    straight = run(config, tmp_path / "straight", progress=False)
    assert run(config, tmp_path / "resumed", progress=False, stop_after=3) is None
    resumed = run(config, tmp_path / "resumed", resume=True, progress=False)
    assert resumed["total_miou"] == straight["total_miou"]
    state = load_checkpoint(tmp_path / "straight" / CHECKPOINT, config)
    average = {name[len("module.") :]: value for name, value in state["weight_average"].items() if name != "n_averaged"}
    assert any(not torch.equal(average[name], value) for name, value in state["model"].items())  # it averages
    loaded = load_model(tmp_path / "straight")
    assert all(torch.equal(loaded.model.state_dict()[name], value) for name, value in average.items())
    assert evaluate_model(loaded.model, loaded.test_set, loaded.split)["total_miou"] == straight["total_miou"]


def test_the_loss_term_recipe_end_to_end(tmp_path, toy_root, monkeypatch):
    """docs/architecture.md's loss-term recipe followed once: a weight field (key-neutral at 0), a function of the
    matched step, a row of ``losses.LOSS_TERMS``; the run logs the term and its total is Σ weight × term."""
    import pwslib.config
    import pwslib.method.losses as losses_module

    with_dummy = dataclasses.make_dataclass(
        "TrainConfig", [("dummy_weight", float, 0.0)], bases=(pwslib.config.TrainConfig,), frozen=True
    )
    monkeypatch.setitem(pwslib.config.KEY_NEUTRAL, "dummy_weight", 0.0)
    dummy = losses_module.LossTerm(
        "dummy", "dummy_weight", "every query", "mean squared class logit", lambda step: step.outputs["class_logits"].pow(2).mean()
    )
    monkeypatch.setattr(losses_module, "LOSS_TERMS", losses_module.LOSS_TERMS + (dummy,))
    base = tiny_config(iterations=2)
    assert with_dummy(**base.to_dict()).key() == base.key()  # key-neutral at its off value: cached runs keep their keys
    config = with_dummy(**{**base.to_dict(), "dummy_weight": 0.5})
    assert config.key() != base.key()
    run(config, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(float(row["dummy"]) > 0 for row in rows)
    for row in rows:
        weighted = sum(getattr(config, t.weight_field) * float(row[t.name]) for t in losses_module.LOSS_TERMS if row[t.name])
        assert float(row["loss"]) == pytest.approx(weighted, rel=1e-4)


def test_a_batch_larger_than_the_training_set_is_refused_before_any_work(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    with pytest.raises(DataError, match="--batch-size 100000 is larger than the 24 training images"):
        run(tiny_config(batch_size=100_000), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # a refused run leaves nothing behind


def test_a_step_that_would_not_fit_in_memory_is_refused_before_any_work_naming_a_batch_size_that_fits(
    tmp_path, toy_root, monkeypatch
):
    import pwslib.train

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    need = Trainer(tiny_config(batch_size=20), tmp_path / "probe", progress=False).step_memory()
    assert need.images == 20 and need.per_image > 0 and need.total == need.fixed + 20 * need.per_image
    free = need.fixed + 7 * need.per_image + need.per_image // 2  # room for 7 images
    monkeypatch.setattr(pwslib.train, "free_memory", lambda device: free)
    with pytest.raises(DataError, match=r"--batch-size 20 needs about [0-9.]+ [MG]iB .* choose --batch-size 7 or less$"):
        run(tiny_config(batch_size=20), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # a refused run leaves nothing behind
    assert run(tiny_config(batch_size=7, iterations=1), tmp_path / "fits", progress=False)["hiou"] >= 0


def test_the_memory_estimate_leaves_the_run_as_it_was(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    trainer = Trainer(tiny_config(), tmp_path / "run", progress=False)
    model, bank, rng = trainer.model.state_dict(), trainer.bank.state_dict(), torch.get_rng_state()
    model = {name: value.clone() for name, value in model.items()}
    bank = {name: value.clone() for name, value in bank.items()}
    trainer.step_memory()
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(value, trainer.model.state_dict()[name]) for name, value in model.items())  # BN statistics
    assert all(torch.equal(value, trainer.bank.state_dict()[name]) for name, value in bank.items())


@pytest.mark.parametrize("when", ["while the data is made", "while training"])
def test_ctrl_c_advises_a_command_that_works(tmp_path, toy_root, monkeypatch, when):
    import pwslib.train

    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if when == "while the data is made":
        monkeypatch.setattr(pwslib.train, "datasets", interrupt)
    else:
        monkeypatch.setattr(pwslib.train.Trainer, "fit", interrupt)
    folder = tmp_path / "run"
    arguments = ["--out", str(folder), "--iterations", "2", "--batch-size", "4", "--set", 'toy_options={"num_train": 24, "num_test": 8}', "pretrained_backbone=false"]
    with pytest.raises(SystemExit) as stopped:
        pwslib.train.main(arguments)
    monkeypatch.undo()
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    if when == "while the data is made":
        assert "run the same command again" in str(stopped.value)
        pwslib.train.main(arguments)  # the advice works
    else:
        assert f"--out {folder} --resume" in str(stopped.value)
        pwslib.train.main(["--out", str(folder), "--resume"])
    assert (folder / "metrics.json").exists()
