import re
import shlex

import pytest

from pwslib.io import CHECKOUT
from studies import reference
from studies.reference import REFERENCE, command


@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_manifest_entry_is_the_command_its_report_records(name):
    report = (CHECKOUT / "reports" / f"{name}.md").read_text()
    recorded = re.search(r"`python -m pwslib\.experiments ([^`]*)`", report)
    assert recorded and shlex.split(recorded[1]) == shlex.split(REFERENCE[name])
    assert f"--name {name}" in command(name)


def test_list_prints_every_command_and_runs_nothing(capsys, monkeypatch):
    monkeypatch.setattr(reference.cli, "main", lambda argv: pytest.fail("--list must not run a table"))
    reference.main(["--list"])
    assert capsys.readouterr().out.splitlines() == [command(name) for name in REFERENCE]


def test_a_named_table_runs_alone_and_an_unknown_name_is_refused(monkeypatch):
    ran = []
    monkeypatch.setattr(reference.cli, "main", ran.append)
    reference.main(["table1_split6"])
    assert ran == [shlex.split(REFERENCE["table1_split6"])]
    with pytest.raises(SystemExit):
        reference.main(["table9"])
