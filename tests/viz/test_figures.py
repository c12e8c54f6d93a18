import matplotlib
import numpy as np

from pwslib.data.splits import ClassSplit
from pwslib.viz.figures import click_probe_figure, convergence_figure, label_palette, visual_comparison

matplotlib.use("Agg")
SPLIT = ClassSplit(("sky", "grass", "water", "boat", "cow", "kite"), (3, 4, 5))


def test_novel_classes_stand_apart_in_the_palette():
    palette = label_palette(SPLIT.num_classes, SPLIT.novel_classes).astype(float)
    novel, base = palette[[3, 4, 5]], palette[[0, 1, 2]]
    spread = lambda colours: colours.max(1) - colours.min(1)  # noqa: E731 - saturation, roughly
    assert spread(novel).min() > spread(base).max()  # every novel colour more saturated than every base one
    distances = [np.abs(novel[a] - novel[b]).sum() for a in range(3) for b in range(a + 1, 3)]
    assert min(distances) > 100  # novel classes apart from each other
    assert (palette[255] == 0).all()


def test_the_comparison_names_the_unlabelled_pixels_and_captions_each_row():
    truth = np.zeros((2, 32, 32), dtype=np.uint8)
    truth[:, 8:16, 8:16] = 3
    truth[:, 0] = 255
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    figure = visual_comparison(images, truth, {"ours": truth}, SPLIT, row_labels=["image 7\nrandom", "image 9\nrandom"])
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "unlabelled" in legend and "boat *" in legend
    assert figure.axes[0].get_ylabel() == "image 7\nrandom"


def test_the_convergence_figure_marks_each_plateau_and_the_budget_and_keeps_its_legend_inside():
    curve = lambda end, top: [{"iteration": i, "total_miou": top * i / end} for i in range(1000, end + 1, 1000)]  # noqa: E731
    curves = {"toy-stuff/ours/8000": curve(8000, 60.0), "toy-stuff/ours/4000": curve(4000, 55.0),
              "toy-stuff/point_naive/8000": curve(8000, 58.0)}
    figure = convergence_figure(curves, {"toy-stuff/ours": 60.0, "toy-stuff/point_naive": 58.0}, budget=5000)
    ax = figure.axes[0]
    flat = sorted(line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1)
    assert flat == [58.0, 60.0]  # one dotted plateau line per method
    assert [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1] == [5000]
    widths = {line.get_xdata()[-1]: line.get_linewidth() for line in ax.lines[:2]}
    assert widths[8000] > widths[4000]  # the longest curve of a method is the bold one
    assert not figure.legends and "ours" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_the_click_probe_figure_draws_one_bar_per_probe_lowest_first_coloured_by_what_is_clicked():
    rows = [
        {"variant": "b, probe trained 4x longer", "ratio": 0.9, "point_rule": "centre", "steps": 4000},
        {"variant": "a", "ratio": 0.7, "point_rule": "uniform", "steps": 1000},
        {"variant": "c", "ratio": 1.0, "point_rule": "uniform", "steps": 1000},
    ]
    rows = [{**row, "clicked": "novel"} for row in rows]
    rows.append({"variant": "d", "ratio": 0.4, "point_rule": "centre", "steps": 4000, "clicked": "every class"})
    fig = click_probe_figure(rows, (0.6, 0.73))
    ax = fig.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["d (4,000 steps)", "a (1,000 steps)", "b (4,000 steps)", "c (1,000 steps)"]
    widths = {round(patch.get_width(), 2): patch.get_facecolor() for patch in ax.patches if patch.get_height() < 1}
    assert set(widths) == {0.4, 0.7, 0.9, 1.0}
    assert widths[0.7] == widths[1.0] != widths[0.9] != widths[0.4] != widths[0.7]  # uniform, centre, every class
    assert ax.get_xlim()[0] < 0.4  # the lowest bar is drawn whole
    matplotlib.pyplot.close(fig)
