"""Readers and converters of the real benchmarks, on small fixtures in their exact formats."""

import hashlib
import http.server
import threading
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from pwslib.data.real import (
    Archive,
    coco_stuff_lookup,
    convert_ade20k,
    convert_ade_label,
    convert_coco_stuff_10k,
    download,
    read_coco_stuff_mat,
    verify_archive,
)
from pwslib.data.splits import real_benchmark_split
from pwslib.io import DataError

COCO_NAMES = real_benchmark_split("coco_stuff_10k").class_names
ADE_NAMES = real_benchmark_split("ade20k").class_names


def coco_raw():
    """A 4x5 map of 1-based COCO-Stuff ids: person, stop sign, banner, wood, unlabeled, unused id 12."""
    raw = np.zeros((4, 5), dtype=np.uint8)
    raw[0, 0], raw[0, 1], raw[1, 0], raw[1, 1], raw[2, 2], raw[3, 4] = 1, 13, 92, 182, 0, 12
    return raw


def write_hdf5_mat(path, raw):
    """MATLAB v7.3: an HDF5 file behind a 512-byte header, arrays stored column-major (transposed)."""
    with h5py.File(path, "w", userblock_size=512) as mat:
        mat.create_dataset("S", data=raw.T)
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64")


def write_v11_mat(path, raw):
    """COCO-Stuff-10K v1.1: MATLAB v5, ``S`` stored as double, ``names`` with the 182 class names."""
    savemat(path, {"S": raw.astype(np.float64), "names": np.array([f"class{i}" for i in range(1, 183)], dtype=object)})


def test_coco_stuff_mat_maps_known_classes(tmp_path):
    path = tmp_path / "x.mat"
    write_v11_mat(path, coco_raw())
    label = read_coco_stuff_mat(path)
    assert label.shape == (4, 5)
    assert COCO_NAMES[label[0, 0]] == "person"
    assert COCO_NAMES[label[0, 1]] == "stop sign"
    assert COCO_NAMES[label[1, 0]] == "banner"
    assert COCO_NAMES[label[1, 1]] == "wood" and label[1, 1] == 170
    assert label[2, 2] == 255 and label[3, 4] == 255  # unlabeled and an unused id are ignored


def test_coco_lookup_is_a_bijection_onto_171_classes():
    table = coco_stuff_lookup()
    used = table[table != 255]
    assert sorted(used.tolist()) == list(range(171))


def test_coco_stuff_v1_0_annotations_are_refused(tmp_path):
    write_hdf5_mat(tmp_path / "hdf5.mat", coco_raw())
    with pytest.raises(DataError, match="looks like COCO-Stuff-10K v1.0 .a MATLAB v7.3 / HDF5 file"):
        read_coco_stuff_mat(tmp_path / "hdf5.mat")
    names = np.array([f"class{i}" for i in range(172)], dtype=object)
    savemat(tmp_path / "v10.mat", {"S": coco_raw().astype(np.float64), "names": names})
    with pytest.raises(DataError, match="172 class names, not 182.*cocostuff-10k-v1.1.zip"):
        read_coco_stuff_mat(tmp_path / "v10.mat")


def test_coco_mat_without_field_s_or_not_a_mat(tmp_path):
    savemat(tmp_path / "a.mat", {"L": coco_raw()})
    with pytest.raises(DataError, match="no field 'S'"):
        read_coco_stuff_mat(tmp_path / "a.mat")
    (tmp_path / "b.mat").write_bytes(b"garbage" * 10)
    with pytest.raises(DataError, match="not a readable .mat"):
        read_coco_stuff_mat(tmp_path / "b.mat")


def test_convert_coco_stuff_10k_folder(tmp_path):
    src, out = tmp_path / "cocostuff-10k", tmp_path / "out"
    for sub in ("images", "annotations", "imageLists"):
        (src / sub).mkdir(parents=True)
    for subset, name in (("train", "COCO_train2014_000000000077"), ("test", "COCO_train2014_000000000078")):
        Image.fromarray(np.full((4, 5, 3), 128, dtype=np.uint8)).save(src / "images" / f"{name}.jpg")
        write_v11_mat(src / "annotations" / f"{name}.mat", coco_raw())
        (src / "imageLists" / f"{subset}.txt").write_text(name + "\n")
    assert convert_coco_stuff_10k(src, out, progress=False) == {"train": 1, "test": 1}
    label = np.asarray(Image.open(out / "labels/train/COCO_train2014_000000000077.png"))
    assert np.array_equal(label, read_coco_stuff_mat(src / "annotations/COCO_train2014_000000000077.mat"))
    assert (out / "images/test/COCO_train2014_000000000078.jpg").exists()
    # a second run resumes: nothing to redo, outputs untouched
    stamp = (out / "labels/train/COCO_train2014_000000000077.png").stat().st_mtime_ns
    convert_coco_stuff_10k(src, out, progress=False)
    assert (out / "labels/train/COCO_train2014_000000000077.png").stat().st_mtime_ns == stamp


def test_ade_label_shift():
    label = convert_ade_label(np.array([[0, 1, 150]], dtype=np.uint8))
    assert label.tolist() == [[255, 0, 149]]
    assert ADE_NAMES[0] == "wall" and ADE_NAMES[149] == "flag"
    with pytest.raises(DataError, match="expected 0..150"):
        convert_ade_label(np.array([[151]], dtype=np.uint8))


def test_convert_ade20k_folder(tmp_path):
    src, out = tmp_path / "ADEChallengeData2016", tmp_path / "out"
    for original in ("training", "validation"):
        (src / "images" / original).mkdir(parents=True)
        (src / "annotations" / original).mkdir(parents=True)
        name = f"ADE_{original}_00000001"
        Image.fromarray(np.zeros((3, 4, 3), dtype=np.uint8)).save(src / "images" / original / f"{name}.jpg")
        Image.fromarray(np.array([[0, 1, 2, 3]] * 3, dtype=np.uint8)).save(
            src / "annotations" / original / f"{name}.png"
        )
    assert convert_ade20k(src, out, progress=False) == {"train": 1, "test": 1}
    label = np.asarray(Image.open(out / "labels/test/ADE_validation_00000001.png"))
    assert label[0].tolist() == [255, 0, 1, 2]


def test_missing_annotations_are_an_empty_split(tmp_path):
    with pytest.raises(DataError, match="split is empty"):
        convert_ade20k(tmp_path, tmp_path / "out", progress=False)


def _zip(path, payload=b"hello" * 1000):
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("member.txt", payload)
    return path


def test_verify_archive_checks_sha1_or_zip_crcs(tmp_path):
    path = _zip(tmp_path / "a.zip")
    good = hashlib.sha1(path.read_bytes()).hexdigest()
    verify_archive(path, Archive("", "a.zip", good, 0))
    with pytest.raises(DataError, match="damaged"):
        verify_archive(path, Archive("", "a.zip", "0" * 40, 0))
    verify_archive(path, Archive("", "a.zip", None, 0))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match="not a complete zip"):
        verify_archive(path, Archive("", "a.zip", None, 0))


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_resumes_a_partial_file_and_verifies_it(tmp_path):
    archive_bytes = _zip(tmp_path / "source.zip", payload=np.random.default_rng(0).bytes(200_000)).read_bytes()
    _RangeHandler.payload = archive_bytes
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        folder = tmp_path / "downloads"
        folder.mkdir()
        (folder / "a.zip.part").write_bytes(archive_bytes[:70_000])  # an interrupted earlier download
        archive = Archive(
            f"http://127.0.0.1:{server.server_port}/a.zip",
            "a.zip",
            hashlib.sha1(archive_bytes).hexdigest(),
            len(archive_bytes),
        )
        path = download(archive, folder, progress=False)
        assert path.read_bytes() == archive_bytes and not (folder / "a.zip.part").exists()
    finally:
        server.shutdown()


def _coco_archive(path, name="COCO_train2014_000000000077"):
    """A zip laid out like cocostuff-10k-v1.1.zip, with one image in each subset."""
    import io

    from scipy.io import savemat as save

    with zipfile.ZipFile(path, "w") as bundle:
        image = io.BytesIO()
        Image.fromarray(np.full((4, 5, 3), 128, dtype=np.uint8)).save(image, format="JPEG")
        annotation = io.BytesIO()
        names = np.array([f"class{i}" for i in range(1, 183)], dtype=object)
        save(annotation, {"S": coco_raw().astype(np.float64), "names": names})
        bundle.writestr(f"images/{name}.jpg", image.getvalue())
        bundle.writestr(f"annotations/{name}.mat", annotation.getvalue())
        for subset in ("train", "test"):
            bundle.writestr(f"imageLists/{subset}.txt", name + "\n")
    return path


def test_a_hand_placed_archive_is_verified_and_a_replaced_one_is_extracted_again(tmp_path, monkeypatch):
    import pwslib.data.real as real
    from pwslib.data.real import prepare_benchmark

    monkeypatch.setitem(real.ARCHIVES, "coco_stuff_10k", Archive("http://127.0.0.1:9/none", "coco.zip", None, 0))
    downloads = tmp_path / "data" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "coco.zip").write_text("not a zip, just named like one")
    with pytest.raises(DataError, match="coco.zip is not a complete zip archive"):
        prepare_benchmark("coco_stuff_10k", tmp_path / "data", progress=False)
    _zip(downloads / "coco.zip")  # a valid zip with the wrong layout
    with pytest.raises(DataError, match="imageLists/train.txt is missing"):
        prepare_benchmark("coco_stuff_10k", tmp_path / "data", progress=False)
    _coco_archive(downloads / "coco.zip")  # the right archive, put in the same place
    out = prepare_benchmark("coco_stuff_10k", tmp_path / "data", progress=False)
    assert (out / "labels" / "train" / "COCO_train2014_000000000077.png").exists()
    assert not (downloads / "coco_stuff_10k_extracted" / "member.txt").exists()  # the wrong archive's files are gone
