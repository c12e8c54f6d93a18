import json
import subprocess
import sys

import pytest

from pwslib.experiments.freshness import (
    FRESHNESS_KEY,
    freshness_record,
    read_record,
    recorded_path,
    source_digest,
    stale_reasons,
)
from pwslib.io import CHECKOUT, atomic_path
from pwslib.reproduce import NOTEBOOKS


def notebook(path, *sources, outputs=()):
    cells = [{"cell_type": "code", "metadata": {}, "source": [text], "outputs": list(outputs)} for text in sources]
    path.write_text(json.dumps({"cells": cells, "metadata": {}}))
    return path


def test_the_source_digest_sees_the_cells_and_not_their_outputs(tmp_path):
    first = source_digest(notebook(tmp_path / "a.ipynb", "print(1)"))
    assert source_digest(notebook(tmp_path / "b.ipynb", "print(1)", outputs=[{"text": "1"}])) == first
    assert source_digest(notebook(tmp_path / "c.ipynb", "print(2)")) != first


def test_only_reports_and_runs_are_inputs_and_an_atomic_write_stands_for_its_final_name(tmp_path):
    assert recorded_path(tmp_path / "reports" / "table1.csv", tmp_path) == "reports/table1.csv"
    assert recorded_path(tmp_path / "runs" / "quick" / "key" / "metrics.json", tmp_path) == "runs/quick/key/metrics.json"
    assert recorded_path(tmp_path / "reports" / ".table1.md.k3j_a9zq.tmp.md", tmp_path) == "reports/table1.md"
    assert recorded_path(tmp_path / "reports" / "executed" / "05.ipynb", tmp_path) is None
    assert recorded_path(tmp_path / "data" / "toy" / "images.npy", tmp_path) is None
    assert recorded_path("/elsewhere/reports/table1.csv", tmp_path) is None


def test_a_kernel_records_what_it_opens_through_the_audit_hook(tmp_path):
    """In a fresh interpreter (an audit hook cannot be removed): reads and atomic writes are recorded, a
    data cache is not."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "reports" / "toy_datacard.json").write_text("{}")
    (tmp_path / "data" / "cache.npy").write_text("x")
    log = tmp_path / "opened.txt"
    script = f"""
from pathlib import Path
from pwslib.experiments.freshness import record_opened_files
from pwslib.io import write_text_atomic
root = Path({str(tmp_path)!r})
record_opened_files({str(log)!r}, root)
(root / "reports" / "toy_datacard.json").read_text()
(root / "data" / "cache.npy").read_text()
write_text_atomic(root / "reports" / "table1.md", "| a |")
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=CHECKOUT)
    assert sorted(set(log.read_text().split())) == ["reports/table1.md", "reports/toy_datacard.json"]


def test_a_changed_input_or_source_makes_an_executed_notebook_stale(tmp_path):
    (tmp_path / "reports").mkdir()
    report = tmp_path / "reports" / "toy_datacard.json"
    report.write_text('{"click_probe": 0.98}')
    source = notebook(tmp_path / "01.ipynb", "card = read()")
    log = tmp_path / "opened.txt"
    log.write_text("reports/toy_datacard.json\nruns/quick/key/metrics.json\n")  # the run was not kept
    executed = tmp_path / "executed.ipynb"
    record = freshness_record(source, log, "abc123", "quick", tmp_path)
    executed.write_text(json.dumps({"cells": [], "metadata": {FRESHNESS_KEY: record}}))
    assert read_record(executed)["inputs"] == {"reports/toy_datacard.json": record["inputs"]["reports/toy_datacard.json"]}
    assert stale_reasons(executed, source, tmp_path) == []
    report.write_text('{"click_probe": 0.83}')
    assert stale_reasons(executed, source, tmp_path) == ["reports/toy_datacard.json changed"]
    notebook(source, "card = read()  # retold")
    report.unlink()
    assert stale_reasons(executed, source, tmp_path) == ["01.ipynb changed", "reports/toy_datacard.json is gone"]
    executed.write_text(json.dumps({"cells": [], "metadata": {}}))
    assert stale_reasons(executed, source, tmp_path) == [
        "it carries no freshness record (executed before records were kept)"
    ]


EXECUTED = sorted(p for p in CHECKOUT.glob("reports/**/executed/*.ipynb") if "archive" not in p.parts)  # the archive is history


def test_every_notebook_has_an_executed_copy_of_the_quick_preset():
    assert sorted(path.stem for path in (CHECKOUT / "reports" / "executed").glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("executed", EXECUTED, ids=[str(p.relative_to(CHECKOUT)) for p in EXECUTED])
def test_every_committed_executed_notebook_is_fresh(executed):
    reasons = stale_reasons(executed, CHECKOUT / "notebooks" / executed.name)
    preset = (read_record(executed) or {}).get("preset", "the preset it shows")
    assert not reasons, (
        f"{executed.relative_to(CHECKOUT)} is stale ({'; '.join(reasons)}): "
        f"python -m pwslib.reproduce --preset {preset} --stale"
    )


def test_atomic_names_match_the_pattern_the_recorder_expects(tmp_path):
    with atomic_path(tmp_path / "reports" / "table1.md") as tmp:
        assert recorded_path(tmp, tmp_path) == "reports/table1.md"
