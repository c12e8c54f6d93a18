"""Bad inputs and faults, tried one by one: writes ``reports/reliability.md`` (what was tried, what happened).

    python -m studies.reliability          # ~1 min on 2 cores, in a temporary folder

Each case builds a small toy benchmark (24 training images) in a temporary data root, breaks one thing
and calls the command a user would call (``pwslib.train.main``, ``pwslib.evaluate.main``, the toy and
point loaders). The outcome is the first line the user sees, whether it was a clear error (a
``DataError``-style message and a non-zero exit) or a traceback, and whether the files that were on
disk before are unchanged. The unit tests (``tests/``) check every case; this table shows the coverage.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Callable
from unittest import mock

import numpy as np

import pwslib.data.toy as toy
import pwslib.train as train_module
from pwslib.data import ensure_points
from studies.datacard import main as datacard_main
from pwslib.evaluate import main as evaluate_main
from pwslib.evaluate import validation_scores
from pwslib.experiments.cli import main as experiments_main
from pwslib.io import CHECKOUT, DataError, provenance, report_header, write_text_atomic
from pwslib.runs import run_lock
from pwslib.config import config_for
from pwslib.train import main as train_main
from pwslib.train import run as train_run

TINY = ["--iterations", "2", "--batch-size", "4", "--set", 'toy_options={"num_train": 24, "num_test": 8}']
NO_PRETRAINING = "pretrained_backbone=false"


def _train(*arguments: str) -> None:
    train_main(list(arguments))


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cases(work: Path) -> dict[str, Callable[[], None]]:
    """Case name -> a function that provokes it (the data root is already set up)."""

    def finished_run() -> Path:
        return work / "finished"

    def damage_toy(name: str, change: Callable[[np.ndarray], None]) -> Callable[[], None]:
        def case():
            folder = toy.load_toy("toy-stuff", 0, num_train=24, num_test=8, progress=False).folder
            array = np.load(folder / name)
            change(array)
            np.save(folder / name, array)
            toy._VERIFIED.clear()
            try:
                _train("--out", str(work / f"run-{name}"), *TINY, NO_PRETRAINING)
            finally:
                toy._VERIFIED.clear()
                shutil.rmtree(folder.parent)  # the next case regenerates a clean cache

        return case

    def zeros(array):
        array[0, :20] = 0

    def bad_label(array):
        array[0, 0, 0] = 200

    def truncated_checkpoint():
        folder = finished_run()
        broken = work / "truncated"
        broken.mkdir(exist_ok=True)
        for name in ("config.json", "checkpoint.pt"):
            data = (folder / name).read_bytes()
            (broken / name).write_bytes(data if name == "config.json" else data[: len(data) // 2])
        evaluate_main([str(broken)])

    def no_checkpoint():
        folder = work / "no-checkpoint"
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text((finished_run() / "config.json").read_text())
        evaluate_main([str(folder)])

    def resume_conflict():
        _train("--out", str(finished_run()), "--resume", "--method", "point_naive")

    def malformed_points():
        points = ensure_points("toy-stuff", num_train=24, num_test=8)
        content = json.loads(points.read_text())
        first = next(iter(content["images"]))
        content["images"][first]["points"].append([3.5, 2.0, 1])
        points.write_text(json.dumps(content))
        try:
            _train("--out", str(work / "run-points"), *TINY, NO_PRETRAINING)
        finally:
            points.unlink()

    def points_file_of_other_clicks():
        three = ensure_points("toy-stuff", points_per_class=3, num_train=24, num_test=8)
        one = three.with_name(three.name.replace("_k3_", "_k1_"))
        saved = one.read_bytes() if one.exists() else None
        shutil.copy(three, one)  # a 3-click file saved under the 1-click name
        try:
            _train("--out", str(work / "run-renamed-points"), *TINY, NO_PRETRAINING)
        finally:
            one.unlink()
            if saved is not None:
                one.write_bytes(saved)

    def data_card_into_an_unwritable_folder():
        (work / "not-a-folder").write_text("in the way")
        datacard_main(["--out", str(work / "not-a-folder" / "reports"), "--presets", "toy-stuff", "--minutes", "0.01"])

    def unwritable_out():
        (work / "a-file").write_text("in the way")
        _train("--out", str(work / "a-file" / "run"), *TINY, NO_PRETRAINING)

    def copy_of_finished(name: str) -> Path:
        copy = work / name
        shutil.copytree(finished_run(), copy, dirs_exist_ok=True)
        return copy

    def checkpoint_deleted_then_new_run():
        copy = copy_of_finished("no-checkpoint-finished")
        (copy / "checkpoint.pt").unlink()
        _train("--out", str(copy), *TINY, NO_PRETRAINING)

    def second_process_on_the_same_out():
        copy = copy_of_finished("locked")
        with run_lock(copy):  # the first process, training into it
            _train("--out", str(copy), "--resume")

    def flipped_checkpoint_bytes():
        copy = copy_of_finished("flipped")
        data = bytearray((copy / "checkpoint.pt").read_bytes())
        middle = len(data) // 2
        data[middle : middle + 20_000] = bytes(b ^ 0x5A for b in data[middle : middle + 20_000])
        (copy / "checkpoint.pt").write_bytes(bytes(data))
        evaluate_main([str(copy)])

    def stopped_run(name: str, method: str = "ours") -> Path:
        """A run of ``method`` stopped after 3 of its 4 steps (``keypoint_pseudo``: in its second stage)."""
        folder = work / name
        config = config_for(
            method, iterations=4, batch_size=4, toy_options={"num_train": 24, "num_test": 8}, pretrained_backbone=False
        )
        if not (folder / "checkpoint.pt").exists():
            train_run(config, folder, progress=False, stop_after=3)
        return folder

    def resume_damaged(name: str, damage: Callable[[Path], None], method: str = "ours") -> Callable[[], None]:
        def case():
            folder = stopped_run(name, method)
            damage(folder)
            _train("--out", str(folder), "--resume")

        return case

    def overwrite_pseudo_labels(folder: Path) -> None:
        labels = np.load(folder / "pseudo_labels.npy")
        np.save(folder / "pseudo_labels.npy", np.zeros_like(labels))

    def edit_points(change: Callable[[dict], None], name: str) -> Callable[[], None]:
        def case():
            points = ensure_points("toy-stuff", num_train=24, num_test=8)
            saved = points.read_bytes()
            content = json.loads(saved)
            change(content)
            points.write_text(json.dumps(content))
            try:
                _train("--out", str(work / name), *TINY, NO_PRETRAINING)
            finally:
                points.write_bytes(saved)

        return case

    def novel_clicks(content: dict) -> tuple[str, list]:
        """The first image with a novel click and that click (split 1's novel classes, from the file's meta)."""
        novel = set(content["meta"]["novel_classes"])
        for image, entry in content["images"].items():
            for point in entry["points"]:
                if point[2] in novel:
                    return image, point
        raise AssertionError("no novel click in the points file")

    def drop_novel_clicks(content: dict) -> None:
        image, click = novel_clicks(content)
        entry = content["images"][image]
        entry["points"] = [p for p in entry["points"] if p[2] != click[2]]

    def repeat_a_click(content: dict) -> None:
        image, click = novel_clicks(content)
        content["images"][image]["points"] += [click] * 50

    def data_root_is_a_file():
        (work / "root-file").write_text("in the way")
        os.environ["PWSLIB_DATA"] = str(work / "root-file")
        try:
            _train("--out", str(work / "run-root-file"), *TINY, NO_PRETRAINING)
        finally:
            os.environ["PWSLIB_DATA"] = str(work / "data")

    def toy_record_of_the_wrong_type():
        folder = toy.load_toy("toy-stuff", 0, num_train=24, num_test=8, progress=False).folder
        saved = (folder / "meta.json").read_bytes()
        (folder / "meta.json").write_text("[]")
        toy._VERIFIED.clear()
        try:
            _train("--out", str(work / "run-meta"), *TINY, NO_PRETRAINING)
        finally:
            (folder / "meta.json").write_bytes(saved)
            toy._VERIFIED.clear()

    def room_for_two_images():
        measured = []
        estimate = train_module.Trainer.step_memory

        def recording(trainer):
            measured.append(estimate(trainer))
            return measured[-1]

        def free(device):  # what free_memory would say on a machine with room for 2.5 images' activations
            return measured[-1].fixed + 2 * measured[-1].per_image + measured[-1].per_image // 2

        with mock.patch.object(train_module.Trainer, "step_memory", recording), mock.patch.object(train_module, "free_memory", free):
            _train("--out", str(work / "run-memory"), *TINY, NO_PRETRAINING)

    def table(*arguments: str, workers: str | None = None) -> Callable[[], None]:
        def case():
            with mock.patch.dict(os.environ, {} if workers is None else {"PWSLIB_WORKERS": workers}):
                experiments_main(["table1", "--runs-root", str(work / "table-runs"), "--reports-dir",
                                  str(work / "table-reports"), *arguments])

        return case

    def damaged_metrics_then_validation_scores():
        copy = copy_of_finished("damaged-metrics")
        (copy / "metrics.json").write_text('{"hiou": 1.0}')
        validation_scores(copy)  # what a table scored on validation images reads

    def flag(*arguments: str) -> Callable[[], None]:
        folder = work / ("flag" + "".join(c if c.isalnum() else "-" for c in "".join(arguments)))
        return lambda: _train("--out", str(folder), *TINY, NO_PRETRAINING, *arguments)

    return {
        "`--iterations 0`": ("config value", flag("--iterations", "0")),
        "`--set iterations=-5`": ("config value", lambda: _train("--out", str(work / "r2"), "--set", "iterations=-5")),
        "`--set learning_rate=abc`": ("config value", flag("--set", "learning_rate=abc")),
        "`--set learning_rate=Infinity`": ("config value", flag("--set", "learning_rate=Infinity")),
        "`--set temperature=NaN`": ("config value", flag("--set", "temperature=NaN")),
        "`--seed 99999999999`": ("config value", flag("--seed", "99999999999")),
        "`--set crop_size=50`": ("config value", flag("--set", "crop_size=50")),
        "`--set backbone_widths=null`": ("config value", flag("--set", "backbone_widths=null")),
        "`--batch-size 0`": ("config value", flag("--batch-size", "0")),
        "`--set method=full_supervision`": ("config value", lambda: _train("--out", str(work / "r5"), "--set", "method=x")),
        "`--set class_union=union`": ("config value", flag("--set", "class_union=union")),
        "`toy_options` `num_train: 0`": ("config value", flag("--set", 'toy_options={"num_train": 0}')),
        "`toy_options` `size: 100`": ("config value", flag("--set", 'toy_options={"size": 100}')),
        "unknown `toy_options` key": ("config value", flag("--set", 'toy_options={"images": 3}')),
        "`--threads 0`": ("command-line flag", flag("--threads", "0")),
        "`--checkpoint-every inf`": ("command-line flag", flag("--checkpoint-every", "inf")),
        "`--time-budget nan`": ("command-line flag", flag("--time-budget", "nan")),
        "`--out ''` (an unset shell variable)": ("finished work", lambda: _train("--out", "", *TINY, NO_PRETRAINING)),
        "a finished run whose checkpoint was deleted, trained into again": ("finished work", checkpoint_deleted_then_new_run),
        "a second process on the same `--out`": ("finished work", second_process_on_the_same_out),
        "`--resume` with a conflicting `--method`": ("finished work", resume_conflict),
        "`--resume` on a mistyped folder (no run there)": ("finished work", lambda: _train("--out", str(work / "typo"), "--resume")),
        "truncated checkpoint, then `evaluate`": ("damaged bytes", truncated_checkpoint),
        "20 KB of flipped bytes inside a checkpoint, then `evaluate`": ("damaged bytes", flipped_checkpoint_bytes),
        "`evaluate` on a folder without checkpoint": ("damaged bytes", no_checkpoint),
        "zeros written over part of `train_images.npy`": ("damaged bytes", damage_toy("train_images.npy", zeros)),
        "label id 200 in `test_labels.npy`": ("data file", damage_toy("test_labels.npy", bad_label)),
        "a point entry with float coordinates": ("data file", malformed_points),
        "a 3-click points file saved under the 1-click name": ("data file", points_file_of_other_clicks),
        "`--resume` on a finished run": ("finished work", lambda: _train("--out", str(copy_of_finished("done")), "--resume")),
        "`config.json` holding a list, then `--resume`": (
            "run record", resume_damaged("run-list-config", lambda f: (f / "config.json").write_text("[1, 2]"))
        ),
        "`config.json` not JSON, then `--resume`": (
            "run record", resume_damaged("run-broken-config", lambda f: (f / "config.json").write_text("{broken"))
        ),
        "`config.json` an empty object, then `--resume`": (
            "run record", resume_damaged("run-empty-config", lambda f: (f / "config.json").write_text("{}"))
        ),
        "`metrics.json` without its scores, then validation scores": ("run record", damaged_metrics_then_validation_scores),
        "`log.csv` with another header, then `--resume`": (
            "run record", resume_damaged("run-other-log", lambda f: (f / "log.csv").write_text("step,loss,x\n0,1,2\n"))
        ),
        "`keypoint_pseudo`'s pseudo labels overwritten, then `--resume`": (
            "run record", resume_damaged("run-pseudo", overwrite_pseudo_labels, "keypoint_pseudo")
        ),
        "toy cache `meta.json` holding a list": ("data file", toy_record_of_the_wrong_type),
        "a points file with one image's novel clicks removed": ("data file", edit_points(drop_novel_clicks, "run-dropped")),
        "one novel click repeated 50 times under `points_per_class=1`": ("data file", edit_points(repeat_a_click, "run-repeated")),
        "`--batch-size 100000` on 24 training images": ("resources", flag("--batch-size", "100000")),
        "`--batch-size 4` where free memory has room for 2 images (free memory lowered)": ("resources", room_for_two_images),
        "`experiments --seeds 0 0`": ("table input", table("--seeds", "0", "0")),
        "`experiments --workers 0`": ("table input", table("--workers", "0")),
        "`PWSLIB_WORKERS=abc` for `experiments`": ("table input", table(workers="abc")),
        "`experiments --split 99`": ("table input", table("--split", "99")),
        "`--set focal_weight=1e308 dice_weight=1e308` (the loss overflows)": (
            "config value",
            lambda: _train("--out", str(work / "run-overflow"), *TINY, NO_PRETRAINING, "focal_weight=1e308", "dice_weight=1e308"),
        ),
        "the data root (`PWSLIB_DATA`) is a file": ("output location", data_root_is_a_file),
        "`--out` below a file (cannot be written)": ("output location", unwritable_out),
        "`python -m studies.datacard --out` below a file": ("output location", data_card_into_an_unwritable_folder),
    }


def try_case(case: Callable[[], None], watched: Path) -> dict:
    """Run one case: its first user-visible line, whether it was clear, and whether ``watched`` survived."""
    before = _snapshot(watched)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            case()
        outcome, clear = "accepted (no error)", False
    except SystemExit as stop:  # argparse exits with 2 and its message on stderr; the project with its message
        message = str(stop.code) if not isinstance(stop.code, int) else (stderr.getvalue().strip().splitlines() or ["?"])[-1]
        outcome, clear = message.splitlines()[0], stop.code not in (0, None)
    except DataError as error:
        outcome, clear = f"DataError: {str(error).splitlines()[0]}", True
    except Exception as error:  # anything else reaches the user as a traceback
        outcome, clear = f"traceback: {type(error).__name__}: {error}".splitlines()[0], False
        traceback.print_exc()
    outcome = outcome.replace(str(watched.parent), "<tmp>")
    outcome = outcome if len(outcome) <= 240 else outcome[:237] + "..."
    after = _snapshot(watched)
    intact = all(after.get(name) == digest for name, digest in before.items())
    return {"outcome": outcome, "clear": clear, "files_intact": intact}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=CHECKOUT / "reports")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        os.environ["PWSLIB_DATA"] = str(work / "data")
        (work / "data").mkdir()
        cases = _cases(work)
        _train("--out", str(work / "finished"), *TINY, NO_PRETRAINING)  # a finished run no case may harm
        rows = []
        for name, (kind, case) in cases.items():
            result = try_case(case, work / "finished")
            rows.append((kind, name, result))
            print(f"{'ok ' if result['clear'] else 'BAD'} {name}: {result['outcome']}", flush=True)
    meta = provenance()
    kinds = list(dict.fromkeys(kind for kind, _, _ in rows))
    counts = "| class of bad input or fault | cases | clear, non-zero exit | finished run intact |\n|---|---|---|---|\n"
    counts += "\n".join(
        f"| {kind} | {sum(k == kind for k, _, _ in rows)} | {sum(k == kind and r['clear'] for k, _, r in rows)} | "
        f"{sum(k == kind and r['files_intact'] for k, _, r in rows)} |"
        for kind in kinds
    )
    table = "| class | bad input or fault | what the user sees | clear, non-zero exit | the finished run intact |\n"
    table += "|---|---|---|---|---|\n" + "\n".join(
        f"| {kind} | {name} | {r['outcome'].replace('|', '/')} | {'yes' if r['clear'] else '**no**'} | "
        f"{'yes' if r['files_intact'] else '**no**'} |"
        for kind, name, r in rows
    )
    table = counts + "\n\n" + table
    text = (
        report_header("Reliability: bad inputs and faults", "`python -m studies.reliability`")
        + f"Commit `{meta['git_commit']}`, "
        f"{meta['machine']}, {meta['date_utc']} UTC. Each case runs the command a user would run on a small toy "
        "benchmark in a temporary folder; the unit tests check each of them.\n\n"
        f"{table}\n\nAlso tested (tests/): a checkpoint write that fails half-way (simulated full disk) keeps the "
        "previous checkpoint and the run resumes to the uninterrupted result; `kill -9` + `--resume` is exact; hand-"
        "placed archives are verified and a replaced archive is extracted again; COCO-Stuff-10K v1.0 is refused; "
        "palette (VOC-style) label PNGs are read as their indices and RGB labels refused; a shipped or cached "
        "backbone whose bytes changed is refused; a lock left by a killed process is taken over and the run "
        "resumes; a damaged reproduction history is set aside; every config field and `--set` value generated by "
        "Hypothesis ends in `DataError` or is valid (`tests/test_config_properties.py`).\n"
    )
    write_text_atomic(args.out / "reliability.md", text)
    print(text)


if __name__ == "__main__":
    main()
