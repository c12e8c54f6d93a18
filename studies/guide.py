"""The README's results, written from the reports they cite (never typed by hand).

    python -m studies.guide           # rewrites the block between the README's checks markers

The block is every preregistered check so far (``analysis.PREREGISTERED_CHECKS``, ``reports/protocol.md``), one
row per check and preset, with both predictions' numbers and outcomes, the ones that missed as well as the ones
that held: (a) ``ours`` ahead of ``point_naive`` in hIoU beyond the seed noise, (b) ``ours`` at 0.9 of
``full_supervision``'s hIoU or more.
"""

from __future__ import annotations

import argparse

from pwslib.experiments.analysis import preregistered_checks
from pwslib.experiments.report import markdown_table
from pwslib.io import CHECKOUT, DataError, one_line_errors, write_text_atomic

ROOT = CHECKOUT
README = ROOT / "README.md"
CHECKS_BEGIN = "<!-- checks: written by `python -m studies.guide` from the four checks' tables -->"
CHECKS_END = "<!-- end of checks -->"


def checks_block(root=ROOT) -> str:
    """The README's table of every preregistered check (``analysis.preregistered_checks``), between its markers."""
    return "\n".join([CHECKS_BEGIN, "", markdown_table(preregistered_checks(root)).rstrip(), "", CHECKS_END])


def replace_block(text: str, block: str, begin: str = CHECKS_BEGIN, end: str = CHECKS_END) -> str:
    """``text`` with the part from ``begin`` to ``end`` replaced by ``block``."""
    if begin not in text or end not in text:
        raise ValueError(f"the README has no markers {begin!r} ... {end!r}")
    head, rest = text.split(begin, 1)
    return head + block + rest.split(end, 1)[1]


def guide_text(text: str) -> str:
    """``text`` (the README) with its checks block written from today's reports."""
    return replace_block(text, checks_block())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    with one_line_errors("the guide"):
        text = README.read_text()
        try:
            updated = guide_text(text)
        except ValueError as error:
            raise DataError(str(error)) from error
        write_text_atomic(README, updated)


if __name__ == "__main__":
    main()
