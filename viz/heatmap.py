"""logic_circuit_map.html: which ground-truth concept each unit matches, features above neurons (one shared set of columns).

- F1 of every alive feature against every single ground-truth condition (rows grouped by the
  feature's explanation), and the same map for the neurons: monosemantic units show one bright
  cell per row, polysemantic ones a smear or nothing;
- the reference's view: pointer combination (p1-p2) x pointed value (a, then b), each cell
  labelled with the feature most specific to it (see `combo_map`) and coloured by how strongly
  that feature switches on there.
"""
import math

import numpy as np
import plotly.graph_objects as go

from viz.common import figure_html, page, section

MAX_ROWS = 120          # rows drawn per unit map (the best-scoring ones, each labelled); the caption says when capped
MAX_COLUMNS = 60        # conditions drawn: those some alive unit matches best (F1 >= MIN_COLUMN_F1), at most this many
MIN_COLUMN_F1 = 0.3
ROW_PX = 13             # height of a labelled row
LABEL_CHARS = 40        # row labels longer than this are cut (full text on hover)
COLUMN_CHARS = 16       # column labels longer than this are abbreviated (full text on hover)
MIN_CELL_LIFT = 0.25    # pointer x value cells whose best feature rises less than this show no label
SCALE = [[0, "#f7f8fb"], [0.3, "#c6d4f5"], [0.6, "#5f86e0"], [0.8, "#e0a030"], [1, "#b03a2e"]]


def unit_order(table, f1: np.ndarray, cap: int = MAX_ROWS):
    """Alive units, at most `cap` (best score first), then grouped by explanation (groups by their best score)."""
    alive = table[table["status"] == "alive"].copy()
    if len(alive) > cap:
        alive = alive.sort_values("score", ascending=False).head(cap)
    group_best = alive.groupby("explanation")["score"].transform("max")
    alive = alive.assign(_g=group_best).sort_values(["_g", "explanation", "score"], ascending=[False, True, False])
    return alive["unit"].to_numpy()


def pick_columns(hm: dict, features, neurons) -> np.ndarray:
    """Conditions worth a column: reached by some alive feature or neuron with F1 >= MIN_COLUMN_F1; at
    most MAX_COLUMNS (highest F1 first), shown in the grammar's order."""
    best = np.zeros(len(hm["concepts"]))
    for table, f1 in ((features, hm["feature_f1"]), (neurons, hm["neuron_f1"])):
        alive = (table["status"] == "alive").to_numpy()
        if alive.any():
            best = np.maximum(best, f1[alive].max(0))
    cols = np.flatnonzero(best >= MIN_COLUMN_F1)
    if len(cols) > MAX_COLUMNS:
        cols = np.sort(cols[np.argsort(-best[cols], kind="stable")[:MAX_COLUMNS]])
    if not len(cols):
        cols = np.sort(np.argsort(-best, kind="stable")[:min(MAX_COLUMNS, len(best))])
    return cols


def unit_map(kind: str, table, f1: np.ndarray, concepts: list, n_act: np.ndarray, support: np.ndarray,
             n_inputs: int) -> tuple[go.Figure, str, int]:
    """Heatmap [units x concepts] of F1, hover with precision, recall, support (derived exactly from
    F1 = 2 TP / (n_active + n_true))."""
    units = unit_order(table, f1)
    exp = table.set_index("unit").loc[units, "explanation"].to_numpy()
    z = f1[units]                                                                       # [rows, concepts]
    na = n_act[units][:, None]
    tp = z * (na + support[None, :]) / 2
    prec = np.where(na > 0, tp / np.maximum(na, 1), 0)
    rec = tp / np.maximum(support[None, :], 1)
    # numbers only (plotly stores them as typed arrays): the explanation is in the row label
    custom = np.round(np.stack([prec, rec, np.broadcast_to(support[None, :], z.shape)], axis=-1), 4).astype(np.float32)
    z = np.round(z, 4).astype(np.float32)
    ylabels = [f"{kind[0]}{u}: " + (e if len(e) <= LABEL_CHARS else e[:LABEL_CHARS - 1] + "…") for u, e in zip(units, exp)]
    # short column labels on the axis; the full condition in the hover
    xlabels = [c if len(c) <= COLUMN_CHARS else c[:COLUMN_CHARS - 1] + "…" for c in concepts]
    xlabels = [f"{x}\u200b" * (xlabels[:k].count(x) + 1) if xlabels.count(x) > 1 else x for k, x in enumerate(xlabels)]
    custom = np.concatenate([custom.astype(object), np.broadcast_to(np.array(concepts, dtype=object)[None, :, None],
                                                                     (*z.shape, 1))], axis=-1)
    fig = go.Figure(go.Heatmap(
        z=z, x=xlabels, y=ylabels, zmin=0, zmax=1, colorscale=SCALE, colorbar=dict(title="F1", thickness=12),
        customdata=custom, xgap=0, ygap=0,
        hovertemplate=(f"{kind} %{{y}}<br>concept: %{{customdata[3]}}<br>F1 %{{z:.3f}}, precision %{{customdata[0]:.3f}}, "
                       "recall %{customdata[1]:.3f}<br>support: %{customdata[2]:,} of " + f"{n_inputs:,} inputs"
                       "<extra></extra>")))
    n_rows = len(units)
    fig.update_layout(xaxis_title="ground-truth condition", yaxis_title=f"alive {kind}s, grouped by explanation",
                      yaxis=dict(autorange="reversed", tickfont=dict(size=10), automargin=True, dtick=1),
                      xaxis=dict(tickangle=-60, tickfont=dict(size=11), tickmode="linear", dtick=1, automargin=True, side="top"),
                      margin=dict(l=10, r=10, t=10, b=60))
    height = int(max(380, 170 + ROW_PX * n_rows))
    n_alive = int((table["status"] == "alive").sum())
    capped = f" (the {n_rows} best-scoring of {n_alive}; every {kind} is in {kind}s.csv)" if n_rows < n_alive else ""
    best = z.max(1)
    n_mono = int((best >= 0.8).sum())
    covered = int((z.max(0) >= 0.8).sum())
    caption = (f"Each row is an alive {kind}{capped}, each column a ground-truth condition; colour is the F1 of "
               f"'the {kind} is active' against 'the condition holds' on {n_inputs:,} fresh inputs (hover for the full "
               f"condition, precision, recall and support). Here {n_mono} of these {n_rows} {kind}s match one condition "
               f"with F1 ≥ 0.8 (a dark-red cell in the row), and {covered} of the {len(concepts)} conditions are matched "
               f"that well by some {kind}.")
    return fig, caption, height


def combo_map(means: np.ndarray, counts: np.ndarray, var: str, labels_of, max_act: np.ndarray) -> tuple[go.Figure, str]:
    """Pointer combination x value of `var`: which feature carries each cell (the reference's view).
    means [L*L, 10, d_sae]: mean activation of each feature on the cell's inputs (rows p1 * L + p2); max_act [d_sae].

    A cell's feature is the one whose mean activation rises most there above its mean over all
    inputs, in units of its own maximum ("lift"): the feature most specific to the cell, rather than
    one that is large everywhere."""
    w = counts[..., None]
    overall = (means * w).sum((0, 1)) / max(counts.sum(), 1)                          # [d_sae]
    lift = (means - overall) / np.maximum(max_act, 1e-12)                              # [L*L, 10, d_sae]
    order = np.argsort(-lift, axis=-1)[..., :3]                                        # [L*L, 10, 3]
    top = order[..., 0]
    z = np.clip(np.take_along_axis(lift, top[..., None], -1)[..., 0], 0, 1)
    n_combos = means.shape[0]
    slots = math.isqrt(n_combos)
    rows = [f"p1={i // slots}, p2={i % slots}" for i in range(n_combos)]
    strong = (counts > 0) & (z >= MIN_CELL_LIFT)
    # a label where the carrying feature changes along the row (not on every cell: ids would be a wall)
    starts = np.ones_like(strong)
    starts[:, 1:] = (top[:, 1:] != top[:, :-1]) | ~strong[:, :-1]
    text = np.where(strong & starts, np.char.add("f", top.astype(str)), "")
    hover = np.empty(top.shape, dtype=object)
    for i in range(n_combos):
        for j in range(means.shape[1]):
            lines = [f"f{u} ({labels_of(u)}): mean {means[i, j, u]:.3f} vs {overall[u]:.3f} overall, lift {lift[i, j, u]:+.2f}"
                     for u in order[i, j]]
            hover[i, j] = "<br>".join(lines) + f"<br>{int(counts[i, j])} inputs"
    fig = go.Figure(go.Heatmap(z=z, x=[str(v) for v in range(means.shape[1])], y=rows, zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="lift", thickness=12), text=text,
                               texttemplate="%{text}", textfont=dict(size=12), customdata=hover,
                               hovertemplate="%{y}, " + var + " = %{x}<br>%{customdata}<extra></extra>"))
    fig.update_layout(xaxis_title=f"pointed value {var}", yaxis_title="pointer combination",
                      yaxis=dict(autorange="reversed"), margin=dict(l=100, r=20, t=20, b=50))
    ids, n_cells = np.unique(top[strong], return_counts=True)
    most = [f"f{u} ({labels_of(int(u))}) in {k}" for u, k in sorted(zip(ids, n_cells), key=lambda t: -t[1])[:4]]
    caption = (f"Each cell holds the fresh inputs with that pointer combination and {var} value; its colour is how much "
               f"the feature most specific to it rises there above its mean over all inputs, as a share of the feature's "
               f"maximum activation; where that rise is at least {MIN_CELL_LIFT:g}, a label names the feature at the "
               f"first cell of each run of cells it carries along the row. {int(strong.sum())} of {int((counts > 0).sum())} cells have such a feature, "
               f"{len(ids)} distinct features in all" + (f"; most cells: {', '.join(most)}" if most else "")
               + ". Hover any cell for its top three.")
    return fig, caption


def build(paths, rd) -> tuple[str, int]:
    parts, n_plots = [], 0
    hm = rd.heatmap
    if hm is None:
        parts.append(section("Units x concepts", '<p class="missing">No unit-by-concept F1 matrix in the labels; '
                             'it comes from analysis.labels (feature_probe.py).</p>'))
    else:
        grid = []
        cols = pick_columns(hm, rd.features, rd.neurons)
        concepts = [hm["concepts"][j] for j in cols]
        maps = []
        for kind, table, f1, n_act in (("feature", rd.features, hm["feature_f1"], hm["feature_n_active"]),
                                       ("neuron", rd.neurons, hm["neuron_f1"], hm["neuron_n_active"])):
            if not (table["status"] == "alive").any():
                maps.append((kind, None, None, 0))
                continue
            maps.append((kind, *unit_map(kind, table, f1[:, cols], concepts, n_act, hm["support"][cols], rd.n_fresh)))
        for kind, fig, cap, _h in maps:
            if fig is None:
                grid.append(f'<div><p class="note">No alive {kind}s to map.</p></div>')
                continue
            grid.append(f'<div style="min-width:0;margin-bottom:18px">{figure_html(fig, f"map-{kind}s", cap, height=_h)}</div>')
            n_plots += 1
        n_all = len(hm["concepts"])
        grid_note = (f'<p class="caption">Columns: the {len(cols)} of {n_all} single conditions on p1, p2, a, b, a - b and '
                     f'target that some alive unit matches with F1 ≥ {MIN_COLUMN_F1:g}'
                     + (f" (the {MAX_COLUMNS} best-matched)" if len(cols) == MAX_COLUMNS else "") + "; both maps share them.</p>")
        parts.append(section("Features vs neurons against the ground truth (F1)",
                             grid_note, "".join(grid), anchor="maps"))
    for var in ("a", "b"):
        means, counts = rd.combo_maps[var]
        fig, cap = combo_map(means, counts, var, rd.feature_label, rd.hist_max)
        parts.append(section(f"Pointer combination x pointed value {var}: which feature carries it",
                             figure_html(fig, f"combo-{var}", cap, height=560), anchor=f"combo-{var}"))
        n_plots += 1
    return page(paths, "heatmap_html", "Logic circuit map", "\n".join(parts), subtitle=rd.subtitle, footer=rd.footer), n_plots
