"""Executed notebooks that cannot fall behind the files they show.

An executed notebook in ``reports/executed/`` prints numbers read from reports (the data card, the split checks,
the tables) and from runs. When one of those files is regenerated and the notebook is not, the learner reads two
stories. So the reproduction records, in each executed notebook's metadata (``FRESHNESS_KEY``), what it was made
from:

- the digest of the source notebook's cells (code and markdown, not outputs);
- the SHA-256 of every file under ``reports/`` and ``runs/`` the kernel opened, for reading or writing, caught by
  a Python audit hook (``record_opened_files``, PEP 578) that the notebook's ``setup`` installs when the
  reproduction asks for it (``READS_VARIABLE``), so no list of inputs is kept by hand;
- the commit and the preset.

``stale_reasons`` compares a record with the checkout: a changed source notebook or a changed or missing report
makes the executed copy stale. Runs are not committed, so a run file is compared only where it exists.
``python -m pwslib.reproduce --stale`` re-executes exactly the stale notebooks, and a test fails when a committed
executed notebook is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

from pwslib.io import CHECKOUT, DataError, file_sha256

FRESHNESS_KEY = "pwslib_freshness"  # the executed notebook's metadata entry
READS_VARIABLE = "PWSLIB_RECORD_READS"  # a log file: the kernel appends every recorded path to it
RECORDED_FOLDERS = ("reports", "runs")  # inputs are the files under these folders of the checkout
NOT_INPUTS = re.compile(r"(^|/)executed/")  # executed notebooks are outputs of the reproduction, not inputs
ATOMIC_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(\.[^./]*)?$")  # io.atomic_path's names


def source_digest(notebook: str | os.PathLike) -> str:
    """SHA-256 of a notebook's cells (type and source), blind to outputs, execution counts and metadata."""
    try:
        cells = json.loads(Path(notebook).read_text())["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{notebook} is not a readable notebook ({error})") from error
    text = json.dumps([[cell["cell_type"], "".join(cell["source"])] for cell in cells])
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_path(opened: str | os.PathLike, root: Path = CHECKOUT) -> str | None:
    """The checkout-relative path an opened file stands for, if it is an input worth recording: under
    ``RECORDED_FOLDERS``, not an executed notebook; an atomic write's temporary name stands for its final name."""
    path = Path(os.path.abspath(os.fsdecode(opened)))
    try:
        relative = path.relative_to(root)
    except ValueError:
        return None
    if not relative.parts or relative.parts[0] not in RECORDED_FOLDERS:
        return None
    temporary = ATOMIC_TEMPORARY.match(relative.name)
    if temporary:
        relative = relative.with_name(temporary["name"])
    text = relative.as_posix()
    return None if NOT_INPUTS.search(text) else text


def record_opened_files(log: str | os.PathLike, root: Path = CHECKOUT) -> None:
    """Append to ``log`` the checkout-relative path of every input file this process opens from now on
    (``sys.addaudithook``: the ``open`` event of ``open``, ``io.open`` and ``os.open``). The log is opened once,
    before the hook exists, so writing to it raises no event of its own."""
    handle = open(log, "a", buffering=1)
    seen: set[str] = set()

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = recorded_path(args[0], root)
        if path and path not in seen:
            seen.add(path)
            handle.write(path + "\n")

    sys.addaudithook(hook)


def freshness_record(source: Path, reads_log: Path, commit: str, preset: str, root: Path = CHECKOUT) -> dict:
    """What an executed notebook was made from: its source's digest and the digest of every input it opened
    that still exists (an atomic write's temporary file is gone; its final name is what was recorded)."""
    opened = sorted(set(Path(reads_log).read_text().split())) if Path(reads_log).exists() else []
    inputs = {path: file_sha256(root / path) for path in opened if (root / path).is_file()}
    return {"commit": commit, "preset": preset, "source_sha256": source_digest(source), "inputs": inputs}


def read_record(executed: str | os.PathLike) -> dict | None:
    """The freshness record of an executed notebook, or None when it carries none."""
    try:
        metadata = json.loads(Path(executed).read_text()).get("metadata", {})
    except (OSError, ValueError) as error:
        raise DataError(f"{executed} is not a readable notebook ({error})") from error
    return metadata.get(FRESHNESS_KEY)


def stale_reasons(executed: str | os.PathLike, source: str | os.PathLike, root: Path = CHECKOUT) -> list[str]:
    """Why the executed notebook ``executed`` no longer shows what ``source`` and the files it read would show
    today (empty: it is fresh). A run file missing here is skipped: runs are not committed."""
    record = read_record(executed)
    if record is None:
        return ["it carries no freshness record (executed before records were kept)"]
    reasons = []
    if record["source_sha256"] != source_digest(source):
        reasons.append(f"{Path(source).name} changed")
    for path, digest in sorted(record["inputs"].items()):
        file = root / path
        if not file.is_file():
            if not path.startswith("runs/"):
                reasons.append(f"{path} is gone")
        elif file_sha256(file) != digest:
            reasons.append(f"{path} changed")
    return reasons
