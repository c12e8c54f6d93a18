"""Atomic file writes, checksummed checkpoints, the project's error type and run provenance.

Every checkpoint, report and cache file is written to a temporary file in the same folder and
moved into place with ``os.replace``, so an interrupted write never leaves a half file behind and
never destroys the previous version. A checkpoint (a run's, or an unfinished pretraining's) carries the
SHA-256 of its bytes, checked when it is read back.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np


# The repository this package runs from (its reports/, runs/, notebooks/); an installed copy has none of them.
CHECKOUT = Path(__file__).resolve().parents[1]


def report_header(title: str, source: str) -> str:
    """The opening of every generated report: its title and what writes it (``source``, e.g. a command in
    backticks); the report's own description and provenance follow on the same line."""
    return f"# {title}\n\nProduced by {source}; do not edit by hand. "


def default_data_root() -> Path:
    """``$PWSLIB_DATA``, else ``data/`` in the checkout, else ``~/.cache/pwslib``."""
    if os.environ.get("PWSLIB_DATA"):
        return Path(os.environ["PWSLIB_DATA"])
    if (CHECKOUT / "pyproject.toml").exists():
        return CHECKOUT / "data"
    return Path.home() / ".cache" / "pwslib"


def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask); mkstemp would give 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


class DataError(ValueError):
    """Bad input: the message names the file and how to fix it."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success move it over ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def byte_size(count: float) -> str:
    """``count`` bytes for a message: in GiB from 1 GiB up, else in MiB (``byte_size(3 * 2**29)`` is ``'1.5 GiB'``)."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


@contextlib.contextmanager
def one_line_errors(command: str) -> Iterator[None]:
    """Around a command's work: a DataError (bad input), an OSError (a file that cannot be read or written) or
    Ctrl-C ends the command with one line and a non-zero exit, never a traceback."""
    try:
        yield
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    except OSError as error:
        raise SystemExit(f"error: {command} could not use {error.filename or 'a file'} ({error.strerror})") from None
    except KeyboardInterrupt:
        raise SystemExit(f"{command} interrupted; nothing it had finished was lost (every write is atomic)") from None


def check_writable(folder: str | os.PathLike, fix: str) -> None:
    """Stop before any work when ``folder`` (created if missing) cannot take a new file; ``fix`` says how (e.g.
    the option that chooses the folder)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable."):
            pass
    except OSError as error:
        raise DataError(f"{folder} cannot be written ({error.strerror}); {fix}") from None


def read_json_or_set_aside(path: str | os.PathLike, default: Any) -> Any:
    """The JSON in ``path``, or ``default`` when it is missing; a damaged file is renamed ``<name>.damaged-<time>``
    with a warning, so that a record written after long work is never lost to it."""
    path = Path(path)
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        os.replace(path, aside)
        warnings.warn(f"{path} was not valid JSON; it was moved to {aside} and a new one is started")
        return default


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def save_figure(figure, path: str | os.PathLike, dpi: int = 90, close: bool = False) -> None:
    """A matplotlib ``figure`` written to ``path`` whole or not at all (``atomic_path``: an interrupted write leaves
    the previous file), in the format its suffix names; ``close`` frees it afterwards (scripts; a notebook shows it)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or None)
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order (not of a .npy header): the digest of cached and run arrays."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def save_array_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """The checkout's commit, or ``unknown``; ``+dirty`` when tracked files outside ``reports/`` have
    uncommitted changes (a reproduction rewrites the reports it produces, which does not make its code dirty)."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)reports"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine_description() -> str:
    """One line naming the machine a number was measured on."""
    import torch

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} cores{gpu}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()} "
        f"kernels), python {platform.python_version()}"
    )


def provenance(**extra: Any) -> dict[str, Any]:
    """Commit, machine and time of a measurement, plus whatever the caller adds (config, seeds...)."""
    return {
        "git_commit": git_commit(),
        "machine": machine_description(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        **extra,
    }


CHECKSUM_HEADER = b"pwslib-checkpoint sha256 "  # + 64 hex digits + newline, then the torch.save bytes


def read_checkpoint(path: Path) -> dict:
    """Read a file written by ``save_checkpoint``: check its SHA-256 (a flipped byte anywhere stops here, never
    reaches a score) and load it with ``weights_only=True``."""
    import torch

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"checkpoint {path} cannot be read ({error.strerror})") from error
    if not data.startswith(CHECKSUM_HEADER):
        raise DataError(
            f"checkpoint {path} carries no checksum: it was not written by pwslib's save_checkpoint, or its first "
            f"bytes are damaged; delete it to start the run over, or restore it from a copy"
        )
    header_end = data.find(b"\n")
    expected, payload = data[len(CHECKSUM_HEADER) : header_end].decode("ascii", "replace"), data[header_end + 1 :]
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise DataError(
            f"checkpoint {path} is damaged: its contents no longer match the checksum written with them (SHA-256 "
            f"{actual[:16]}... against {expected[:16]}...); delete it to start the run over, or restore it from a copy"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for foreign files
        raise DataError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); delete it "
            f"to start the run over, or restore it from a copy"
        ) from error
    if not isinstance(state, dict):
        raise DataError(f"{path} is not a pwslib checkpoint (it holds a {type(state).__name__})")
    return state


def save_checkpoint(path: Path, state: dict, how_to_resume: str = "resume with --resume") -> None:
    """Write ``state`` behind a SHA-256 header, atomically: a failed write (a full disk) leaves the previous
    checkpoint as it was (``read_checkpoint`` reads it back)."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(CHECKSUM_HEADER + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    except (OSError, RuntimeError) as error:
        free = byte_size(shutil.disk_usage(path.parent).free)
        kept = "the previous checkpoint is intact" if path.exists() else "no earlier checkpoint existed"
        raise DataError(
            f"could not write the checkpoint in {path.parent} ({type(error).__name__}: {error}); {free} free, "
            f"about {byte_size(len(payload))} needed; {kept}: free some space and {how_to_resume}"
        ) from error
