import dataclasses
import os

import pytest
import torch

import pwslib.distributed as distributed_module
from pwslib.config import config_for
from pwslib.distributed import free_memory, resolve_precision, setup_distributed
from pwslib.io import DataError


def test_more_processes_than_gpus_is_a_clear_error_before_joining_the_group(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match="local rank 1 has no GPU of its own.*CUDA_VISIBLE_DEVICES"):
        setup_distributed()


def test_a_single_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    distributed = setup_distributed()
    assert (distributed.rank, distributed.world_size, distributed.device.type) == (0, 1, "cpu")


def test_auto_precision_falls_back_to_float32_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(distributed_module, "native_bfloat16", lambda: False)
    assert resolve_precision("auto") == "float32"
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert resolve_precision("bfloat16") == "bfloat16"  # asked for: emulated, with a warning
    assert resolve_precision("float32") == "float32"


def test_auto_precision_is_bfloat16_on_a_gpu_that_computes_it_and_float32_on_every_cpu(monkeypatch):
    monkeypatch.setattr(distributed_module, "native_bfloat16", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU with AMX: measured no faster
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    assert resolve_precision("float32") == "float32"


def test_the_run_key_holds_the_precision_asked_for_not_the_machines(monkeypatch):
    keys = {}
    for native in (False, True):
        monkeypatch.setattr(distributed_module, "native_bfloat16", lambda: native)
        config = config_for("ours")
        assert config.precision == "auto"
        keys[native] = config.key()
    assert keys[False] == keys[True]
    assert config_for("ours", precision="float32").key() != config_for("ours", precision="bfloat16").key()
    assert config_for("ours", precision="float32").key() != config_for("ours").key()
    with pytest.raises(DataError, match="unknown precision"):
        config_for("ours", precision="half")


def test_the_model_computes_in_the_precision_resolved_on_this_machine(monkeypatch):
    from pwslib.assembly import build_model

    monkeypatch.setattr(distributed_module, "native_bfloat16", lambda: False)
    config = config_for("ours", embedding_dim=16, backbone_widths=(8, 16, 16, 16), pretrained_backbone=False)
    assert build_model(config, 4).config.precision == "float32"
    monkeypatch.setattr(distributed_module, "native_bfloat16", lambda: True)
    assert build_model(config, 4).config.precision == "float32"  # auto: float32 on a CPU
    assert build_model(dataclasses.replace(config, precision="bfloat16"), 4).config.precision == "bfloat16"


def test_native_bfloat16_reads_the_cpu_flags_and_the_instruction_set_torch_may_use(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(distributed_module, "cpu_flags", lambda: {"avx2", "fma"})
    assert not distributed_module.native_bfloat16()
    monkeypatch.setattr(distributed_module, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert distributed_module.native_bfloat16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert not distributed_module.native_bfloat16()


def test_free_memory_on_the_cpu_is_what_the_kernel_says_can_be_allocated():
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < free_memory(torch.device("cpu")) <= total
