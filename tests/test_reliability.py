import pytest

from pwslib.reliability import main


@pytest.mark.slow
def test_every_bad_input_gets_a_clear_line_and_the_finished_run_survives(tmp_path, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(tmp_path / "unused"))  # main points PWSLIB_DATA at its own folder
    main(["--out", str(tmp_path)])
    lines = (tmp_path / "reliability.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| bad input", "|---"))]
    assert len(rows) >= 14
    assert all(row.endswith("| yes | yes |") for row in rows), [r for r in rows if not r.endswith("| yes | yes |")]
