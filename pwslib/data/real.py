"""COCO-Stuff-10K and ADE20K-150: download, verify, and convert to label PNGs (255 = ignore).

Both are converted into one layout, read by ``FolderSource``::

    <root>/images/{train,test}/<name>.jpg
    <root>/labels/{train,test}/<name>.png   # contiguous class ids, 255 = no label

- COCO-Stuff-10K (``cocostuff-10k-v1.1.zip``): ``annotations/<name>.mat`` holds field ``S`` with the
  182 COCO-Stuff ids (1-based, 0 = unlabeled); 11 thing ids are never used, and the remaining 171
  become the contiguous order 0..170 used by MaskFormer and mmsegmentation. Lists of train/test
  names are ``imageLists/{train,test}.txt``. Version 1.1 stores MATLAB v5 ``.mat`` files (``S`` as
  double, ``names`` with the 182 class names), read with ``scipy.io.loadmat`` as the dataset's own
  converter and mmsegmentation do. Version 1.0 (ids 1..172 with 1 = unlabeled, MATLAB v7.3 / HDF5 files,
  172 names) would pass a range check and be mapped wrongly, so it is refused with a clear message.
- ADE20K (``ADEChallengeData2016.zip``): ``annotations/{training,validation}/<name>.png`` with
  0 = other (ignore) and 1..150 the classes: 0 -> 255, others -1. ``validation`` is the test subset.

Every write is atomic and an existing output is skipped, so an interrupted conversion resumes.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from pwslib.data.splits import IGNORE_INDEX
from pwslib.io import DataError, atomic_path, write_text_atomic


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    sha1: str | None  # None where the publisher gives no checksum: the zip's CRCs are checked instead
    approximate_bytes: int


ARCHIVES = {
    "coco_stuff_10k": Archive(
        "http://calvin.inf.ed.ac.uk/wp-content/uploads/data/cocostuffdataset/cocostuff-10k-v1.1.zip",
        "cocostuff-10k-v1.1.zip",
        None,
        2_000_000_000,
    ),
    "ade20k": Archive(
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        "ADEChallengeData2016.zip",
        "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7",
        923_000_000,
    ),
}

# 1-based COCO ids that COCO-Stuff never uses (thing categories dropped from COCO).
COCO_STUFF_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)


def coco_stuff_lookup() -> np.ndarray:
    """(256,) uint8 table: 1-based COCO-Stuff id -> contiguous 0..170; 0, unused ids -> 255."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    used = [i for i in range(1, 183) if i not in COCO_STUFF_UNUSED_IDS]
    table[used] = np.arange(len(used), dtype=np.uint8)
    return table


def read_coco_stuff_mat(path: Path) -> np.ndarray:
    """The contiguous label map (H, W) uint8 of one COCO-Stuff-10K v1.1 annotation file."""
    wrong_version = (
        f"{path} looks like COCO-Stuff-10K v1.0 ({{why}}), whose ids (1..172, 1 = unlabeled) differ from v1.1's; "
        f"download cocostuff-10k-v1.1.zip with python data_scripts/coco_stuff_10k.py"
    )
    try:
        if _is_hdf5(path):
            raise DataError(wrong_version.format(why="a MATLAB v7.3 / HDF5 file; v1.1 uses MATLAB v5"))
        from scipy.io import loadmat

        mat = loadmat(path)
        raw = mat["S"]
    except DataError:
        raise
    except KeyError as error:
        raise DataError(f"{path} has no field 'S'; is it a COCO-Stuff-10K annotation?") from error
    except Exception as error:  # scipy raises many types (ValueError, MatReadError, OSError) for damaged files
        raise DataError(
            f"{path} is not a readable .mat file ({type(error).__name__}: {error}); extract it from the archive again"
        ) from error
    if "names" in mat and np.asarray(mat["names"]).size != 182:
        raise DataError(wrong_version.format(why=f"{np.asarray(mat['names']).size} class names, not 182"))
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.min() < 0 or raw.max() > 182 or not np.array_equal(raw, np.round(raw)):
        raise DataError(
            f"{path}: field 'S' must be a 2-D map of whole ids 0..182, got shape {raw.shape} with ids "
            f"{raw.min()}..{raw.max()}"
        )
    return coco_stuff_lookup()[raw.astype(np.int64)]


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    return b"\x89HDF\r\n\x1a\n" in head


def convert_ade_label(label: np.ndarray) -> np.ndarray:
    """ADE20K annotation (0 = other, 1..150) -> contiguous 0..149, 255 = ignore."""
    if label.max() > 150:
        raise DataError(f"ADE20K annotation has ids up to {int(label.max())}; expected 0..150")
    return np.where(label == 0, IGNORE_INDEX, label.astype(np.int64) - 1).astype(np.uint8)


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _read_list(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path} is missing; is the archive fully extracted?")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} lists no images: the split is empty")
    return names


def convert_coco_stuff_10k(extracted: Path, out_root: Path, progress: bool = True) -> dict[str, int]:
    """Convert an extracted ``cocostuff-10k-v1.1`` folder into ``out_root``; returns images per subset."""
    extracted = Path(extracted)
    counts = {}
    for subset in ("train", "test"):
        names = _read_list(extracted / "imageLists" / f"{subset}.txt")
        for name in tqdm(names, desc=f"COCO-Stuff-10K {subset}", disable=not progress):
            label_out = out_root / "labels" / subset / f"{name}.png"
            image_out = out_root / "images" / subset / f"{name}.jpg"
            if label_out.exists() and image_out.exists():
                continue
            image_in = extracted / "images" / f"{name}.jpg"
            if not image_in.exists():
                raise DataError(
                    f"{image_in} is listed in imageLists/{subset}.txt but missing; extract the archive again"
                )
            _copy(image_in, image_out)
            _save_png(label_out, read_coco_stuff_mat(extracted / "annotations" / f"{name}.mat"))
        counts[subset] = len(names)
    return counts


def convert_ade20k(extracted: Path, out_root: Path, progress: bool = True) -> dict[str, int]:
    """Convert an extracted ``ADEChallengeData2016`` folder into ``out_root``; returns images per subset."""
    extracted = Path(extracted)
    counts = {}
    for subset, original in (("train", "training"), ("test", "validation")):
        label_dir = extracted / "annotations" / original
        labels = sorted(label_dir.glob("*.png"))
        if not labels:
            raise DataError(f"{label_dir} holds no annotations: the {subset} split is empty; extract the archive again")
        for label_in in tqdm(labels, desc=f"ADE20K {subset}", disable=not progress):
            label_out = out_root / "labels" / subset / label_in.name
            image_out = out_root / "images" / subset / f"{label_in.stem}.jpg"
            if label_out.exists() and image_out.exists():
                continue
            image_in = extracted / "images" / original / f"{label_in.stem}.jpg"
            if not image_in.exists():
                raise DataError(f"{image_in} is missing for annotation {label_in}; extract the archive again")
            _copy(image_in, image_out)
            with Image.open(label_in) as annotation:
                _save_png(label_out, convert_ade_label(np.asarray(annotation)))
        counts[subset] = len(labels)
    return counts


CONVERTERS = {"coco_stuff_10k": convert_coco_stuff_10k, "ade20k": convert_ade20k}


def sha1_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_archive(path: Path, archive: Archive) -> None:
    """Check the archive's SHA-1 (when published) or every member's CRC; raise ``DataError`` if bad."""
    if archive.sha1 is not None:
        actual = sha1_of(path)
        if actual != archive.sha1:
            raise DataError(
                f"{path} has SHA-1 {actual}, expected {archive.sha1}: the download is damaged; "
                f"delete it and download again"
            )
        return
    try:
        with zipfile.ZipFile(path) as bundle:
            broken = bundle.testzip()
    except zipfile.BadZipFile as error:
        raise DataError(f"{path} is not a complete zip archive ({error}); delete it and download again") from error
    if broken is not None:
        raise DataError(f"{path}: member {broken} fails its CRC check; delete the archive and download again")


def download(archive: Archive, folder: Path, progress: bool = True) -> Path:
    """Download ``archive`` into ``folder``, resuming a partial ``.part`` file; verified before it is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    target, partial = folder / archive.filename, folder / (archive.filename + ".part")
    if target.exists():  # downloaded earlier, or put here by hand: verified either way (once per file version)
        marker = folder / f".{archive.filename}.verified"
        if not marker.exists() or marker.read_text() != _identity(target):
            verify_archive(target, archive)
            write_text_atomic(marker, _identity(target))
        return target
    start = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(archive.url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except OSError as error:
        raise DataError(
            f"cannot reach {archive.url} ({error}); download {archive.filename} by hand into {folder} "
            f"and run this again"
        ) from error
    with response:
        resumed = start and response.status == 206
        total = int(response.headers.get("Content-Length", 0)) + (start if resumed else 0)
        with (
            open(partial, "ab" if resumed else "wb") as handle,
            tqdm(
                total=total or None,
                initial=start if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=archive.filename,
                disable=not progress,
            ) as bar,
        ):
            while block := response.read(1 << 20):
                handle.write(block)
                bar.update(len(block))
    verify_archive(partial, archive)
    partial.replace(target)
    write_text_atomic(folder / f".{archive.filename}.verified", _identity(target))
    return target


def _identity(path: Path) -> str:
    """Size and modification time of a file: a new archive put in the same place has another identity."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def extract(archive_path: Path, folder: Path) -> None:
    """Unzip ``archive_path`` into ``folder``, skipped when a marker says this very archive was extracted.

    The marker holds the archive's identity and is written only after a complete extraction, so a
    failed extraction, or another archive put in place afterwards, is extracted again from scratch."""
    marker = folder.parent / f".{folder.name}.extracted"
    if marker.exists() and marker.read_text() == _identity(archive_path):
        return
    marker.unlink(missing_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    try:
        with zipfile.ZipFile(archive_path) as bundle:
            bundle.extractall(folder)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(
            f"{archive_path} could not be extracted ({type(error).__name__}: {error}); delete it and download it "
            f"again (or put the official archive there by hand)"
        ) from error
    write_text_atomic(marker, _identity(archive_path))


def prepare_benchmark(name: str, root: Path, download_dir: Path | None = None, progress: bool = True) -> Path:
    """Download, verify, extract and convert benchmark ``name`` into ``root/<name>``; resumable at every step."""
    if name not in ARCHIVES:
        raise DataError(f"unknown benchmark {name!r}; choose one of {sorted(ARCHIVES)}")
    root = Path(root)
    download_dir = Path(download_dir) if download_dir else root / "downloads"
    archive_path = download(ARCHIVES[name], download_dir, progress)
    extracted = download_dir / f"{name}_extracted"
    extract(archive_path, extracted)
    if name == "ade20k":
        extracted = extracted / "ADEChallengeData2016"
    counts = CONVERTERS[name](extracted, root / name, progress)
    if progress:
        print(f"{name}: {counts} images converted into {root / name}")
    return root / name
