"""Confident memory bank: per-novel-class prototypes weighted by co-occurrence confidence.

Object ambiguity of novel class c in an image with known classes A: ω = max_{a∈A, a≠c} P(a | c), with
P(a | c) from the training image-level labels; the confidence is 1 − ω. A boat that always sits on
water (P(water | boat) = 0.9) has confidence 0.1: its embeddings move the bank little and its
contrastive term counts little, because a click on a boat could as well teach "boat-and-water".

- ``ema``: prototype_c ← normalise(prototype_c + (1 − μ)·w·(z − prototype_c)), w the confidence; the
  first embedding of a class initialises its prototype.
- ``queue``: the last Q embeddings of each class with their confidences; the prototype is their
  normalised confidence-weighted mean.
L_ctl = mean over matched novel proposals of w · InfoNCE(z, prototypes, τ), over classes that have a
prototype. Under DDP the updates are gathered from every rank and applied in rank order, so every
rank holds the same bank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from pwslib.distributed import collective_device, is_distributed


def object_confidence(cooccurrence: torch.Tensor, classes: torch.Tensor, known_labels: torch.Tensor) -> torch.Tensor:
    """1 − max_{a ∈ A, a ≠ c} P(a | c).

    cooccurrence (C, C) with P(a | c) at [c, a]; classes (M,) the novel classes; known_labels (M, C) the
    known label set A of each one's image -> (M,) confidences in [0, 1].
    """
    rows = cooccurrence[classes]  # (M, C)
    others = known_labels.clone()
    others[torch.arange(len(classes)), classes] = False
    ambiguity = torch.where(others, rows, torch.zeros((), dtype=rows.dtype)).amax(1) if len(classes) else rows.sum(1)
    return 1 - ambiguity


class MemoryBank(nn.Module):
    def __init__(
        self,
        num_classes: int,
        dim: int,
        mode: str = "ema",
        momentum: float = 0.9,
        queue_size: int = 16,
        temperature: float = 0.1,
        use_confidence: bool = True,
    ):
        super().__init__()
        if mode not in ("ema", "queue"):
            raise ValueError(f"unknown prototype mode {mode!r}; choose 'ema' or 'queue'")
        self.mode, self.momentum, self.temperature, self.use_confidence = mode, momentum, temperature, use_confidence
        self.register_buffer("prototypes", torch.zeros(num_classes, dim))
        self.register_buffer("initialised", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("queue", torch.zeros(num_classes, queue_size if mode == "queue" else 0, dim))
        self.register_buffer("queue_weights", torch.zeros(num_classes, queue_size if mode == "queue" else 0))

    def contrastive_loss(
        self, embeddings: torch.Tensor, classes: torch.Tensor, confidence: torch.Tensor
    ) -> torch.Tensor:
        """Summed L_ctl of embeddings (M, D) of classes (M,) weighted by confidence (M,).

        Embeddings of a class without a prototype yet contribute nothing (0 when none has one)."""
        usable = self.initialised[classes]
        if not usable.any():
            return embeddings.sum() * 0.0
        z = F.normalize(embeddings[usable], dim=-1)
        logits = z @ self.prototypes.clone().T / self.temperature  # (M', C); a snapshot: update() follows
        logits = logits.masked_fill(~self.initialised[None], float("-inf"))
        weight = confidence[usable] if self.use_confidence else torch.ones_like(confidence[usable])
        loss = F.cross_entropy(logits, classes[usable], reduction="none")
        return (weight * loss).sum()

    @torch.no_grad()
    def update(self, embeddings: torch.Tensor, classes: torch.Tensor, confidence: torch.Tensor) -> None:
        """Add embeddings (M, D) of classes (M,) with confidences (M,), gathered over every rank."""
        embeddings, classes, confidence = _gather_all(
            F.normalize(embeddings.detach().float(), dim=-1), classes, confidence.detach().float()
        )
        if not self.use_confidence:
            confidence = torch.ones_like(confidence)
        for z, c, w in zip(embeddings, classes.tolist(), confidence):
            if self.mode == "ema":
                if not self.initialised[c]:
                    if w > 0:
                        self.prototypes[c] = z
                        self.initialised[c] = True
                    continue
                step = (1 - self.momentum) * w
                self.prototypes[c] = F.normalize(self.prototypes[c] + step * (z - self.prototypes[c]), dim=0)
            else:
                self.queue[c] = torch.roll(self.queue[c], 1, 0)
                self.queue_weights[c] = torch.roll(self.queue_weights[c], 1, 0)
                self.queue[c, 0], self.queue_weights[c, 0] = z, w
                total = self.queue_weights[c].sum()
                if total > 0:
                    self.prototypes[c] = F.normalize((self.queue_weights[c, :, None] * self.queue[c]).sum(0), dim=0)
                    self.initialised[c] = True


def _gather_all(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Concatenate each tensor's rows from every rank, in rank order (identity without DDP)."""
    if not is_distributed() or dist.get_world_size() == 1:
        return list(tensors)
    device, home = collective_device(), tensors[0].device
    tensors = [tensor.to(device) for tensor in tensors]
    count = torch.tensor([len(tensors[0])], dtype=torch.int64, device=device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    largest = max(1, int(max(c.item() for c in counts)))
    gathered = []
    for tensor in tensors:
        padded = torch.zeros((largest, *tensor.shape[1:]), dtype=tensor.dtype, device=device)
        padded[: len(tensor)] = tensor
        parts = [torch.zeros_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        gathered.append(torch.cat([part[: int(c.item())] for part, c in zip(parts, counts)]).to(home))
    return gathered
