"""The learning-rate schedule every training loop uses: a linear warm-up, then poly or cosine decay.

Poly decay, lr · (1 − progress) ^ power, is DeepLab's (Chen et al., 2017) and Mask2Former's schedule; cosine,
lr · ½ (1 + cos(π progress)), is SGDR's (Loshchilov & Hutter, 2017) without restarts. The trainer, the backbone
pretraining and the data card's probes all call ``learning_rate_at``.
"""

from __future__ import annotations

import math

DECAYS = ("poly", "cosine")


def learning_rate_at(
    peak: float, progress: float, step: int = 0, warmup_steps: int = 0, decay: str = "poly", power: float = 0.9
) -> float:
    """The learning rate at ``progress`` (0 at the start, 1 at the end) of a schedule that peaks at ``peak``:
    ramped up linearly over the first ``warmup_steps`` steps (``step`` counts from 0), then decayed."""
    warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if decay == "cosine":
        return warmup * peak * 0.5 * (1 + math.cos(math.pi * progress))
    if decay != "poly":
        raise ValueError(f"unknown learning-rate decay {decay!r}; choose one of {DECAYS}")
    return warmup * peak * (1 - progress) ** power
