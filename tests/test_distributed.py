import pytest
import torch

from pwslib.distributed import setup_distributed


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
