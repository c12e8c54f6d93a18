"""Shared command line of the real-benchmark scripts: prepare the data, then simulate its points."""

from __future__ import annotations

import argparse
from pathlib import Path

from pwslib.data import ensure_points
from pwslib.data.points import POINT_RULES, POINTS_PER_CLASS_CHOICES
from pwslib.data.real import prepare_benchmark
from pwslib.io import check_writable, default_data_root, one_line_errors


def main(benchmark: str, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--root", type=Path, default=default_data_root(), help="where the converted data goes")
    parser.add_argument(
        "--download-dir",
        type=Path,
        default=None,
        help="where the archive is (or will be) downloaded; put a hand-downloaded archive here",
    )
    parser.add_argument("--split", type=int, nargs="+", default=[1], help="base/novel splits to simulate points for")
    parser.add_argument("--points-per-class", type=int, nargs="+", default=[1], choices=POINTS_PER_CLASS_CHOICES)
    parser.add_argument("--rule", default="uniform", choices=POINT_RULES)
    parser.add_argument("--seed", type=int, default=0, help="seed of the point simulation")
    args = parser.parse_args()
    with one_line_errors(f"the {benchmark} preparation"):
        check_writable(args.root, "choose a writable folder with --root")  # before any download or conversion
        prepare_benchmark(benchmark, args.root, args.download_dir)
        for split in args.split:
            for k in args.points_per_class:
                path = ensure_points(benchmark, split, k, args.rule, args.seed, root=args.root)
                print(f"points: {path}")
