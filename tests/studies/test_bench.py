from pathlib import Path

import pytest
import torch
from conftest import SMALL_TOY

from studies.bench import (
    inference_speeds,
    interleaved,
    loader_throughput,
    matmul_peak,
    native_precision_speeds,
    precision_speeds,
    precision_table,
    step_profile,
    training_step_flops,
)
from pwslib.config import config_for
from pwslib.train import Trainer


@pytest.fixture
def trainer(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for(
        "ours", batch_size=4, iterations=100, toy_options=SMALL_TOY, embedding_dim=32, pretrained_backbone=False
    )
    return Trainer(config, Path(tmp_path), progress=False)


def test_benchmark_measurements_run(trainer):
    assert loader_throughput(trainer, 2) > 0
    profile = step_profile(trainer, steps=2)
    assert all(value >= 0 for name, value in profile.items() if name != "forward: heads (class, mask, keypoint, pixel classifier)")
    assert {"forward: backbone", "forward: pixel decoder", "backward (all parts)", "criterion: costs + Hungarian matching"} <= set(profile)
    assert profile["forward: backbone"] > 0 and profile["backward (all parts)"] > 0
    assert not trainer.model.backbone._forward_hooks  # the hooks are removed again
    whole, network = inference_speeds(trainer, None, rounds=1)
    assert set(whole) == {"pwslib batch 64", "pwslib single"} and set(network) == {"pwslib batch 64"}
    assert min(whole.values()) > 0 and network["pwslib batch 64"] > 0
    assert trainer.model.training  # back in training mode
    assert matmul_peak(torch.float32, size=128, repeats=2) > 0


def test_a_training_step_counts_its_flops(trainer):
    flops = training_step_flops(trainer)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    assert flops > 2 * parameters * trainer.config.batch_size  # every weight is used at least once per image


def test_interleaved_rounds_report_a_median_per_contender():
    calls = []
    speeds = interleaved(
        {"a": lambda n: calls.append("a") or 1.0, "b": lambda n: calls.append("b") or 2.0}, 3, 4, 8
    )
    assert speeds == {"a": 32.0, "b": 16.0}
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up, then alternating rounds


def test_the_hugging_face_peer_trains_and_infers_at_the_same_size(trainer):
    pytest.importorskip("transformers")
    from studies.bench import HuggingFacePeer

    peer = HuggingFacePeer(trainer)
    ours = sum(p.numel() for p in trainer.model.parameters())
    assert 0.5 < peer.parameters / ours < 2
    assert peer.steps(1) > 0
    whole, network = inference_speeds(trainer, peer, rounds=1)
    assert {"transformers MaskFormer batch 64"} <= set(whole) & set(network)


def test_the_precision_comparison_measures_both_and_names_the_kernels(trainer, monkeypatch):
    import studies.bench

    measured = precision_speeds(trainer.config, rounds=1, steps=1)
    assert measured["float32"] > 0 and measured["bfloat16"] > 0
    assert measured["bfloat16_over_float32"] == pytest.approx(measured["bfloat16"] / measured["float32"])
    assert measured["kernels"] == torch.backends.cpu.get_cpu_capability()
    table = precision_table({"this process": {**measured, "native": False, "kernels": "AVX2"}})
    assert "| this process (AVX2 kernels, bfloat16 emulated) |" in table
    monkeypatch.setattr(studies.bench, "native_bfloat16", lambda: False)
    monkeypatch.setattr(studies.bench, "cpu_flags", lambda: set())
    assert native_precision_speeds(1, 1, 1) is None  # no bfloat16 in the CPU: nothing more to measure
    monkeypatch.setattr(studies.bench, "native_bfloat16", lambda: True)
    monkeypatch.setattr(studies.bench, "cpu_flags", lambda: {"amx_bf16"})
    assert native_precision_speeds(1, 1, 1) is None  # this process already used the native kernels
