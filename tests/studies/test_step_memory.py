from studies import step_memory


def test_the_study_measures_each_case_in_a_process_of_its_own_and_reports_the_ratio(tmp_path, monkeypatch):
    monkeypatch.setattr(step_memory, "CASES", (("ours", 4, 64),))
    step_memory.main(["--threads", "1", "--out", str(tmp_path)])
    markdown = (tmp_path / "step_memory.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| `ours` | 4 | 64×64 |"))
    estimate, measured, ratio = (float(cell) for cell in row.strip("|").split("|")[-3:])
    assert estimate > 0 and measured > 0 and abs(ratio - estimate / measured) < 0.06  # the cells are rounded
    assert "Commit `" in markdown and (tmp_path / "step_memory.json").exists()
