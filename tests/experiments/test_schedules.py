import pytest
from conftest import SMALL_TOY

from pwslib.experiments.schedules import (
    preset_name,
    preset_rows,
    Schedule,
    SCHEDULES,
    table_datasets,
    table_iterations,
)
from pwslib.io import DataError

SCHEDULE = Schedule(seeds=(0, 1), iterations=2, batch_size=4, toy_options=SMALL_TOY, pretrained_backbone=False)


def test_a_schedule_is_named_by_its_preset():
    quick = SCHEDULES["quick"]
    assert preset_name(Schedule(seeds=quick.seeds, iterations=quick.iterations)) == "quick"
    assert preset_name(SCHEDULES["full"]) == "full"
    assert preset_name(Schedule(seeds=(0,), iterations=quick.iterations + 1)) == "custom"


def test_the_presets_are_what_the_readme_promises():
    quick, full, ci = SCHEDULES["quick"], SCHEDULES["full"], SCHEDULES["ci"]
    assert quick.seeds == (0,) and full.seeds == (0, 1, 2)
    assert full.batch_size == quick.batch_size and not quick.toy_options and not full.toy_options  # one recipe
    assert quick.pretrained_backbone and full.pretrained_backbone
    assert ci.iterations < 10 and ci.toy_options["num_train"] < 100


def test_quick_trains_the_rows_that_matter_and_the_other_presets_every_row():
    from pwslib.experiments.tables import table1_rows, table2_rows, table3_rows

    quick1 = preset_rows("quick", "table1", table1_rows())
    quick2, quick3 = preset_rows("quick", "table2", table2_rows()), preset_rows("quick", "table3", table3_rows())
    assert set(quick1) == {"full_supervision", "point_naive", "ours"}
    assert set(quick2) == {"w/o L_con", "+ L_in (L_in + L_ex + L_con + L_ctl)", "ours (L_ex + L_con + L_ctl)"}
    assert set(quick3) == {"keypoint head phi off", "ours (phi on, max, confident EMA bank, 1 point)"}
    assert preset_rows("full", "table1", table1_rows()) == table1_rows()
    assert preset_rows("full", "table2", table2_rows()) == table2_rows()
    assert preset_rows("ci", "table3", table3_rows()) == table3_rows()


def test_quick_trains_table1_at_its_schedule_and_the_ablations_at_a_fifth_of_it():
    assert table_iterations("quick", "table1") == SCHEDULES["quick"].iterations == 5000
    assert table_iterations("quick", "table2") == table_iterations("quick", "table3") == 1000
    assert table_iterations("quick", None) == SCHEDULES["quick"].iterations
    assert table_iterations("full", "table2") == SCHEDULES["full"].iterations


def test_quick_trains_every_table_on_toy_stuff_and_full_table1_on_both_benchmarks():
    assert all(table_datasets("quick", table) == ["toy-stuff"] for table in ("table1", "table2", "table3"))
    assert table_datasets("full", "table1") == ["toy-stuff", "toy-scene"]
    assert table_datasets("ci", "table1") == ["toy-stuff", "toy-scene"]  # a preset without a plan: both


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(seeds=("0",)), "seeds must be a non-empty list of whole numbers"),
        (dict(iterations="400"), "iterations must be a whole number"),
        (dict(toy_options={"num_train": "24"}), "toy_options num_train must be a positive whole number"),
    ],
)
def test_a_schedule_with_parameters_of_the_wrong_type_is_refused_in_one_line(values, message):
    with pytest.raises(DataError, match=message):
        Schedule(**values)
