"""plotly renderers: each turns a plot's data (`tuningfork.viz._data`) into a
`plotly.graph_objects.Figure` (interactive HTML, or JSON for a web dashboard).

Categorical parameters are drawn at positions 0..n-1 with their choices as tick labels
(``tickvals`` / ``ticktext``), as in the matplotlib renderer; log parameters on axes of
``type="log"``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np

from tuningfork.exceptions import MissingExtra
from tuningfork.viz import _data as d

_INSTALL = "pip install 'tuningfork[viz]'"
# every renderer takes the size options: width and height in pixels; dpi (matplotlib's)
# is accepted and unused
_Px = int | None
_Dpi = float | None


def _import() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as error:
        raise MissingExtra(
            f"interactive plots need plotly, which is not installed; install it with: {_INSTALL}"
        ) from error
    return go, make_subplots


def _layout(fig: Any, title: str, width: int | None, height: int | None, **extra: Any) -> Any:
    # plotly reads tags in text as formatting: a study named "a<i>b" must show as typed
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, template="plotly_white", **extra
    )
    if width is not None:
        fig.update_layout(width=width)
    if height is not None:
        fig.update_layout(height=height)
    return fig


def _axis_props(axis: d.Axis) -> dict[str, Any]:
    props: dict[str, Any] = {"title": {"text": html.escape(axis.label, quote=False)}}
    if axis.is_log:
        props["type"] = "log"
    elif axis.is_categorical:
        props.update(
            type="linear",
            tickmode="array",
            tickvals=list(range(len(axis.categories))),
            ticktext=list(axis.categories),
            range=[-0.5, len(axis.categories) - 0.5],
        )
    return props


def _list(values: np.ndarray) -> list[Any]:
    return values.tolist()


def _gaps(values: np.ndarray) -> list[Any]:
    """``values`` as nested lists with None where not finite: plotly leaves a gap there."""
    shown = values.astype(object)
    shown[~np.isfinite(values)] = None
    return shown.tolist()


def _hover(numbers: np.ndarray) -> list[str]:
    return [f"trial {n}" for n in numbers.tolist()]


def history(data: d.HistoryData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, _ = _import()
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=_list(data.x), y=_list(data.y), mode="markers", name=data.target_name,
            marker={"color": d.STATE_COLORS["COMPLETE"]}, text=_hover(data.numbers),
        )
    )  # fmt: skip
    if data.best_y.size:
        fig.add_trace(
            go.Scatter(
                x=_list(data.x), y=_list(data.best_y), mode="lines", name="best so far",
                line={"shape": "hv", "color": "#d62728"},
            )
        )  # fmt: skip
    fig.update_xaxes(title_text=data.x_label)
    fig.update_yaxes(title_text=data.target_name, type="log" if data.log_y else "linear")
    return _layout(fig, data.title, width, height)


def parallel(
    data: d.ParallelData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, _ = _import()
    dims = []
    for axis, col in zip(data.axes, data.columns):
        dim: dict[str, Any] = {"label": axis.label}
        if axis.is_categorical:
            dim.update(
                values=_list(col),
                tickvals=list(range(len(axis.categories))),
                ticktext=list(axis.categories),
            )
        elif axis.is_log:
            logs = np.log10(col)
            low, high = d.finite_range(col)
            ticks = [t for t in d.log_ticks(low, high) if low <= t <= high] or [low, high]
            dim.update(
                values=_list(logs),
                tickvals=[float(np.log10(t)) for t in ticks],
                ticktext=[f"{t:g}" for t in ticks],
            )
        else:
            dim["values"] = _list(col)
        dims.append(dim)
    trace = go.Parcoords(
        dimensions=dims,
        line={
            "color": _list(data.color),
            "colorscale": "Viridis",
            "reversescale": data.direction == "minimize",
            "showscale": True,
            "colorbar": {"title": {"text": data.target_name}},
        },
        name=data.target_name,
    )
    return _layout(go.Figure(trace), data.title, width, height)


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


def slice_(data: d.SliceData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, make_subplots = _import()
    rows, cols = _grid_shape(len(data.panels))
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.06, vertical_spacing=0.15)
    numbers = np.concatenate([p.numbers for p in data.panels])
    for k, panel in enumerate(data.panels):
        row, col = k // cols + 1, k % cols + 1
        fig.add_trace(
            go.Scatter(
                x=_list(panel.x), y=_list(panel.y), mode="markers", name=panel.param,
                text=_hover(panel.numbers), showlegend=False,
                marker={
                    "color": _list(panel.numbers), "colorscale": "Blues",
                    "cmin": int(numbers.min()), "cmax": int(numbers.max()),
                    "showscale": k == 0, "colorbar": {"title": {"text": "trial"}},
                    "line": {"width": 0.5, "color": "grey"},
                },
            ),
            row=row, col=col,
        )  # fmt: skip
        fig.update_xaxes(**_axis_props(panel.axis), row=row, col=col)
        fig.update_yaxes(title_text=data.target_name if col == 1 else None, row=row, col=col)
    return _layout(fig, data.title, width, height)


def contour(data: d.ContourData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, make_subplots = _import()
    n = data.n_rows
    fig = make_subplots(rows=n, cols=n, horizontal_spacing=0.08, vertical_spacing=0.08)
    zs = np.concatenate([p.z for p in data.panels])
    low, high = d.finite_range(zs)
    shown = False
    for panel in data.panels:
        row, col = panel.row + 1, panel.col + 1
        if panel.grid_x is not None and panel.grid_y is not None and panel.grid_z is not None:
            fig.add_trace(
                go.Contour(
                    x=_list(panel.grid_x), y=_list(panel.grid_y), z=_gaps(panel.grid_z),
                    colorscale="Viridis", reversescale=data.direction == "minimize",
                    zmin=low, zmax=high, showscale=not shown, connectgaps=False,
                    colorbar={"title": {"text": data.target_name}},
                    name=f"{panel.y_param} vs {panel.x_param}",
                ),
                row=row, col=col,
            )  # fmt: skip
            shown = True
        fig.add_trace(
            go.Scatter(
                x=_list(panel.x), y=_list(panel.y), mode="markers", name="trials",
                marker={"color": "black", "size": 5}, showlegend=False,
                text=[f"{data.target_name}={z:.4g}" for z in panel.z.tolist()],
            ),
            row=row, col=col,
        )  # fmt: skip
        fig.update_xaxes(**_axis_props(panel.x_axis), row=row, col=col)
        fig.update_yaxes(**_axis_props(panel.y_axis), row=row, col=col)
    return _layout(fig, data.title, width, height)


def edf(data: d.EdfData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, _ = _import()
    fig = go.Figure()
    for curve in data.curves:
        fig.add_trace(
            go.Scatter(
                x=_list(curve.values), y=_list(curve.fraction), mode="lines",
                line={"shape": "hv"}, name=curve.name,
            )
        )  # fmt: skip
    fig.update_xaxes(title_text=data.target_name, type="log" if data.log_x else "linear")
    fig.update_yaxes(title_text="cumulative probability", range=[0, 1.02])
    return _layout(fig, data.title, width, height, legend_title_text="study")


def intermediate(
    data: d.IntermediateData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, _ = _import()
    fig = go.Figure()
    seen: set[str] = set()
    for curve in sorted(data.curves, key=lambda c: d.STATE_ORDER.index(c.state)):
        fig.add_trace(
            go.Scatter(
                x=_list(curve.steps), y=_list(curve.values), mode="lines+markers",
                name=curve.state, legendgroup=curve.state, showlegend=curve.state not in seen,
                line={"color": d.STATE_COLORS[curve.state]}, marker={"size": 4},
                text=[f"trial {curve.number}"] * len(curve.steps),
            )
        )  # fmt: skip
        seen.add(curve.state)
    fig.update_xaxes(title_text=data.step_label)
    fig.update_yaxes(title_text=data.target_name, type="log" if data.log_y else "linear")
    return _layout(fig, data.title, width, height, legend_title_text="state")


def importance(
    data: d.ImportanceData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, _ = _import()
    fig = go.Figure(
        go.Bar(
            x=_list(data.importances[::-1]), y=data.names[::-1], orientation="h",
            name="importance", text=[f"{v:.2f}" for v in data.importances[::-1].tolist()],
            textposition="outside", marker={"color": d.STATE_COLORS["COMPLETE"]},
        )
    )  # fmt: skip
    fig.update_xaxes(title_text="importance")
    fig.update_yaxes(title_text="parameter")
    return _layout(fig, data.title, width, height)


def timeline(
    data: d.TimelineData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, _ = _import()
    fig = go.Figure()
    for state in d.STATE_ORDER:
        bars = [b for b in data.bars if b.state == state]
        if not bars:
            continue
        fig.add_trace(
            go.Bar(
                x=[b.end - b.start for b in bars], base=[b.start for b in bars],
                y=[data.rows[b.row] for b in bars], orientation="h", name=state,
                marker={"color": d.STATE_COLORS[state]},
                text=[f"trial {b.number}" for b in bars],
                hovertemplate="%{text}: %{base:.3g} s to %{x:.3g} s later<extra></extra>",
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="wall-clock time (s)")
    fig.update_yaxes(
        title_text="worker", type="category", categoryorder="array",
        categoryarray=data.rows, autorange="reversed",
    )  # fmt: skip
    return _layout(fig, data.title, width, height, barmode="overlay", legend_title_text="state")


def rungs(data: d.RungsData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, _ = _import()
    fig = go.Figure()
    for br in data.brackets:
        fig.add_trace(
            go.Bar(
                x=[f"{b:g}" for b in br.budgets], y=_list(br.reached),
                name=f"{br.label} ({br.n_trials} trials)", text=_list(br.reached),
                textposition="outside",
            )
        )  # fmt: skip
    budgets = sorted({b for br in data.brackets for b in br.budgets})
    fig.update_xaxes(
        title_text="rung budget (steps)", type="category", categoryorder="array",
        categoryarray=[f"{b:g}" for b in budgets],
    )  # fmt: skip
    fig.update_yaxes(title_text="trials that reached the budget")
    return _layout(fig, data.title, width, height, barmode="group")


def pareto(data: d.ParetoData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None) -> Any:
    go, _ = _import()
    front = data.on_front
    cols = [data.values[:, k] for k in range(data.values.shape[1])]
    fig = go.Figure()
    names = data.objective_names
    if len(cols) == 3:
        for mask, name, color in ((~front, "trial (dominated)", "#9aa7b8"),
                                  (front, "Pareto front", "#d62728")):  # fmt: skip
            fig.add_trace(
                go.Scatter3d(
                    x=_list(cols[0][mask]), y=_list(cols[1][mask]), z=_list(cols[2][mask]),
                    mode="markers", name=name, marker={"color": color, "size": 4},
                    text=_hover(data.numbers[mask]),
                )
            )  # fmt: skip
        fig.update_layout(
            scene={
                "xaxis": {"title": {"text": names[0]}},
                "yaxis": {"title": {"text": names[1]}},
                "zaxis": {"title": {"text": names[2]}},
            }
        )
        return _layout(fig, data.title, width, height)
    order = data.front_order
    fig.add_trace(
        go.Scatter(
            x=_list(cols[0][~front]), y=_list(cols[1][~front]), mode="markers",
            name="trial (dominated)", marker={"color": "#9aa7b8"},
            text=_hover(data.numbers[~front]),
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=_list(cols[0][order]), y=_list(cols[1][order]), mode="markers+lines",
            name="Pareto front", marker={"color": "#d62728", "size": 8},
            line={"color": "#d62728", "width": 1}, text=_hover(data.numbers[order]),
        )
    )  # fmt: skip
    fig.update_xaxes(title_text=names[0])
    fig.update_yaxes(title_text=names[1])
    return _layout(fig, data.title, width, height)


def population(
    data: d.PopulationData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, _ = _import()
    fig = go.Figure()
    for series in data.members:
        color = d.member_color(series.member)
        name = f"member {series.member}"
        for k, piece in enumerate(series.pieces()):
            fig.add_trace(
                go.Scatter(
                    x=_list(series.steps[piece]), y=_list(series.values[piece]),
                    mode="lines+markers", name=name, legendgroup=name, showlegend=k == 0,
                    line={"color": color}, marker={"size": 5},
                    text=[f"{name}, trial {n}" for n in series.numbers[piece].tolist()],
                )
            )  # fmt: skip
    if data.exploits:
        fig.add_trace(_exploit_trace(go, data.exploits))
    fig.update_xaxes(title_text=data.step_label)
    fig.update_yaxes(title_text=data.target_name, type="log" if data.log_y else "linear")
    return _layout(fig, data.title, width, height, legend_title_text="population")


def _exploit_trace(go: Any, edges: list[d.ExploitEdge]) -> Any:
    """Every exploit in one trace: a dashed segment from the donor's point to an arrow
    head at the recipient's next point, segments separated by gaps (None)."""
    xs: list[Any] = []
    ys: list[Any] = []
    texts: list[str] = []
    symbols: list[str] = []
    for edge in edges:
        text = (
            f"exploit at step {edge.step}: trial {edge.recipient} (member {edge.member}) "
            f"copied trial {edge.donor} (member {edge.donor_member}, "
            f"value {edge.donor_value:.4g}); {_changes(edge)}"
        )
        xs.append(edge.step)
        ys.append(edge.donor_value)
        symbols.append("circle-open")
        if edge.to_step is not None:
            xs.append(edge.to_step)
            ys.append(edge.to_value)
            symbols.append("arrow")
        xs.append(None)
        ys.append(None)
        symbols.append("circle-open")
        texts += [text] * (len(xs) - len(texts))
    return go.Scatter(
        x=xs, y=ys, mode="lines+markers", name="exploit: donor -> recipient",
        line={"dash": "dash", "color": "black", "width": 1},
        marker={"symbol": symbols, "size": 9, "angleref": "previous", "color": "black"},
        hovertext=texts, hoverinfo="text", connectgaps=False,
    )  # fmt: skip


def _changes(edge: d.ExploitEdge) -> str:
    changed = [
        f"{name} {_short(edge.before.get(name))} -> {_short(value)}"
        for name, value in edge.after.items()
        if edge.before.get(name) != value
    ]
    return html.escape(", ".join(changed) or "no parameter changed", quote=False)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def schedule(
    data: d.ScheduleData, *, width: _Px = None, height: _Px = None, dpi: _Dpi = None
) -> Any:
    go, make_subplots = _import()
    rows = len(data.panels)
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=min(0.08, 0.3 / rows),
        subplot_titles=[html.escape(p.param, quote=False) for p in data.panels],
    )  # fmt: skip
    for row, panel in enumerate(data.panels, 1):
        for line in panel.lines:
            color = d.member_color(line.member) if line.member is not None else None
            fig.add_trace(
                go.Scatter(
                    x=_list(line.steps), y=_list(line.values), mode="lines+markers",
                    name=line.label, legendgroup=line.label, showlegend=row == 1,
                    line={"shape": "hv", "color": color}, marker={"size": 5},
                    text=[f"{line.label}, trial {n}" for n in line.numbers.tolist()],
                ),
                row=row, col=1,
            )  # fmt: skip
        fig.update_yaxes(**_axis_props(panel.axis), row=row, col=1)
    fig.update_xaxes(title_text=data.step_label, row=rows, col=1)
    if height is None:  # one panel per parameter: grow with them
        height = max(450, 240 * rows + 120)
    return _layout(fig, data.title, width, height)


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
