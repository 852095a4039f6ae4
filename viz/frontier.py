"""sae/sweep/frontier.html: the sparsity/fidelity frontier of an SAE sweep (`train_sae.py --sweep`).

One point per SAE: FVU against L0, both on the held-out activations. When L0 hardly moves across
the sweep (TopK fixes it at k, so a sweep over d_sae or lr gives one vertical line of points) the
x axis is the swept value instead, and the caption says L0 is fixed. The page is standalone and
offline: plotly.js is written into it (it lives beside the SAEs, not beside the reports' copy).
"""
import math

import plotly.graph_objects as go

from viz.common import figure_html, standalone_page

# L0 counts as constant when its largest value is within this factor of its smallest
CONSTANT_L0_RATIO = 1.05


def _constant_l0(l0s: list) -> bool:
    vals = [v for v in l0s if v is not None and v > 0]
    return bool(vals) and max(vals) <= CONSTANT_L0_RATIO * min(vals)


def _log_useful(values: list) -> bool:
    """A log axis when every value is positive and they span more than a factor of 4."""
    vals = [v for v in values if v is not None]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 4


def frontier_figure(rows: list[dict], name: str) -> tuple[go.Figure, str]:
    """The chart and its caption. `rows`: one dict per SAE with the swept value under `name` and
    "l0", "fvu", "dead_share", "spliced_exact_match" (held-out)."""
    values = [r[name] for r in rows]
    l0s, fvus = [r["l0"] for r in rows], [r["fvu"] for r in rows]
    by_value = _constant_l0(l0s) and len(rows) > 1
    xs = values if by_value else l0s
    labels = [f"{name}={v:g}" if isinstance(v, (int, float)) else f"{name}={v}" for v in values]
    dead = [r.get("dead_share") for r in rows]
    fig = go.Figure(go.Scatter(
        x=xs, y=fvus, mode="lines+markers+text", text=labels, textposition="top center",
        marker=dict(size=11, color=[d if d is not None else 0 for d in dead], colorscale="Reds", cmin=0, cmax=1,
                    showscale=True, colorbar=dict(title="dead share"), line=dict(width=1, color="#333")),
        customdata=[[r["l0"], r.get("dead_share"), r.get("spliced_exact_match")] for r in rows],
        hovertemplate="L0 %{customdata[0]:.2f}<br>FVU %{y:.4f}<br>dead %{customdata[1]:.1%}<br>"
                      "spliced exact-match %{customdata[2]:.2%}<extra>%{text}</extra>"))
    fig.update_layout(xaxis_title=(f"{name} (swept; L0 is fixed)" if by_value
                                   else "L0: active features per input (held-out; lower is sparser)"),
                      yaxis_title="FVU: unexplained variance (held-out; lower is better)", showlegend=False)
    if _log_useful(xs):
        fig.update_xaxes(type="log")
    if _log_useful(fvus):
        fig.update_yaxes(type="log")
    n = len(rows)
    if by_value:
        l0 = [v for v in l0s if v is not None]
        how = (f"L0 is {min(l0):.3g}-{max(l0):.3g} for every SAE (a TopK sweep fixes it at k), so FVU is drawn "
               f"against the swept {name} instead; lower is better.")
    else:
        how = "Down and to the left is better: fewer active features and less unexplained variance."
    best = min((r for r in rows if r["fvu"] is not None and not math.isnan(r["fvu"])), key=lambda r: r["fvu"],
               default=None)
    caption = (f"Each point is one of the {n} SAEs of the sweep over {name}, measured on held-out activations "
               f"the SAEs never trained on. FVU = share of the hidden layer's variance the reconstruction misses; "
               f"L0 = mean number of features active per input. {how} Colour: share of dead features (never "
               f"active on the held-out rows). Hover for dead share and spliced exact-match."
               + (f" Lowest FVU: {name}={best[name]:g} ({best['fvu']:.4f})." if best and isinstance(best[name], (int, float))
                  else ""))
    return fig, caption


def frontier_html(rows: list[dict], name: str, title: str) -> str:
    """The whole page (plotly.js inline, so it opens offline from anywhere)."""
    if not rows:
        raise ValueError("frontier_html: no sweep rows")
    fig, caption = frontier_figure(rows, name)
    return standalone_page(title, figure_html(fig, "frontier", caption, height=520))
