"""Simulate (or re-use) the point annotations of any benchmark's training subset.

python data_scripts/simulate_points.py --dataset toy-stuff --split 1 2 3 --points-per-class 1 3 5 10
"""

import argparse
from pathlib import Path

from pwslib.data import DATASETS, ensure_points
from pwslib.data.points import POINT_RULES, POINTS_PER_CLASS_CHOICES
from pwslib.io import check_writable, default_data_root, one_line_errors

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--dataset", required=True, choices=DATASETS)
parser.add_argument("--root", type=Path, default=None, help="data root (default: data/ in the checkout)")
parser.add_argument("--split", type=int, nargs="+", default=[1])
parser.add_argument("--points-per-class", type=int, nargs="+", default=[1], choices=POINTS_PER_CLASS_CHOICES)
parser.add_argument("--rule", default="uniform", choices=POINT_RULES)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with one_line_errors("the point simulation"):
    check_writable(args.root or default_data_root(), "choose a writable folder with --root")  # before any work
    for split in args.split:
        for k in args.points_per_class:
            print(ensure_points(args.dataset, split, k, args.rule, args.seed, root=args.root))
