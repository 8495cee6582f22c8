"""matplotlib renderers: each turns a plot's data (`tuningfork.viz._data`) into a
`matplotlib.figure.Figure` drawn on its own Agg canvas, never through pyplot, so nothing
leaks into (or depends on) pyplot's global state or the user's interactive backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tuningfork.exceptions import MissingExtra
from tuningfork.viz import _data as d

_INSTALL = "pip install 'tuningfork[viz]'"
_CMAP = "viridis"


def _import() -> tuple[Any, Any, Any]:
    try:
        import matplotlib
        import matplotlib.cm
        import matplotlib.colors
        import matplotlib.ticker
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingExtra(
            f"static plots need matplotlib, which is not installed; install it with: {_INSTALL}"
        ) from error
    return matplotlib, Figure, FigureCanvasAgg


def new_figure(
    width: int | None = None,
    height: int | None = None,
    dpi: float | None = None,
    default: tuple[int, int] = (800, 600),
) -> Any:
    """A Figure of ``width`` x ``height`` pixels at ``dpi`` on an Agg canvas."""
    _, figure_cls, canvas_cls = _import()
    dpi = 100.0 if dpi is None else float(dpi)
    w = default[0] if width is None else width
    h = default[1] if height is None else height
    fig = figure_cls(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    canvas_cls(fig)
    return fig


def _cmap(name: str = _CMAP) -> Any:
    matplotlib, _, _ = _import()
    return matplotlib.colormaps[name]


def _apply_axis(ax: Any, axis: d.Axis, which: str) -> None:
    set_label = ax.set_xlabel if which == "x" else ax.set_ylabel
    set_label(axis.label)
    if axis.is_log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        matplotlib, _, _ = _import()
        target = ax.xaxis if which == "x" else ax.yaxis
        target.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels
    elif axis.is_categorical:
        positions = list(range(len(axis.categories)))
        if which == "x":
            ax.set_xticks(positions, list(axis.categories))
            ax.set_xlim(-0.5, len(positions) - 0.5)
        else:
            ax.set_yticks(positions, list(axis.categories))
            ax.set_ylim(-0.5, len(positions) - 0.5)


def history(data: d.HistoryData, **size: Any) -> Any:
    fig = new_figure(**size)
    ax = fig.add_subplot()
    ax.scatter(data.x, data.y, s=18, color=d.STATE_COLORS["COMPLETE"], label=data.target_name)
    if data.best_y.size:
        ax.plot(data.x, data.best_y, drawstyle="steps-post", color="#d62728", label="best so far")
    ax.set_xlabel(data.x_label)
    ax.set_ylabel(data.target_name)
    if data.log_y:
        ax.set_yscale("log")
    ax.set_title(data.title)
    ax.legend()
    return fig


def parallel(data: d.ParallelData, **size: Any) -> Any:
    fig = new_figure(**size, default=(max(800, 160 * len(data.axes)), 600))
    ax = fig.add_subplot()
    norm_cols = []
    for axis, col in zip(data.axes, data.columns):
        norm_cols.append(_normalise(col, axis))
    cmap = _cmap("viridis_r" if data.direction == "minimize" else "viridis")
    low, high = d.finite_range(data.color)
    scale = (high - low) or 1.0
    order = np.argsort(data.color)
    if data.direction == "minimize":
        order = order[::-1]  # draw the best last, on top
    positions = np.arange(len(data.axes))
    for i in order:
        ys = [col[i] for col in norm_cols]
        ax.plot(positions, ys, color=cmap((data.color[i] - low) / scale), alpha=0.7, lw=1.2)
    ax.vlines(positions, 0, 1, colors="black", lw=1)
    for k, (axis, col) in enumerate(zip(data.axes, data.columns)):
        for y, text in _axis_ticks(col, axis):
            ax.text(k + 0.03, y, text, fontsize=8, va="center", ha="left")
    ax.set_xticks(positions, [a.label for a in data.axes])
    ax.set_xlim(-0.1, len(data.axes) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    ax.set_title(data.title)
    matplotlib, _, _ = _import()
    mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(low, high), cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=data.target_name)
    return fig


def _plane(values: np.ndarray, axis: d.Axis) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(values) if axis.is_log else values


def _normalise(col: np.ndarray, axis: d.Axis) -> np.ndarray:
    if axis.is_categorical:
        n = len(axis.categories)
        return col / (n - 1) if n > 1 else np.full_like(col, 0.5)
    plane = _plane(col, axis)
    low, high = d.finite_range(plane)
    if high == low:
        return np.full_like(plane, 0.5)
    return (plane - low) / (high - low)


def _axis_ticks(col: np.ndarray, axis: d.Axis) -> list[tuple[float, str]]:
    if axis.is_categorical:
        n = len(axis.categories)
        return [(i / (n - 1) if n > 1 else 0.5, c) for i, c in enumerate(axis.categories)]
    low, high = d.finite_range(col)
    if high == low:
        return [(0.5, f"{low:.3g}")]
    return [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")]


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


def slice_(data: d.SliceData, **size: Any) -> Any:
    rows, cols = _grid_shape(len(data.panels))
    fig = new_figure(**size, default=(320 * cols + 120, 300 * rows + 60))
    axes = fig.subplots(rows, cols, squeeze=False)
    numbers = np.concatenate([p.numbers for p in data.panels])
    vmin, vmax = (float(numbers.min()), float(numbers.max())) if numbers.size else (0, 1)
    scatter = None
    for k, ax in enumerate(axes.flat):
        if k >= len(data.panels):
            ax.set_visible(False)
            continue
        panel = data.panels[k]
        scatter = ax.scatter(
            panel.x, panel.y, c=panel.numbers, cmap="Blues", vmin=vmin, vmax=vmax, s=20,
            edgecolors="grey", linewidths=0.5,
        )  # fmt: skip
        _apply_axis(ax, panel.axis, "x")
        ax.set_ylabel(data.target_name)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes, label="trial")
    fig.suptitle(data.title)
    return fig


def contour(data: d.ContourData, **size: Any) -> Any:
    n = data.n_rows
    fig = new_figure(**size, default=(700, 560) if n == 1 else (280 * n + 120, 260 * n + 60))
    axes = fig.subplots(n, n, squeeze=False)
    zs = np.concatenate([p.z for p in data.panels])
    low, high = d.finite_range(zs)
    cmap = _cmap("viridis_r" if data.direction == "minimize" else "viridis")
    filled = set()
    mappable = None
    for panel in data.panels:
        ax = axes[panel.row, panel.col]
        filled.add((panel.row, panel.col))
        if panel.grid_z is not None and np.isfinite(panel.grid_z).any():
            levels = np.linspace(low, high, 16) if high > low else 16
            mappable = ax.contourf(
                panel.grid_x, panel.grid_y, panel.grid_z, levels=levels, cmap=cmap, alpha=0.85
            )
        ax.scatter(panel.x, panel.y, s=12, color="black", label="trials")
        _apply_axis(ax, panel.x_axis, "x")
        _apply_axis(ax, panel.y_axis, "y")
    for row in range(n):
        for col in range(n):
            if (row, col) not in filled:
                axes[row, col].set_visible(False)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label=data.target_name)
    fig.suptitle(data.title)
    return fig


def edf(data: d.EdfData, **size: Any) -> Any:
    fig = new_figure(**size)
    ax = fig.add_subplot()
    for curve in data.curves:
        ax.step(curve.values, curve.fraction, where="post", label=curve.name)
    ax.set_xlabel(data.target_name)
    ax.set_ylabel("cumulative probability")
    ax.set_ylim(0, 1.02)
    if data.log_x:
        ax.set_xscale("log")
    ax.set_title(data.title)
    ax.legend(title="study")
    return fig


def intermediate(data: d.IntermediateData, **size: Any) -> Any:
    fig = new_figure(**size)
    ax = fig.add_subplot()
    seen: set[str] = set()
    for curve in data.curves:
        label = curve.state if curve.state not in seen else "_nolegend_"
        seen.add(curve.state)
        ax.plot(
            curve.steps, curve.values, color=d.STATE_COLORS[curve.state], marker=".",
            markersize=4, lw=1.2, alpha=0.8, label=label,
        )  # fmt: skip
    ax.set_xlabel(data.step_label)
    ax.set_ylabel(data.target_name)
    if data.log_y:
        ax.set_yscale("log")
    ax.set_title(data.title)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: d.STATE_ORDER.index(labels[i]))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], title="state")
    return fig


def importance(data: d.ImportanceData, **size: Any) -> Any:
    fig = new_figure(**size, default=(800, max(300, 60 + 40 * len(data.names))))
    ax = fig.add_subplot()
    names = data.names[::-1]
    values = data.importances[::-1]
    bars = ax.barh(names, values, color=d.STATE_COLORS["COMPLETE"], label="importance")
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=3, fontsize=8)
    ax.set_xlabel("importance")
    ax.set_ylabel("parameter")
    ax.set_xlim(0, max(1e-12, float(values.max(initial=0))) * 1.15)
    ax.set_title(data.title)
    return fig


def timeline(data: d.TimelineData, **size: Any) -> Any:
    fig = new_figure(**size, default=(900, max(300, 100 + 40 * len(data.rows))))
    ax = fig.add_subplot()
    for state in d.STATE_ORDER:
        bars = [b for b in data.bars if b.state == state]
        if not bars:
            continue
        ax.barh(
            [b.row for b in bars], [b.end - b.start for b in bars],
            left=[b.start for b in bars], height=0.6, color=d.STATE_COLORS[state],
            edgecolor="white", label=state,
        )  # fmt: skip
    ax.set_yticks(range(len(data.rows)), data.rows)
    ax.invert_yaxis()
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("worker")
    ax.set_title(data.title)
    ax.legend(title="state")
    return fig


def rungs(data: d.RungsData, **size: Any) -> Any:
    budgets = sorted({b for br in data.brackets for b in br.budgets})
    fig = new_figure(**size, default=(max(700, 110 * len(budgets) + 200), 500))
    ax = fig.add_subplot()
    width = 0.8 / len(data.brackets)
    for k, br in enumerate(data.brackets):
        xs = [budgets.index(b) - 0.4 + width * (k + 0.5) for b in br.budgets]
        bars = ax.bar(xs, br.reached, width=width, label=f"{br.label} ({br.n_trials} trials)")
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(budgets)), [f"{b:g}" for b in budgets])
    ax.set_xlabel("rung budget (steps)")
    ax.set_ylabel("trials that reached the budget")
    ax.set_title(data.title)
    ax.legend()
    return fig


def pareto(data: d.ParetoData, **size: Any) -> Any:
    three = data.values.shape[1] == 3
    fig = new_figure(**size, default=(800, 650) if three else (800, 600))
    ax = fig.add_subplot(projection="3d") if three else fig.add_subplot()
    front = data.on_front
    cols = [data.values[:, k] for k in range(data.values.shape[1])]
    ax.scatter(*[c[~front] for c in cols], s=16, color="#9aa7b8", label="trial (dominated)")
    ax.scatter(*[c[front] for c in cols], s=26, color="#d62728", label="Pareto front")
    if not three and front.sum() > 1:
        order = data.front_order
        ax.plot(cols[0][order], cols[1][order], color="#d62728", lw=1, alpha=0.6)
    ax.set_xlabel(data.objective_names[0])
    ax.set_ylabel(data.objective_names[1])
    if three:
        ax.set_zlabel(data.objective_names[2])
    ax.set_title(data.title)
    ax.legend()
    return fig


def population(data: d.PopulationData, **size: Any) -> Any:
    fig = new_figure(**size, default=(900, 600))
    ax = fig.add_subplot()
    for series in data.members:
        color = d.member_color(series.member)
        for k, piece in enumerate(series.pieces()):
            ax.plot(
                series.steps[piece], series.values[piece], color=color, marker=".",
                markersize=5, lw=1.4, label=f"member {series.member}" if k == 0 else "_nolegend_",
            )  # fmt: skip
    for edge in data.exploits:
        _exploit_edge(ax, edge, labelled=len(data.exploits) <= _MAX_EDGE_LABELS)
    if data.exploits:  # the arrows are annotations: give them one legend entry
        ax.plot([], [], ls="--", color="black", lw=1, label="exploit: donor -> recipient")
    ax.set_xlabel(data.step_label)
    ax.set_ylabel(data.target_name)
    if data.log_y:
        ax.set_yscale("log")
    ax.set_title(data.title)
    ax.legend(fontsize=8)
    return fig


# beyond this many exploits, the "donor -> recipient" labels would hide the curves
_MAX_EDGE_LABELS = 40


def _exploit_edge(ax: Any, edge: d.ExploitEdge, *, labelled: bool) -> None:
    color = d.member_color(edge.member)
    start = (edge.step, edge.donor_value)
    ax.plot(*start, marker="o", markersize=5, mfc="none", color=color)
    if edge.to_step is None or edge.to_value is None:
        return  # the recipient has not reported since the copy
    end = (edge.to_step, edge.to_value)
    arrow = {"arrowstyle": "->", "linestyle": "--", "color": color, "lw": 1.0}
    ax.annotate("", xy=end, xytext=start, arrowprops=arrow)
    if labelled:
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        text = f"{edge.donor}->{edge.recipient}"
        ax.annotate(text, middle, fontsize=7, color=color, ha="left", va="bottom")


def schedule(data: d.ScheduleData, **size: Any) -> Any:
    rows, cols = _grid_shape(len(data.panels), max_cols=2)
    fig = new_figure(**size, default=(460 * cols + 140, 300 * rows + 80))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(data.panels):
            ax.set_visible(False)
            continue
        panel = data.panels[k]
        for line in panel.lines:
            color = d.member_color(line.member) if line.member is not None else "#1f77b4"
            ax.step(line.steps, line.values, where="post", color=color, lw=1.4, label=line.label)
            ax.plot(line.steps[:-1], line.values[:-1], ".", color=color, markersize=5)
        _apply_axis(ax, panel.axis, "y")
        ax.set_xlabel(data.step_label)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(data.title)
    return fig


RENDERERS: dict[str, Callable[..., Any]] = {
    "history": history,
    "parallel": parallel,
    "slice": slice_,
    "contour": contour,
    "edf": edf,
    "intermediate": intermediate,
    "importance": importance,
    "timeline": timeline,
    "rungs": rungs,
    "pareto": pareto,
    "population": population,
    "schedule": schedule,
}
