"""circuit_bell_curves.html: how features and neurons are distributed.

- the log10 feature-density histogram of all features (the paper's figure), and the same for neurons;
- for the top features (by explanation score), the histogram of their activation where they fire
  (the data's own histogram, not a fitted curve);
- the same for the neurons with the best explanations, for comparison.
"""
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.common import esc, figure_html, page, section

N_TOP_UNITS = 12        # features / neurons whose activation histograms are drawn in full
GRID_COLS = 4
N_BINS = 30         # bins of each activation histogram
FLOOR = -6.0        # log10 density shown for units that never fired (kept apart in the caption)


def density_figure(density: np.ndarray, unit: str, n_inputs: int, ultralow: float) -> tuple[go.Figure, str]:
    """Histogram of log10(firing frequency) of every unit that fired; dead units counted in the caption."""
    density = np.asarray(density, float)
    alive = density > 0
    logd = np.log10(density[alive])
    fig = go.Figure(go.Histogram(x=logd, xbins=dict(size=0.1), marker_color="#2f5fd0", name=unit,
                                 hovertemplate="log10 density %{x}<br>%{y} " + unit + "<extra></extra>"))
    fig.add_vline(x=math.log10(ultralow), line_dash="dash", line_color="#c0392b",
                  annotation_text=f"ultralow ({ultralow:.1%})", annotation_position="top left")
    fig.update_layout(xaxis_title=f"log10 of the share of inputs a {unit[:-1]} fires on",
                      yaxis_title=f"number of {unit}", bargap=0.05, margin=dict(t=30, b=50, l=60, r=20))
    n_dead = int((~alive).sum())
    caption = (f"Each bar counts the {unit} whose firing frequency on {n_inputs:,} fresh inputs falls in that "
               f"log10 bin: right is dense, left of the red line is ultralow; {n_dead} of {len(density)} {unit} "
               f"never fired and are not drawn.")
    return fig, caption


def activation_grid(unit_ids, labels_of, values_of, kind: str) -> go.Figure:
    """Small multiples: one histogram per unit of its activations where it is active."""
    n = len(unit_ids)
    rows = max(1, math.ceil(n / GRID_COLS))
    titles = [f"{kind} {u}: {labels_of(u)}" for u in unit_ids]
    fig = make_subplots(rows=rows, cols=GRID_COLS, subplot_titles=[t if len(t) <= 42 else t[:40] + "…" for t in titles],
                        horizontal_spacing=0.06, vertical_spacing=0.16 if rows > 1 else 0.2)
    for i, u in enumerate(unit_ids):
        r, c = divmod(i, GRID_COLS)
        counts, edges = np.histogram(values_of(u), bins=N_BINS)    # binned here: the page holds counts, not 32k values
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                             marker=dict(color="#2f5fd0" if kind == "feature" else "#8e44ad", line=dict(width=0)),
                             name=f"{kind} {u}", showlegend=False,
                             customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                             hovertemplate="activation %{customdata[0]:.3f} to %{customdata[1]:.3f}<br>%{y} inputs<extra>"
                             + esc(titles[i]) + "</extra>"),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title_text="activation", title_standoff=2, row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="inputs", title_standoff=2, row=r + 1, col=c + 1)
    for ann in fig.layout.annotations:
        ann.font = dict(size=11)
    fig.update_layout(height=max(300, 260 * rows), margin=dict(t=40, b=40, l=50, r=20), bargap=0.02)
    return fig


def build(paths, rd) -> tuple[str, int]:
    """The page's HTML and its number of plots; `rd` is the ReportInputs bundle of viz.build."""
    parts, n_plots = [], 0
    feats, neurons = rd.features, rd.neurons
    n = rd.n_fresh

    fig, cap = density_figure(feats["density"].to_numpy(), "features", n, rd.ultralow)
    fig2, cap2 = density_figure(neurons["density"].to_numpy(), "neurons", n, rd.ultralow)
    parts.append(section("Feature density (log10 firing frequency), the paper's histogram",
                         figure_html(fig, "density-features", cap, height=340), anchor="density-features"))
    parts.append(section("Neuron density, for comparison",
                         figure_html(fig2, "density-neurons", cap2, height=340), anchor="density-neurons"))
    n_plots += 2

    top_f = rd.top_features(N_TOP_UNITS)
    if top_f:
        fig = activation_grid(top_f, rd.feature_label, rd.feature_values, "feature")
        cap = (f"For the {len(top_f)} best-explained alive features, each panel counts the fresh inputs by the feature's "
               f"activation where it fires (> 0); its title gives the feature's explanation. A wide, flat panel is a ramp "
               f"(activation tracks a magnitude), a spike is an on/off detector.")
        parts.append(section("Where the top features fire: activation histograms", figure_html(fig, "acts-features", cap),
                             anchor="acts-features"))
        n_plots += 1
    else:
        parts.append(section("Where the top features fire", '<p class="note">No feature fired on the fresh inputs.</p>'))
    top_n = rd.top_neurons(N_TOP_UNITS)
    if top_n:
        fig = activation_grid(top_n, rd.neuron_label, rd.neuron_values, "neuron")
        cap = (f"The same for the {len(top_n)} best-explained neurons: each panel counts the fresh inputs by the neuron's "
               f"activation where it is active ("
               + ("> 0" if rd.neuron_threshold <= 0 else f"above {rd.neuron_threshold:g} of its maximum on these inputs")
               + ", the rule the explanations use).")
        parts.append(section("Where the top neurons fire, for comparison", figure_html(fig, "acts-neurons", cap),
                             anchor="acts-neurons"))
        n_plots += 1
    return page(paths, "distributions_html", "Activation distributions", "\n".join(parts), subtitle=rd.subtitle), n_plots
