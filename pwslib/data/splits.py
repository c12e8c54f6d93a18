"""Class lists and base/novel splits of every benchmark.

The real benchmarks' splits (COCO-Stuff-10K: 128 base / 43 novel; ADE20K-150: 112 base / 38 novel)
ship with the package in ``benchmark_splits.json``; the toy presets define theirs in ``toy.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pwslib.io import DataError

IGNORE_INDEX = 255


@dataclass(frozen=True)
class ClassSplit:
    """Names of all classes and which of them are novel. Class ids are indices into ``class_names``."""

    class_names: tuple[str, ...]
    novel_classes: tuple[int, ...]

    def __post_init__(self):
        num = len(self.class_names)
        if num == 0:
            raise DataError("a class split needs at least one class")
        if num >= IGNORE_INDEX:
            raise DataError(f"{num} classes do not fit below the ignore id {IGNORE_INDEX}")
        unknown = [c for c in self.novel_classes if not 0 <= c < num]
        if unknown:
            raise DataError(f"the split names unknown class ids {unknown}; valid ids are 0..{num - 1}")
        if len(set(self.novel_classes)) != len(self.novel_classes):
            raise DataError(f"the split lists a novel class twice: {sorted(self.novel_classes)}")
        if not self.novel_classes or len(self.novel_classes) == num:
            raise DataError("a split needs at least one base and one novel class")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def base_classes(self) -> tuple[int, ...]:
        novel = set(self.novel_classes)
        return tuple(c for c in range(self.num_classes) if c not in novel)

    def is_novel_table(self) -> list[bool]:
        """``table[c]`` is True when class ``c`` is novel."""
        novel = set(self.novel_classes)
        return [c in novel for c in range(self.num_classes)]


@lru_cache(maxsize=None)
def _benchmark_file() -> dict:
    return json.loads((Path(__file__).with_name("benchmark_splits.json")).read_text())


def real_benchmark_split(benchmark: str, split: int = 1) -> ClassSplit:
    """The published split ``split`` (1-4) of ``coco_stuff_10k`` or ``ade20k``."""
    table = _benchmark_file()
    if benchmark not in table or benchmark.startswith("_"):
        known = [k for k in table if not k.startswith("_")]
        raise DataError(f"unknown benchmark {benchmark!r}; known: {known}")
    entry = table[benchmark]
    if str(split) not in entry["novel_splits"]:
        raise DataError(f"{benchmark} has splits {sorted(entry['novel_splits'])}, not {split}")
    return ClassSplit(tuple(entry["class_names"]), tuple(entry["novel_splits"][str(split)]))
