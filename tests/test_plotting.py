"""The plotting helpers make the readable figure the default, and lint_figure finds the
problems a reviewer flags (legend over data, overprinted ticks, unreadable log axes,
duplicated panel letters)."""
import json

import numpy as np
import pytest

from lossatlas import plotting, results


def _labels(axis):
    lo, hi = sorted(axis.axes.get_xlim() if axis.axis_name == "x" else axis.axes.get_ylim())
    return [t.label1.get_text() for t in axis.get_major_ticks() if t.label1.get_text() and lo <= t.get_loc() <= hi]


def test_panel_letters_are_generated_in_reading_order_and_skip_hidden_axes():
    fig, axes = plotting.figure(2, 2)
    axes[0, 1].axis("off")
    texts = plotting.panel_letters(axes)
    assert [t.get_text() for t in texts] == ["(a)", "(b)", "(c)"]
    assert [t.axes for t in texts] == [axes[0, 0], axes[1, 0], axes[1, 1]]
    assert plotting.lint_figure(fig) == []
    axes[1, 1].text(0.0, 1.0, "(a)", transform=axes[1, 1].transAxes)
    assert plotting.lint_figure(fig) == ["panel letters used twice: (a)"]
    with pytest.raises(ValueError, match="start"):
        plotting.panel_letters(axes, start=25)
    plotting.close(fig)


def test_a_legend_inside_over_a_line_is_flagged_and_legend_outside_never_is():
    x = np.linspace(0.0, 1.0, 40)
    for where in ("right", "below"):
        fig, axes = plotting.figure()
        ax = axes[0, 0]
        ax.plot(x, x, label="rising")
        ax.plot(x, 1 - x, label="falling")
        leg = plotting.legend_outside(ax, where)
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        assert not leg.get_window_extent(r).overlaps(ax.get_window_extent(r))
        assert plotting.lint_figure(fig) == []
        ax.legend(loc="upper left")  # "falling" starts in the top-left corner
        assert plotting.lint_figure(fig) == ["panel 0 (''): legend covers 'falling'"]
        plotting.close(fig)
    fig, axes = plotting.figure()
    axes[0, 0].plot(x, x ** 2, label="parabola")
    axes[0, 0].legend(loc="upper left")  # the parabola stays low on the left: an empty region
    assert plotting.lint_figure(fig) == []
    with pytest.raises(ValueError, match="where"):
        plotting.legend_outside(axes[0, 0], "inside")
    plotting.close(fig)


def test_log_axis_labels_enough_ticks_to_read_a_slope():
    fig, axes = plotting.figure(3, 1)
    axes[0, 0].plot([2.0, 5.0], [1.0, 2.0])  # less than one decade
    plotting.log_axis(axes[0, 0], "x")
    axes[0, 1].plot([1.0, 2.0], [1e-3, 1e3])  # six decades
    plotting.log_axis(axes[0, 1], "y")
    axes[0, 2].plot([16.0, 32.0, 64.0], [1.0, 2.0, 3.0])
    axes[0, 2].set_xscale("log")
    axes[0, 2].xaxis.set_major_locator(__import__("matplotlib").ticker.FixedLocator([20.0]))
    axes[0, 2].xaxis.set_minor_locator(__import__("matplotlib").ticker.NullLocator())
    problems = plotting.lint_figure(fig)
    fig2, wide = plotting.figure()
    wide[0, 0].plot([1.0, 2.0], [1e-30, 1e8])  # 38 decades on a short axis
    plotting.log_axis(wide[0, 0], "y")
    assert plotting.lint_figure(fig2) == [] and 3 <= len(_labels(wide[0, 0].yaxis)) <= 10
    plotting.close(fig2)
    assert len(_labels(axes[0, 0].xaxis)) >= 3
    assert _labels(axes[0, 1].yaxis)[:1] and len(_labels(axes[0, 1].yaxis)) >= 6
    assert problems == ["panel 2 (''): log x axis has 1 labelled tick(s)"]
    with pytest.raises(ValueError, match="axis"):
        plotting.log_axis(axes[0, 0], "z")
    plotting.close(fig)


def test_overprinted_tick_labels_are_flagged():
    fig, axes = plotting.figure()
    axes[0, 0].plot(np.arange(30), np.arange(30))
    axes[0, 0].set_xticks(np.arange(30), [f"tick{i}" for i in range(30)])
    assert plotting.lint_figure(fig) == ["panel 0 (''): x tick labels overprint"]
    plotting.close(fig)


def test_draw_figures_stamps_the_source_and_records_the_lint(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    results.save_results(folder, {"x": np.linspace(0.0, 1.0, 20)})

    def plot(res, cfg):
        fig, axes = plotting.figure()
        axes[0, 0].plot(res["x"], res["x"], label="identity")
        axes[0, 0].plot(res["x"], 1 - res["x"], label="flip")
        axes[0, 0].legend(loc="upper left")
        return {"demo": fig}

    paths = results.draw_figures(folder, plot, None, source="Li et al. 2018, Fig. 5")
    assert {p.name for p in paths} == {"demo.png", "demo.pdf"}
    index = json.loads((folder / "figures.json").read_text())
    assert index["demo"]["files"] == ["demo.png", "demo.pdf"]
    assert len(index["demo"]["lint"]) == 1 and "legend covers" in index["demo"]["lint"][0]
    with pytest.raises(ValueError, match="source"):
        plotting.stamp_source(plotting.figure()[0], " ")


def test_the_failed_check_stamp_sits_below_a_figure_legend():
    fig, axes = plotting.figure(2, 1)
    lines = [axes[0, i].plot([0, 1], [0, i + 1])[0] for i in range(2)]
    leg = plotting.figure_legend(fig, lines, ["one", "two"])
    assert plotting.stamp_failed_checks(fig, [{"name": "a claim", "passed": False, "gating": True}])
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    stamp = fig.texts[-1]
    assert stamp.get_text() == "FAILED CHECK: a claim"
    assert not stamp.get_window_extent(r).overlaps(leg.get_window_extent(r))
    assert stamp.get_window_extent(r).y1 <= leg.get_window_extent(r).y0
    plotting.close(fig)


def test_panel_letters_can_set_every_title_to_the_paper_size():
    fig, axes = plotting.figure(2, 1)
    for ax in axes.flat:
        ax.set_title("a title set after plotting.figure")
    assert axes[0, 0].title.get_fontsize() != 10  # matplotlib's default, outside the paper rc
    plotting.panel_letters(axes, title_size=10)
    assert [ax.title.get_fontsize() for ax in axes.flat] == [10, 10]
    plotting.close(fig)
