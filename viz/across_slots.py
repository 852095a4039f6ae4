"""The across-L page (`benchmarks/bench_slots.py --html`): as the task grows (L slots per column), what
each dictionary keeps alive and how much of it the ground truth explains, beside the neurons and the
random-direction control.

Input: one series per unit kind (the neurons, or a dictionary such as "TopK 2048"), each a list of
points, one per L: {"L", "seeds", "explained": (mean, lo, hi), "random": mean or None, "alive":
(mean, lo, hi), "size"} with shares as fractions and lo/hi the range over seeds. The page stands alone
(plotly.js inline) so that it opens offline from the benchmark's output folder.
"""
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.common import figure_html, section, standalone_page

COLOURS = ("#444444", "#2f5fd0", "#d0602f", "#2f9e5a", "#9b3fc0", "#b59a16", "#17a2b8")


def _bars(points: list, key: str, scale: float = 1.0) -> dict:
    """Asymmetric error bars: the range over seeds around the mean."""
    return dict(type="data", symmetric=False, array=[(p[key][2] - p[key][0]) * scale for p in points],
                arrayminus=[(p[key][0] - p[key][1]) * scale for p in points], thickness=1.2, width=4)


def across_slots_figure(series: dict) -> tuple[go.Figure, str]:
    """Two panels against L: explained share of the alive units (the random control dashed), and
    alive units (log axis). `series`: name -> points (module docstring)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Explained share of the alive units", "Alive units"))
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        xs = [p["L"] for p in points]
        seeds = [p["seeds"] for p in points]
        fig.add_trace(go.Scatter(
            x=xs, y=[100 * p["explained"][0] for p in points], error_y=_bars(points, "explained", 100),
            mode="lines+markers", name=name, legendgroup=name, line=dict(color=colour, width=2), customdata=seeds,
            hovertemplate=f"{name}<br>L %{{x}}<br>explained %{{y:.1f}}% (mean of %{{customdata}} seeds)<extra></extra>"),
            row=1, col=1)
        if any(p.get("random") is not None for p in points):
            fig.add_trace(go.Scatter(
                x=xs, y=[None if p.get("random") is None else 100 * p["random"] for p in points],
                mode="lines+markers", name=f"{name}: random directions", legendgroup=name, showlegend=False,
                line=dict(color=colour, width=1, dash="dot"), marker=dict(symbol="x", size=7),
                hovertemplate=f"random directions at {name}'s densities<br>L %{{x}}<br>explained %{{y:.1f}}%"
                              "<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(
            x=xs, y=[p["alive"][0] for p in points], error_y=_bars(points, "alive"), mode="lines+markers",
            name=name, legendgroup=name, showlegend=False, line=dict(color=colour, width=2),
            customdata=[[p["size"], p["seeds"]] for p in points],
            hovertemplate=f"{name}<br>L %{{x}}<br>%{{y:.0f}} of %{{customdata[0]}} alive "
                          "(mean of %{customdata[1]} seeds)<extra></extra>"), row=1, col=2)
    ls = sorted({p["L"] for points in series.values() for p in points})
    for col in (1, 2):
        fig.update_xaxes(title_text="L: slots per column (the task's size)", tickvals=ls, type="log", row=1, col=col)
    fig.update_yaxes(title_text="explained at held-out score >= 0.8 (%)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="alive units (fired on held-out inputs)", type="log", dtick=1, row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.22), margin=dict(t=40))
    caption = ("Left: the share of each kind's alive units whose best explanation, chosen on one set of fresh "
               "inputs, scores >= 0.8 on another; dotted with crosses, random directions at the same "
               "densities (the control). Right: how many units fire at all (a dictionary's size is its "
               "ceiling; the neurons' is 512). Each point is the mean over seeds, the bars their range; "
               "L = 4 is the seed's task.")
    return fig, caption


def across_slots_html(series: dict, table_html: str, title: str, footer: str = "") -> str:
    """The whole page: the chart, then the table it was drawn from (already HTML)."""
    if not series:
        raise ValueError("across_slots_html: no series to draw")
    fig, caption = across_slots_figure(series)
    body = section("What each dictionary recovers as the task grows", figure_html(fig, "across-slots", caption,
                                                                               height=560)) \
        + section("The numbers", table_html)
    return standalone_page(title, body, footer)
