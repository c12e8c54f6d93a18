"""The reference results in one manifest: every table the README and the notebooks cite beyond the main job's, by one command.

    python -m studies.reference                       # train (or reuse) every table below, rewrite its report
    python -m studies.reference table1_split5         # only this one
    python -m studies.reference --list                # the command of each, without running anything

Each entry is the ``python -m pwslib.experiments`` command its report records (``tests/studies/test_reference.py``
reads it back from the report), so a report regenerated here is the one committed, with new provenance. The
held-out tables made at earlier defaults (splits 2, 3 and 4) are in ``reports/archive/`` with their commands.
``table1_quick_5000`` is the main job's Table 1 (split 1, seed 0) on both presets at 5,000 iterations, made when the
main job trained 3,000: how near the plateaus a longer main job would get, and what it costs (``reports/convergence.md``;
its 60 minutes of run time are why the main job now trains toy-stuff alone);
``table1_quick_pretraining_32000`` is the same Table 1 at 3,000 iterations from the 32,000-step backbone
(``reports/pretraining_saturation.md``) when it was not yet the default (made at commit ``3ab1b39``, where
``point_naive``'s click losses weighed 1): how near the plateaus it brought the main job. These three were made
before the defaults of reports/protocol.md's steps 14-15 (the 32,000-step backbone, ``point_naive``'s click
losses at 0.3): run here they train today's recipe; each report names the commit that makes it as committed.
"""

from __future__ import annotations

import argparse
import shlex

from pwslib.experiments import cli

# report name -> the arguments of `python -m pwslib.experiments` that wrote it (reports/protocol.md registered it)
REFERENCE = {
    "table1_split5": (
        "table1 --datasets toy-stuff toy-scene --split 5 --seeds 6 7 8 --iterations 3000 --rows point_naive "
        "full_supervision --name table1_split5 --workers 2 --threads 1 --runs-root runs"
    ),
    "table1_quick_5000": (
        "table1 --datasets toy-stuff toy-scene --iterations 5000 --rows point_naive full_supervision "
        "--name table1_quick_5000 --workers 2 --threads 1 --runs-root runs/quick_5000"
    ),
    "table1_quick_pretraining_32000": (
        "table1 --datasets toy-stuff toy-scene --iterations 3000 --rows point_naive full_supervision "
        "--set pretraining_steps=32000 --name table1_quick_pretraining_32000 --workers 2 --threads 1 "
        "--runs-root runs/quick_pretraining_32000"
    ),
}


def command(name: str) -> str:
    """The shell command of the reference table ``name``."""
    return f"python -m pwslib.experiments {REFERENCE[name]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these tables, of {list(REFERENCE)}")
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in REFERENCE]
    if unknown:
        parser.error(f"unknown reference tables {unknown}; choose from {list(REFERENCE)}")
    for name in args.names or list(REFERENCE):
        if args.list:
            print(command(name))
        else:
            print(f"== {name}: {command(name)}", flush=True)
            cli.main(shlex.split(REFERENCE[name]))


if __name__ == "__main__":
    main()
