"""Pictures of a schedule: a Gantt chart (vessels, tanks, CDU feeds), tank inventories and the property of
each charging tank over time against its spec. Matplotlib for PNG files, Plotly for the page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .instance import Instance

CHART_SUFFIXES = (".png", ".html")  # what a chart file may be named: an image, or an interactive page
CHART_KIND = "a chart is an image or an interactive page"
_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]


def gantt_bars(inst: Instance, sched: dict[str, Any]) -> list[dict[str, Any]]:
    """One bar per operation and period: row, period, label, color key."""
    bars = []
    for r in sched.get("unloads", []):
        bars.append({"row": r["vessel"], "period": r["period"], "label": f"->{r['tank']} {r['volume']:g}",
                     "key": r["tank"], "group": "vessel"})
        bars.append({"row": r["tank"], "period": r["period"], "label": f"<-{r['vessel']} {r['volume']:g}",
                     "key": "receive", "group": "tank"})
    for r in sched.get("transfers", []):
        bars.append({"row": r["from"], "period": r["period"], "label": f"->{r['to']} {r['volume']:g}", "key": "send",
                     "group": "tank"})
        bars.append({"row": r["to"], "period": r["period"], "label": f"<-{r['from']} {r['volume']:g}", "key": "receive",
                     "group": "tank"})
    for r in sched.get("charges", []):
        bars.append({"row": r["cdu"], "period": r["period"], "label": f"{r['tank']} {r['volume']:g}", "key": r["tank"],
                     "group": "cdu"})
        bars.append({"row": r["tank"], "period": r["period"], "label": f"->{r['cdu']} {r['volume']:g}", "key": "send",
                     "group": "tank"})
    return bars


def _rows(inst: Instance) -> list[str]:
    return [v.id for v in inst.vessels] + [t.id for t in inst.storage_tanks] + [t.id for t in inst.charging_tanks] + [
        d.id for d in inst.cdus]


def _color_map(inst: Instance) -> dict[str, str]:
    keys = [t.id for t in inst.tanks]
    # tank colours skip the green and red kept for receive / send bars
    palette = [c for c in _COLORS if c not in ("#59a14f", "#e15759")]
    cmap = {k: palette[i % len(palette)] for i, k in enumerate(keys)}
    cmap.update({"receive": "#59a14f", "send": "#e15759"})
    return cmap


def gantt_figure(inst: Instance, sched: dict[str, Any]):
    from vai.core.plots import pyplot

    plt = pyplot()

    rows = _rows(inst)
    cmap = _color_map(inst)
    fig, ax = plt.subplots(figsize=(max(8, inst.periods * 0.7), 0.5 * len(rows) + 1.5))
    ypos = {r: len(rows) - 1 - i for i, r in enumerate(rows)}
    merged: dict[tuple[str, int], list[dict]] = {}
    for b in gantt_bars(inst, sched):
        merged.setdefault((b["row"], b["period"]), []).append(b)
    for (row, t), bs in merged.items():
        key = bs[0]["key"]
        ax.barh(ypos[row], 0.92, left=t + 0.04, height=0.7, color=cmap.get(key, "#999999"), edgecolor="black", lw=0.4)
        label = "; ".join(b["label"] for b in bs)
        ax.text(t + 0.5, ypos[row], label, ha="center", va="center", fontsize=6, clip_on=True)
    for v in inst.vessels:
        ax.plot([v.arrival], [ypos[v.id]], marker="v", color="black", ms=6)
    ax.set_yticks(list(ypos.values()))
    ax.set_yticklabels(list(ypos.keys()))
    ax.set_xlim(0, inst.periods)
    ax.set_xticks(range(inst.periods + 1))
    ax.set_xlabel(f"period ({inst.period_hours:g} h each)")
    ax.grid(axis="x", lw=0.3)
    title = f"{inst.name}: {sched.get('status')} cost {sched.get('objective')}"
    ax.set_title(title + "  (v = vessel arrival; green receive, red send; CDU colour = feeding tank)", fontsize=9)
    fig.tight_layout()
    return fig


def tank_series(inst: Instance, sched: dict[str, Any]) -> tuple[dict[str, list[float]], dict[str, dict[str, list]]]:
    """Per tank: end-of-period volume (initial first); per charging tank and property: its value or None."""
    vols, props = {}, {}
    for t in inst.tanks:
        rows = [t.initial] + list(sched.get("inventory", {}).get(t.id, []))
        vols[t.id] = [float(sum(r.values())) for r in rows]
        props[t.id] = {p: [inst.property_of(r, p) for r in rows] for p in inst.properties}
    return vols, props


def inventory_figure(inst: Instance, sched: dict[str, Any]):
    from vai.core.plots import pyplot

    plt = pyplot()

    vols, props = tank_series(inst, sched)
    n_p = max(1, len(inst.properties))
    fig, axes = plt.subplots(1 + n_p, 1, figsize=(9, 3 * (1 + n_p)), sharex=True)
    x = list(range(-1, inst.periods))
    for i, t in enumerate(inst.tanks):
        axes[0].plot(x, vols[t.id], marker="o", ms=3, label=t.id, color=_COLORS[i % len(_COLORS)],
                     ls="-" if t.kind == "storage" else "--")
    axes[0].set_ylabel("volume (end of period)")
    axes[0].legend(fontsize=7, ncol=4)
    for j, p in enumerate(inst.properties):
        ax = axes[1 + j]
        for i, t in enumerate(inst.charging_tanks):
            color = _COLORS[(len(inst.storage_tanks) + i) % len(_COLORS)]
            ys = [float("nan") if v is None else v for v in props[t.id][p]]
            ax.plot(x, ys, marker="o", ms=3, label=t.id, color=color)
            if p in t.spec:
                ax.axhspan(t.spec[p][0], t.spec[p][1], color=color, alpha=0.12)
        ax.set_ylabel(f"{p} (charging tanks; bands = spec)")
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("period (-1 = initial)")
    fig.tight_layout()
    return fig


def save_png(fig, path: str | Path) -> Path:
    from vai.core.plots import save_figure

    return save_figure(fig, path, dpi=120)


def save_gantt_png(inst: Instance, sched: dict[str, Any], path: str | Path) -> Path:
    return save_png(gantt_figure(inst, sched), path)


def save_html(fig, path: str | Path) -> Path:
    """A Plotly figure as one self-contained HTML page (plotly.js inlined: opens offline, zoom and hover)."""
    from vai.core.io import atomic_write_text

    return atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))


def save_chart(kind: str, inst: Instance, sched: dict[str, Any], path: str | Path) -> Path:
    """`kind` "gantt" or "inventory" to `path`: a PNG, or an interactive page for `.html`."""
    from vai.core.io import check_output_kind

    if check_output_kind(path, "", CHART_SUFFIXES, CHART_KIND).suffix.lower() == ".html":
        return save_html((gantt_plotly if kind == "gantt" else inventory_plotly)(inst, sched), path)
    return save_png((gantt_figure if kind == "gantt" else inventory_figure)(inst, sched), path)


# -- Plotly (the page, and .html outputs) ------------------------------------------------------------
def gantt_plotly(inst: Instance, sched: dict[str, Any]):
    import plotly.graph_objects as go

    rows = _rows(inst)
    cmap = _color_map(inst)
    fig = go.Figure()
    seen = set()
    for b in gantt_bars(inst, sched):
        name = b["key"]
        fig.add_trace(go.Bar(x=[0.92], base=[b["period"] + 0.04], y=[b["row"]], orientation="h",
                             marker_color=cmap.get(name, "#999"), name=name, legendgroup=name,
                             showlegend=name not in seen, hovertext=f"period {b['period']}: {b['label']}",
                             hoverinfo="text", text=b["label"], textposition="inside"))
        seen.add(name)
    fig.update_layout(barmode="overlay", height=40 * len(rows) + 120, xaxis_title="period",
                      yaxis={"categoryorder": "array", "categoryarray": rows[::-1]}, margin={"t": 30})
    return fig


def inventory_plotly(inst: Instance, sched: dict[str, Any]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    vols, props = tank_series(inst, sched)
    n_p = len(inst.properties)
    fig = make_subplots(rows=1 + n_p, cols=1, shared_xaxes=True,
                        subplot_titles=["tank volume (end of period)"] + [f"{p} of charging tanks (dotted: spec)" for p in inst.properties])
    x = list(range(-1, inst.periods))
    for t in inst.tanks:
        fig.add_trace(go.Scatter(x=x, y=vols[t.id], name=t.id, mode="lines+markers"), row=1, col=1)
    for j, p in enumerate(inst.properties):
        for t in inst.charging_tanks:
            fig.add_trace(go.Scatter(x=x, y=props[t.id][p], name=f"{t.id} {p}", mode="lines+markers"), row=2 + j, col=1)
            if p in t.spec:
                for bound in t.spec[p]:
                    fig.add_hline(y=bound, line_dash="dot", row=2 + j, col=1)
    fig.update_layout(height=300 * (1 + n_p))
    return fig
