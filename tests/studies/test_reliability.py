import pytest

from studies.reliability import main


@pytest.mark.slow
def test_every_bad_input_gets_a_clear_line_and_the_finished_run_survives(tmp_path, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(tmp_path / "unused"))  # main points PWSLIB_DATA at its own folder
    main(["--out", str(tmp_path)])
    lines = (tmp_path / "reliability.md").read_text().splitlines()
    cases = [line for line in lines if line.count("|") == 6 and not line.startswith(("| class", "|---"))]
    assert len(cases) >= 49
    assert all(row.endswith("| yes | yes |") for row in cases), [r for r in cases if not r.endswith("| yes | yes |")]
    counts = [line for line in lines if line.count("|") == 5 and not line.startswith(("| class", "|---"))]
    assert {line.split(" | ")[0].strip("| ") for line in counts} >= {"config value", "finished work", "damaged bytes", "run record", "resources", "table input"}
