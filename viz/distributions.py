"""circuit_bell_curves.html: how features and neurons are distributed.

- the log10 density histogram of all features (the paper's figure) with the neurons' on the same axis;
- for the top features (by explanation score), the histogram of their activation where they fire
  (the data's own histogram, not a fitted curve);
- the same for the neurons with the best explanations, for comparison; both grids share one x axis,
  and features are blue and neurons purple on every page.
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


COLORS = {"features": "#2f5fd0", "neurons": "#8e44ad", "feature": "#2f5fd0", "neuron": "#8e44ad"}   # as on index.html
NARROW_CV = 0.25    # a unit whose activation where it fires varies less than this (std / mean) is an on/off detector


def density_figure(densities: dict, n_inputs: int, ultralow: float) -> tuple[go.Figure, str]:
    """Histograms of log10(firing frequency) of every unit that fired, features and neurons overlaid on
    one x axis (as a share of each kind's units); dead units counted in the caption."""
    fig = go.Figure()
    said = []
    lo = 0.0
    for unit, density in densities.items():
        density = np.asarray(density, float)
        alive = density > 0
        logd = np.log10(density[alive])
        lo = min(lo, float(logd.min()) if len(logd) else 0.0)
        fig.add_trace(go.Histogram(x=logd, xbins=dict(start=FLOOR, end=0.0001, size=0.1), histnorm="percent",
                                   marker_color=COLORS[unit], opacity=0.6, name=unit,
                                   hovertemplate="log10 density %{x}<br>%{y:.1f}% of " + unit + "<extra></extra>"))
        med = float(np.median(density[alive])) if alive.any() else 0.0
        said.append(f"{int((~alive).sum())} of {len(density)} {unit} never fired, the others fire on a median "
                    f"{med:.1%} of inputs")
    fig.add_vline(x=math.log10(ultralow), line_dash="dash", line_color="#c0392b",
                  annotation_text=f"ultralow ({ultralow:.1%})", annotation_position="top left")
    fig.update_layout(barmode="overlay", xaxis_title="log10 of the share of inputs a unit fires on",
                      yaxis_title="% of the units of its kind", bargap=0.05, margin=dict(t=30, b=50, l=60, r=20),
                      xaxis=dict(range=[max(FLOOR, math.floor(lo * 2) / 2 - 0.25), 0.05]),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    caption = (f"Firing frequency on {n_inputs:,} fresh inputs, features (blue) and neurons (purple) on one log10 axis: "
               f"right is dense, left of the red line is ultralow. " + "; ".join(said) + " (not drawn).")
    return fig, caption


def activation_grid(unit_ids, labels_of, values_of, kind: str, x_max: float) -> go.Figure:
    """Small multiples: one histogram per unit of its activations where it is active, all on 0..x_max."""
    n = len(unit_ids)
    rows = max(1, math.ceil(n / GRID_COLS))
    titles = [f"{kind} {u}: {labels_of(u)}" for u in unit_ids]
    fig = make_subplots(rows=rows, cols=GRID_COLS, subplot_titles=[t if len(t) <= 42 else t[:40] + "…" for t in titles],
                        horizontal_spacing=0.06, vertical_spacing=0.16 if rows > 1 else 0.2)
    edges = np.linspace(0, x_max, N_BINS + 1)          # one set of bins: panels compare by eye
    for i, u in enumerate(unit_ids):
        r, c = divmod(i, GRID_COLS)
        counts, _ = np.histogram(values_of(u), bins=edges)    # binned here: the page holds counts, not 32k values
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                             marker=dict(color=COLORS[kind], line=dict(width=0)),
                             name=f"{kind} {u}", showlegend=False,
                             customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                             hovertemplate="activation %{customdata[0]:.3f} to %{customdata[1]:.3f}<br>%{y} inputs<extra>"
                             + esc(titles[i]) + "</extra>"),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title_text="activation", title_standoff=2, range=[0, x_max], row=r + 1, col=c + 1)
        fig.update_yaxes(title_text="inputs", title_standoff=2, row=r + 1, col=c + 1)
    for ann in fig.layout.annotations:
        ann.font = dict(size=11)
    fig.update_layout(height=max(300, 260 * rows), margin=dict(t=40, b=40, l=50, r=20), bargap=0.02)
    return fig


def shape_note(unit_ids, values_of, kind: str, corr_of=None, labels_of=None) -> str:
    """What the panels show for this run: how many are narrow spikes (on/off) and how many broad."""
    cv = {}
    for u in unit_ids:
        v = np.asarray(values_of(u), float)
        cv[u] = float(v.std() / v.mean()) if len(v) and v.mean() > 0 else 0.0
    narrow = [u for u in unit_ids if cv[u] < NARROW_CV]
    broad = [u for u in unit_ids if cv[u] >= NARROW_CV]
    note = (f"{len(narrow)} of these {len(unit_ids)} {kind}s fire at a nearly fixed strength (std/mean < {NARROW_CV:g}: "
            f"on/off detectors), {len(broad)} spread broadly")
    if broad and corr_of is not None:
        best = []
        for u in broad[:3]:
            var, r = corr_of(u)
            if var is not None:
                best.append(f"{kind} {u} ({labels_of(u)}): r = {r:+.2f} with {var}")
        if best:
            note += " (their strength tracks a magnitude where they fire: " + "; ".join(best) + ")"
    return note + "."


def build(paths, rd) -> tuple[str, int]:
    """The page's HTML and its number of plots; `rd` is the ReportInputs bundle of viz.build."""
    parts, n_plots = [], 0
    feats, neurons = rd.features, rd.neurons
    n = rd.n_fresh

    fig, cap = density_figure({"features": feats["density"].to_numpy(), "neurons": neurons["density"].to_numpy()},
                              n, rd.ultralow)
    parts.append(section("Feature and neuron density (log10 firing frequency), the paper's histogram",
                         figure_html(fig, "density", cap, height=360), anchor="density"))
    n_plots += 1

    top_f = rd.top_features(N_TOP_UNITS)
    top_n = rd.top_neurons(N_TOP_UNITS)
    tops = [rd.feature_values(u) for u in top_f] + [rd.neuron_values(j) for j in top_n]
    x_max = max([float(np.max(v)) for v in tops if len(v)] + [1e-6]) * 1.02

    def corr_of(u):
        rs = {var: rd.profiles.corr[var][u] for var in rd.profiles.corr}
        rs = {k: v for k, v in rs.items() if np.isfinite(v)}
        if not rs:
            return None, 0.0
        var = max(rs, key=lambda k: abs(rs[k]))
        return var, float(rs[var])
    if top_f:
        fig = activation_grid(top_f, rd.feature_label, rd.feature_values, "feature", x_max)
        cap = (f"For the {len(top_f)} best-explained alive features, each panel counts the fresh inputs by the feature's "
               f"activation where it fires (> 0), on the same x axis as the neurons below; its title gives the feature's "
               f"explanation. " + shape_note(top_f, rd.feature_values, "feature", corr_of, rd.feature_label))
        parts.append(section("Where the top features fire: activation histograms", figure_html(fig, "acts-features", cap),
                             anchor="acts-features"))
        n_plots += 1
    else:
        parts.append(section("Where the top features fire", '<p class="note">No feature fired on the fresh inputs.</p>'))
    if top_n:
        fig = activation_grid(top_n, rd.neuron_label, rd.neuron_values, "neuron", x_max)
        cap = (f"The same for the {len(top_n)} best-explained neurons, on the same x axis: each panel counts the fresh inputs "
               f"by the neuron's activation where it is active ("
               + ("> 0" if rd.neuron_threshold <= 0 else f"above {rd.neuron_threshold:g} of its maximum on these inputs")
               + ", the rule the explanations use). " + shape_note(top_n, rd.neuron_values, "neuron"))
        parts.append(section("Where the top neurons fire, for comparison", figure_html(fig, "acts-neurons", cap),
                             anchor="acts-neurons"))
        n_plots += 1
    return page(paths, "distributions_html", "Activation distributions", "\n".join(parts), subtitle=rd.subtitle, footer=rd.footer), n_plots
