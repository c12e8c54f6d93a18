"""The reference results in one manifest: every table the README and the notebooks cite beyond the main job's, by one command.

    python -m studies.reference                       # train (or reuse) every table below, rewrite its report
    python -m studies.reference table1_split6         # only this one
    python -m studies.reference --list                # the command of each, without running anything

Each entry is the ``python -m pwslib.experiments`` command its report records (``tests/studies/test_reference.py``
reads it back from the report), so a report regenerated here is the one committed, with new provenance. The
held-out tables made at earlier defaults (splits 2 to 5) and the main job's Table 1 at earlier schedules and
backbones are in ``reports/archive/`` with their commands.
"""

from __future__ import annotations

import argparse
import shlex

from pwslib.experiments import cli

# report name -> the arguments of `python -m pwslib.experiments` that wrote it (reports/protocol.md registered it)
REFERENCE = {
    "table1_split6": (
        "table1 --datasets toy-stuff toy-scene --split 6 --seeds 9 10 11 --iterations 5000 --rows point_naive "
        "full_supervision --name table1_split6 --workers 2 --threads 1 --runs-root runs"
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
