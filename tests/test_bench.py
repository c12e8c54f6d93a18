from pathlib import Path

from conftest import SMALL_TOY

from pwslib.bench import inference_throughput, loader_throughput, training_throughput
from pwslib.config import config_for
from pwslib.train import Trainer


def test_benchmark_measurements_run(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    config = config_for("ours", batch_size=4, iterations=100, toy_options=SMALL_TOY, embedding_dim=32)
    trainer = Trainer(config, Path(tmp_path), progress=False)
    assert loader_throughput(trainer, 2) > 0
    measured = training_throughput(trainer, warmup=1, steps=2)
    assert 0 < measured["cost_and_matching_share"] < 1 and measured["train_images_per_second"] > 0
    assert inference_throughput(trainer, 2, 4) > 0
