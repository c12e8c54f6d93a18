"""What every command line shares: flag values checked where they are parsed (one line naming the flag, before any
folder is made), sets that refuse repeats, and ``--set KEY=VALUE`` config overrides."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pwslib.io import DataError


def _flag_value(text: str, convert, valid, what: str):
    """``text`` converted by ``convert`` and accepted by ``valid``, else argparse's one-line error saying ``what``."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """``--time-budget``, ``--checkpoint-every``: a finite, positive number of seconds."""
    return _flag_value(text, float, lambda v: math.isfinite(v) and v > 0, "a finite, positive number of seconds")


def positive_whole(text: str) -> int:
    """``--threads``, ``--workers``: a whole number >= 1."""
    return _flag_value(text, int, lambda v: v >= 1, "a whole number of at least 1")


def refuse_repeats(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """A table's seeds, rows and datasets are sets: a value given twice would count one run twice in its mean and
    in Welch's test, so ``parser`` stops with one line naming the flag."""
    for name in names:
        values = getattr(args, name) or []
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            parser.error(f"--{name.replace('_', '-')} repeats {', '.join(repeated)}: give each value once")


def output_folder(text: str) -> Path:
    """``--out``: refused when empty (an unset shell variable would train into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a folder for the run, e.g. --out runs/ours_s0")
    return Path(text)


def parse_overrides(pairs: list[str]) -> dict:
    """``["class_union=noisy_or", "points_per_class=3"]`` -> typed values (JSON where it parses)."""
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise DataError(f"--set takes KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values
