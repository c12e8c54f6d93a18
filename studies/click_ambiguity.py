"""Can the toy pose the click ambiguity of real photographs? The data card's click probe on generator levers.

    python -m studies.click_ambiguity                 # the variants not yet in the record, two probes at a time
    python -m studies.click_ambiguity --fresh         # every variant again (~1 h on 2 cores)
    python -m studies.click_ambiguity --report-only   # the report from reports/click_ambiguity.json

On PASCAL VOC 2012, one click per class leaves a network at 0.60-0.73 of what full masks give (Bearman et al., ECCV
2016, Table 1: 35.1 mIoU with one point per class, 42.7 with an objectness prior, 58.3 fully supervised). The data
card's click probe (``studies.datacard.click_probe``: a per-pixel network trained 1,000 steps on split 1's base masks
plus one click per novel class per image, against the same network on full masks) gives 0.97 on toy-stuff and 0.89
on toy-scene. This study measures that probe on a candidate third preset and on variants of it, each adding one of
the properties that make a click ambiguous on photographs:

- ``looks``: appearance that varies within a class and is shared between classes (each part of each instance draws
  its look from its class's pool of stuff textures, the pools overlap), so a click's texture names no class;
- things of 2-3 parts, things placed against each other (``touching_probability``), thin (``rod``) and large ones;
- ``camouflage``: a part wears the texture of the stuff under the thing (not its colour);
- more parts, larger pools and fewer things per image (fewer clicks per novel class);
- clicks where annotators put them, at the deepest pixel of a mask (``centre``), not anywhere on it;
- an outline band in a stuff look around each thing (``rim_looks``): a centre click never lands on it; with halos,
  on every other class the band belongs to the stuff, so the click does not say where the thing ends;
- the probe trained four times longer (is the ratio a probe too short to learn either?);
- fewer training images (400, 300, 150 of 2,000): fewer clicks per novel class, as on a rare class of a photograph
  set; and the two levers that each pulled the ratio down (few images, centre clicks) together, with the outline
  bands and halos or the rarer, camouflaged parts;
- looks that name no class at all: every thing wears any of the 12 stuff looks, so only its shape (and what it
  sits on) says what it is, and a mask shows the shape at every pixel where a click shows it at one.
- the outline bands with centre clicks, the probe trained 4x and 8x longer, and bands 0.7 of the depth wide: at
  1,000 steps the probe on full masks is far from its plateau (toy-stuff: 27.7 novel mIoU, 42.5 at 4,000 steps),
  so the ratio measures how fast each learns as much as what a click tells; a band a centre click never reaches
  is learnt from masks, given time, and from clicks only through what the base classes' bands teach.
- halos 0.7 of the depth deep (on every other class most of a thing's drawn area belongs to the stuff around it,
  on the others to the thing), alone and with 300 training images; and halos on toy-stuff, whose looks name their
  class: on the candidate both networks first have to tell classes apart (full masks reach ~30 novel mIoU), which
  may leave a click's missing extent little to cost.
- the literature's own setting, on toy-stuff and on the candidate: one centre click on every class present, base
  classes included, and no mask at all (``clicked="every class"``), as in Bearman et al.'s point supervision. The
  data card's probe keeps the base classes' masks, and those masks teach where a thing ends; this setting does not
  have them, so the two say whether the toy's clicks are too informative or the base masks carry the extent; beside
  them, the data card's probe with the same centre clicks and steps, on both presets.
- centre clicks at 4,000 steps on the benchmark's own presets (toy-stuff, toy-scene) and on toy-stuff with 300
  training images: the benchmark's clicks land anywhere on a mask, which tells more than an annotator's click.

Uniform clicks are an unbiased sample of a mask's pixels under the probe's class-balanced loss, so only what a
click cannot sample (the centre rule) or too few samples can pull the ratio down.

A variant is chosen from these data statistics alone; no method has run on any of them. Each probe is one seed, so
a ratio moves by a few hundredths between seeds. Writes ``reports/click_ambiguity.{md,json}`` and ``reports/figures/click_ambiguity.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

import torch

from pwslib.data.toy import PRESETS, ThingClass, ToyPreset, _stuff
from pwslib.io import CHECKOUT, one_line_errors, provenance, report_header, save_figure, write_json_atomic, write_text_atomic
from pwslib.command_line import positive_whole
from pwslib.viz.figures import click_probe_figure
from studies.datacard import CLICK_BAND, click_probe

ROOT = CHECKOUT

# Looks that stuff classes wear; the candidate's things draw theirs from pools of them.
GRASS, WATER, SAND, WALL, SKY = ("stripes", 0.30), ("waves", 0.09), ("speckle", 0.0), ("bricks", 0.11), ("smooth", 0.02)
SNOW, WOOD, FLOOR, FIELD, MOUNTAIN = ("dots", 0.16), ("rings", 0.10), ("checker", 0.06), ("grid", 0.09), ("zigzag", 0.06)
ROAD, CURTAIN = ("stripes", 0.07), ("stripes", 0.16)

CANDIDATE = ToyPreset(
    name="toy-camouflage",
    stuff=_stuff(
        ("grass", *GRASS, 90.0),
        ("water", *WATER),
        ("sand", *SAND),
        ("wall", *WALL),
        ("sky", *SKY),
        ("snow", *SNOW),
        ("wood", *WOOD),
        ("floor", *FLOOR),
        ("field", *FIELD),
        ("mountain", *MOUNTAIN),
        ("road", *ROAD, 45.0),
        ("curtain", *CURTAIN, 0.0),
    ),
    # each thing wears the look of the stuff it sits on, or one of two others; the pools overlap between classes
    things=(
        ThingClass("cow", "ellipse", *GRASS, (10, 16), "grass", 0.85, looks=(GRASS, SNOW, SAND), part_count=2),
        ThingClass("bush", "star", *GRASS, (9, 15), "grass", 0.85, looks=(GRASS, SAND, FIELD), part_count=1),
        ThingClass("kite", "diamond", *SKY, (9, 15), "sky", 0.8, looks=(SKY, FLOOR, CURTAIN), part_count=2),
        ThingClass("tyre", "ring", *SNOW, (9, 15), "snow", 0.8, looks=(SNOW, WOOD, ROAD), part_count=1),
        ThingClass("car", "bar", *ROAD, (12, 18), "road", 0.85, looks=(ROAD, WALL, FLOOR), part_count=3),
        ThingClass("umbrella", "semicircle", *SAND, (10, 16), "sand", 0.85, looks=(SAND, CURTAIN, FLOOR), part_count=2),
        ThingClass("rock", "hexagon", *SAND, (8, 14), "sand", 0.85, looks=(SAND, MOUNTAIN, SKY), part_count=1),
        ThingClass("boat", "hull", *WATER, (13, 21), "water", 0.9, looks=(WATER, WALL, SKY), part_count=2),
        ThingClass("pole", "rod", *SKY, (16, 28), looks=(ROAD, SKY, FLOOR), part_count=1),  # thin
        ThingClass("flag", "triangle", *CURTAIN, (9, 15), "mountain", 0.7, looks=(CURTAIN, GRASS, SNOW), part_count=1),
        ThingClass("house", "square", *WALL, (16, 26), "field", 0.7, looks=(WALL, FIELD, WOOD), part_count=3),  # large
        ThingClass("seal", "crescent", *WATER, (9, 15), "water", 0.8, looks=(SKY, SNOW, WATER), part_count=1),
    ),
    novel_splits=(
        ("cow", "bush", "kite", "tyre", "car", "grass"),  # split 1: development
        ("umbrella", "rock", "boat", "pole", "flag", "sand"),  # split 2: reporting, no class of split 1
        ("boat", "seal", "house", "flag", "umbrella", "water"),  # split 3: reporting, no class of split 1
    ),
    stuff_per_image=(2, 4),
    things_per_image=(2, 5),
    touching_probability=0.5,
    reporting_splits=(2, 3),
)


def with_pools(preset: ToyPreset, parts: int, pool: int) -> ToyPreset:
    """``preset`` with every thing cut into ``parts`` parts and its pool of looks grown to ``pool`` stuff textures."""
    looks = [(s.pattern, s.frequency) for s in preset.stuff]
    things = []
    for index, thing in enumerate(preset.things):
        extra = [look for look in looks if look not in thing.looks]
        grown = tuple(thing.looks) + tuple(extra[(3 * index + j) % len(extra)] for j in range(pool - len(thing.looks)))
        things.append(dataclasses.replace(thing, looks=grown, part_count=parts))
    return dataclasses.replace(preset, things=tuple(things))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One probe: a preset, where its clicks land (``uniform`` or ``centre``), how long the probe trains, and which
    classes it knows by a click (``novel``: the data card's probe; ``every class``: the literature's setting)."""

    preset: ToyPreset
    point_rule: str = "uniform"
    steps: int = 1000
    clicked: str = "novel"


def with_outline_bands(preset: ToyPreset, width: float = 0.5, halos: bool = False) -> ToyPreset:
    """``preset`` with every thing's outline band (``width`` of its depth) in a stuff look drawn per instance; with
    ``halos`` every other class's band is a ring of the stuff under it, not part of the thing."""
    looks = tuple((s.pattern, s.frequency) for s in preset.stuff)
    things = tuple(
        dataclasses.replace(
            thing, part_count=1, rim_looks=looks, rim_width=width, rim_labelled=not (halos and index % 2)
        )
        for index, thing in enumerate(preset.things)
    )
    return dataclasses.replace(preset, things=things)


def variants() -> dict[str, Variant]:
    """The probes, by what they add; every preset that is not the benchmark's is generated under its own name."""
    rarer = dataclasses.replace(with_pools(CANDIDATE, parts=3, pool=5), things_per_image=(1, 3))
    outlined, haloed = with_outline_bands(CANDIDATE), with_outline_bands(CANDIDATE, halos=True)
    deep_halos = with_outline_bands(CANDIDATE, width=0.7, halos=True)
    anywhere = with_pools(CANDIDATE, parts=1, pool=len(CANDIDATE.stuff))
    return {
        "toy-stuff (reference)": Variant(PRESETS["toy-stuff"]),
        "toy-scene (reference)": Variant(PRESETS["toy-scene"]),
        "candidate: shared looks, parts, touching, thin and large things": Variant(CANDIDATE),
        "candidate + camouflage 0.6": Variant(dataclasses.replace(CANDIDATE, camouflage=0.6)),
        "candidate, 3 parts, pools of 5, 1-3 things per image": Variant(rarer),
        "candidate, 3 parts, pools of 5, 1-3 things per image, camouflage 0.3": Variant(
            dataclasses.replace(rarer, camouflage=0.3)
        ),
        "toy-stuff, clicks at the centre": Variant(PRESETS["toy-stuff"], "centre"),
        "candidate, clicks at the centre": Variant(CANDIDATE, "centre"),
        "candidate, outline bands in stuff looks": Variant(outlined),
        "candidate, outline bands in stuff looks, clicks at the centre": Variant(outlined, "centre"),
        "candidate, outline bands, every other class's a halo of stuff": Variant(haloed),
        "candidate, outline bands, every other class's a halo of stuff, clicks at the centre": Variant(haloed, "centre"),
        "toy-stuff (reference), probe trained 4x longer": Variant(PRESETS["toy-stuff"], steps=4000),
        "candidate, probe trained 4x longer": Variant(CANDIDATE, steps=4000),
        "candidate, 400 training images": Variant(dataclasses.replace(CANDIDATE, num_train=400)),
        "candidate, 150 training images": Variant(dataclasses.replace(CANDIDATE, num_train=150)),
        "candidate, 300 training images, clicks at the centre": Variant(
            dataclasses.replace(CANDIDATE, num_train=300), "centre"
        ),
        "candidate, 150 training images, clicks at the centre": Variant(
            dataclasses.replace(CANDIDATE, num_train=150), "centre"
        ),
        "candidate, outline bands, halos, 150 training images, clicks at the centre": Variant(
            dataclasses.replace(haloed, num_train=150), "centre"
        ),
        "candidate, 3 parts, pools of 5, 1-3 things, camouflage 0.3, 150 training images, clicks at the centre": Variant(
            dataclasses.replace(rarer, camouflage=0.3, num_train=150), "centre"
        ),
        "candidate, every thing wears any of the 12 stuff looks (class by shape alone)": Variant(anywhere),
        "candidate, every thing wears any of the 12 stuff looks, clicks at the centre": Variant(anywhere, "centre"),
        "candidate, outline bands in stuff looks, clicks at the centre, probe trained 4x longer": Variant(
            outlined, "centre", steps=4000
        ),
        "candidate, outline bands, every other class's a halo of stuff, clicks at the centre, probe trained 4x longer": (
            Variant(haloed, "centre", steps=4000)
        ),
        "candidate, outline bands 0.7 of the depth, clicks at the centre, probe trained 4x longer": Variant(
            with_outline_bands(CANDIDATE, width=0.7), "centre", steps=4000
        ),
        "candidate, outline bands in stuff looks, clicks at the centre, probe trained 8x longer": Variant(
            outlined, "centre", steps=8000
        ),
        "candidate, halos on every other class 0.7 of the depth, clicks at the centre, probe trained 4x longer": Variant(
            deep_halos, "centre", steps=4000
        ),
        "candidate, halos 0.7 of the depth, 300 training images, clicks at the centre, probe trained 4x longer": Variant(
            dataclasses.replace(deep_halos, num_train=300), "centre", steps=4000
        ),
        "toy-stuff, outline bands, every other class's a halo of stuff, clicks at the centre, probe trained 4x longer": (
            Variant(with_outline_bands(PRESETS["toy-stuff"], halos=True), "centre", steps=4000)
        ),
        "toy-stuff, clicks at the centre, probe trained 4x longer": Variant(PRESETS["toy-stuff"], "centre", steps=4000),
        "candidate, clicks at the centre, probe trained 4x longer": Variant(CANDIDATE, "centre", steps=4000),
        "toy-scene, clicks at the centre, probe trained 4x longer": Variant(PRESETS["toy-scene"], "centre", steps=4000),
        "toy-stuff, 300 training images, clicks at the centre, probe trained 4x longer": Variant(
            dataclasses.replace(PRESETS["toy-stuff"], num_train=300), "centre", steps=4000
        ),
        "toy-stuff, a centre click on every class and no mask at all, probe trained 4x longer": Variant(
            PRESETS["toy-stuff"], "centre", steps=4000, clicked="every class"
        ),
        "candidate, a centre click on every class and no mask at all, probe trained 4x longer": Variant(
            CANDIDATE, "centre", steps=4000, clicked="every class"
        ),
    }


@contextlib.contextmanager
def registered(preset: ToyPreset, name: str) -> Iterator[str]:
    """``preset`` under ``name`` among the toy presets for the block (the probe builds its datasets by name)."""
    PRESETS[name] = dataclasses.replace(preset, name=name)
    try:
        yield name
    finally:
        del PRESETS[name]


def probe_variant(label: str, variant: Variant) -> dict:
    """The click probe of one variant (1 torch thread), its data generated under its own name."""
    torch.set_num_threads(1)
    start, made_by = time.perf_counter(), provenance()  # the commit the probe starts from
    preset = variant.preset
    if PRESETS.get(preset.name) == preset:  # a preset of the benchmark: its own data
        named = contextlib.nullcontext(preset.name)
    else:
        named = registered(preset, "toy-candidate-" + hashlib.sha256(repr(preset).encode()).hexdigest()[:8])
    with named as name:
        result = click_probe(name, variant.steps, point_rule=variant.point_rule, clicked=variant.clicked)
    return {
        "variant": label,
        "point_rule": variant.point_rule,
        "clicked": variant.clicked,
        "steps": variant.steps,
        "ratio": result["novel_ratio"],
        "scored_on": result["scored_on"],
        "novel_clicks": result["clicks"]["novel_miou"],
        "novel_full_masks": result["full_masks"]["novel_miou"],
        "total_full_masks": result["full_masks"]["total_miou"],
        "total_clicks": result["clicks"]["total_miou"],
        "seconds": round(time.perf_counter() - start, 1),
        **{key: value for key, value in made_by.items() if key in ("git_commit", "date_utc")},
    }


def completed(row: dict, meta: dict) -> dict:
    """``row`` with what the first rows of the record leave to its ``meta``: they were made before rows carried their
    click rule, steps, scoring images, commit and date (uniform clicks, the record's steps, the test images), and
    before any probe clicked every class (novel classes clicked, base classes by masks)."""
    made_by = {"git_commit": meta["git_commit"], "date_utc": meta["date_utc"]}
    return {"point_rule": "uniform", "steps": meta["steps"], "scored_on": "test", "clicked": "novel", **made_by, **row}


def render(rows: list[dict], meta: dict) -> str:
    """The report, one line per probe (``completed`` with the record's ``meta``)."""
    low, high = CLICK_BAND
    lines = [
        report_header("Click ambiguity: the data card's click probe on generator levers", "`python -m studies.click_ambiguity`")
        + f"Provenance: {meta['machine']}, split 1, data seed 0, one seed per probe, each probe on one thread; "
        f"the commit and date of each row are in its last column (the first rows: commit `{meta['git_commit']}`, "
        f"{meta['date_utc']} UTC).",
        "",
        f"Ratio = novel mIoU with one click per novel class / with full masks; the band of real photographs: "
        f"{low:.2f}-{high:.2f} (Bearman et al., ECCV 2016, PASCAL VOC 2012 val: one point per class 35.1, with an "
        "objectness prior 42.7, full supervision 58.3 mIoU). Clicks land anywhere on a class's mask (`uniform`) or "
        "at its deepest pixel, where an annotator tends to click (`centre`). Every probe keeps the base classes' "
        "masks except those marked `every class`: one centre click on every class present and no mask at all, the "
        "setting the band was measured in. Probes are scored on validation images from now on; the rows made before "
        "that rule were scored on the test images.",
        "",
        "![every probe's ratio against the band](figures/click_ambiguity.png)",
        "",
        "| variant | clicks | probe steps | scored on | ratio | in the band | novel mIoU, clicks | novel mIoU, full "
        "masks | total mIoU, full masks | commit, date |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in (completed(row, meta) for row in rows):
        inside = "yes" if low <= row["ratio"] <= high else "no"
        lines.append(
            f"| {row['variant']} | {row['point_rule']}{', every class' * (row['clicked'] == 'every class')} | {row['steps']} | "
            f"{row['scored_on']} images | {row['ratio']:.2f} | {inside} | {row['novel_clicks']:.1f} | {row['novel_full_masks']:.1f} | "
            f"{row['total_full_masks']:.1f} | `{row['git_commit']}`, "
            f"{row['date_utc'][:10]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=positive_whole, default=2, help="probes side by side, 1 torch thread each")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports")
    parser.add_argument("--report-only", action="store_true", help="the report from reports/click_ambiguity.json")
    parser.add_argument("--fresh", action="store_true", help="probe every variant again, not only those not yet in the record")
    args = parser.parse_args(argv)
    with one_line_errors("the click-ambiguity study"):
        record_path = args.reports / "click_ambiguity.json"
        record = json.loads(record_path.read_text()) if record_path.exists() and not args.fresh else None
        if args.report_only and record is None:
            raise FileNotFoundError(f"{record_path} does not exist: run the study without --report-only first")
        if not args.report_only:
            record = record or {"meta": provenance(steps=1000), "rows": []}
            done = {row["variant"] for row in record["rows"]}
            todo = {label: variant for label, variant in variants().items() if label not in done}
            with ProcessPoolExecutor(args.workers) as pool:
                futures = {label: pool.submit(probe_variant, label, variant) for label, variant in todo.items()}
                for label, future in futures.items():
                    record["rows"].append(future.result())
                    write_json_atomic(record_path, record)  # a probe finished is kept if a later one fails
                    print(f"{label}: ratio {record['rows'][-1]['ratio']:.2f}", flush=True)
        text = render(record["rows"], record["meta"])
        figure = click_probe_figure([completed(row, record["meta"]) for row in record["rows"]], CLICK_BAND)
        save_figure(figure, args.reports / "figures" / "click_ambiguity.png", close=True)
        write_text_atomic(args.reports / "click_ambiguity.md", text)
        print(text)


if __name__ == "__main__":
    main()
