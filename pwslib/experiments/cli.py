"""``python -m pwslib.experiments <table>``: train (or reuse) the runs of one table and write it to reports/."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

import torch

from pwslib.command_line import parse_overrides
from pwslib.config import TrainConfig
from pwslib.data.summaries import UNSEPARATED_SHARE, unseparated_classes
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.experiments.analysis import class_iou, compare_to_ours
from pwslib.experiments.cluster import RayCluster
from pwslib.experiments.grid import run_grid
from pwslib.experiments.report import markdown_table, score_cells, write_table
from pwslib.experiments.schedules import Schedule
from pwslib.experiments.tables import (
    SECONDS_FULL_MASKS,
    SECONDS_PER_CLICK_ROUND,
    TABLES,
    annotation_budget_points,
    select_rows,
)
from pwslib.io import DataError, check_writable, save_figure
from pwslib.command_line import positive_seconds, positive_whole, refuse_repeats
from pwslib.viz.figures import annotation_budget_figure, table_chart

def main(argv: list[str] | None = None) -> None:
    """``python -m pwslib.experiments table1 --datasets toy-stuff --seeds 0 1 2 --iterations 1500 --name quality``"""
    parser = argparse.ArgumentParser(description="Train (or reuse) the runs of one table and write it to reports/.")
    parser.add_argument("table", choices=list(TABLES))
    parser.add_argument("--datasets", nargs="+", default=["toy-stuff"])
    parser.add_argument("--split", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=TrainConfig.iterations)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--runs-root", type=Path, default=Path("runs/tables"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--name", default=None, help="file name of the table (default: the table's name)")
    parser.add_argument("--threads", type=positive_whole, default=None)
    parser.add_argument("--workers", type=positive_whole, default=None, help="processes (default: $PWSLIB_WORKERS, else 1)")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="config fields of every run, e.g. precision=float32"
    )
    parser.add_argument(
        "--rows", nargs="+", default=None, metavar="ROW", help="only these rows (and the `ours` reference row)"
    )
    parser.add_argument(
        "--scored-on",
        choices=("test", "validation"),
        default="test",
        help="validation: score on the toy preset's validation images, the ones to tune on (default: test, to report)",
    )
    parser.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="train the runs as Ray tasks on the cluster whose head is at ADDRESS (host:port; without one: "
        "$RAY_ADDRESS, else a new local cluster), --threads CPUs each (default 1); the runs root must be shared",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_seconds, default=120.0, help="seconds between a run's checkpoints"
    )
    args = parser.parse_args(argv)
    refuse_repeats(parser, args, "seeds", "datasets", "rows")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, title = TABLES[args.table]
    try:
        selected = select_rows(rows(), args.rows) if args.rows else rows()
    except ValueError as error:
        parser.error(str(error))
    made = [folder for folder in (args.reports_dir, args.runs_root) if not folder.exists()]  # removed if refused
    try:
        schedule = Schedule(tuple(args.seeds), args.iterations, args.batch_size)
        check_writable(args.reports_dir, "choose a writable folder with --reports-dir")
        check_writable(args.runs_root, "choose a writable folder with --runs-root")
        results = run_grid(
            selected,
            args.datasets,
            args.split,
            schedule,
            args.runs_root,
            workers=args.workers,
            overrides=parse_overrides(args.set),
            scored_on=args.scored_on,
            cluster=None if args.ray is None else RayCluster(args.ray or None, args.threads or 1),
            checkpoint_every=args.checkpoint_every,
        )
    except (DataError, FloatingPointError) as error:
        for folder in made:
            with contextlib.suppress(OSError):  # only if still empty: a refused grid leaves nothing behind
                folder.rmdir()
        sys.exit(f"error: {error}")
    if results.empty:
        sys.exit(f"error: none of {args.datasets} is prepared (see above): nothing was trained and no table written")
    notes = (
        "\n" + "\n".join(compare_to_ours(results, d) for d in args.datasets) + "\n" if args.table == "table1" else ""
    )
    if args.scored_on == "validation":
        notes = "\nScored on the validation images (the ones to tune on), not on the test images.\n" + notes
    if args.table == "table3":
        unseparated = {d: unseparated_classes(d, args.split) for d in args.datasets if d in TOY_PRESETS}
        ious = class_iou(results, unseparated)
        if not ious.empty:
            notes += (
                "\nIoU of the novel classes with an unseparated partner (the data card's measure: at least "
                f"{UNSEPARATED_SHARE:.0f} % of their surroundings unlabelled in the base annotation), where a "
                "click is ambiguous and the confident bank is meant to help; mean ± std over seeds:\n\n"
                + markdown_table(ious)
                + "\n"
            )
    if args.table == "annotation_budget":
        figure = annotation_budget_figure(
            annotation_budget_points(results), f"split {args.split}, seeds {args.seeds}, {args.iterations} iterations"
        )
        figure_path = args.reports_dir / "figures" / f"{args.name or args.table}.png"
        save_figure(figure, figure_path, close=True)
        notes = (
            f"\nAnnotation seconds per image: full masks {SECONDS_FULL_MASKS} s, {SECONDS_PER_CLICK_ROUND} s per click "
            "per class (PASCAL VOC 2012 timings of Bearman et al., ECCV 2016; further clicks assumed to cost as much "
            f"as the first). Figure: `figures/{figure_path.name}`.\n"
        )
    if not results.empty and args.table != "annotation_budget":
        name = args.name or args.table
        figure = table_chart(score_cells(results), f"{title}: split {args.split}, seeds {args.seeds}, {args.iterations} iterations")
        figure_path = args.reports_dir / "figures" / f"{name}.png"
        save_figure(figure, figure_path, close=True)
        notes += f"\nChart: `figures/{figure_path.name}`.\n"
    command = "`python -m pwslib.experiments " + shlex.join(sys.argv[1:] if argv is None else argv) + "`"
    print(write_table(results, args.name or args.table, title, args.reports_dir, schedule, args.split, notes, command))
