from studies import step_memory


def test_the_study_measures_each_case_in_processes_of_their_own_and_reports_the_ratio_to_the_most(tmp_path, monkeypatch):
    monkeypatch.setattr(step_memory, "CASES", (("ours", 4, 64),))
    monkeypatch.setattr(step_memory, "REPEATS", 2)
    step_memory.main(["--threads", "1", "--out", str(tmp_path)])
    markdown = (tmp_path / "step_memory.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| `ours` | 4 | 64×64 |"))
    estimate, measured, ratio = (cell.strip() for cell in row.strip("|").split("|")[-3:])
    lowest, highest = (float(value) for value in measured.split("–"))
    assert 0 < lowest <= highest and abs(float(ratio) - float(estimate) / highest) < 0.06  # the cells are rounded
    assert "Commit `" in markdown and "in 2 fresh processes" in markdown and (tmp_path / "step_memory.json").exists()
