"""training.html: how the MLP and the SAE trained, from the histories stored in their own files.

The MLP file's metrics hold one record per epoch (train_mlp.py: train loss, val MSE, val
exact-match); the SAE file's metrics hold one record every few steps (train_sae.py: loss, FVU, L0,
dead share). A file without a history (made before histories were kept) gets a note, not a chart.
"""
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlp.mlp_definition import mlp_metrics_of
from sae.sae_definition import sae_metrics_of
from viz.common import esc, figure_html, page, section

MLP_COLOR, VAL_COLOR, SAE_COLOR = "#8e44ad", "#e67e22", "#2f5fd0"
# (history key, panel title, y axis title, scale)
SAE_PANELS = (("loss", "training loss", "loss (batch)", "log"), ("fvu", "FVU (unexplained variance)", "FVU", "log"),
              ("l0", "L0 (active features per input)", "L0", "linear"),
              ("dead_share", "dead share of features", "share dead", "linear"))


def _series(history: list, key: str) -> tuple[list, list]:
    pts = [(h.get("step", h.get("epoch")), h[key]) for h in history if isinstance(h, dict) and h.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def mlp_figure(history: list, best_epoch) -> tuple[go.Figure, str]:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("loss (MSE, log scale)", "validation exact-match"))
    x, y = _series(history, "train_loss")
    fig.add_trace(go.Scatter(x=x, y=y, name="train loss (mean over the epoch)", line=dict(color=MLP_COLOR)), 1, 1)
    xv, yv = _series(history, "val_mse")
    fig.add_trace(go.Scatter(x=xv, y=yv, name="validation MSE", line=dict(color=VAL_COLOR)), 1, 1)
    xe, ye = _series(history, "val_exact_match")
    fig.add_trace(go.Scatter(x=xe, y=ye, name="validation exact-match", line=dict(color=VAL_COLOR), showlegend=False), 1, 2)
    if best_epoch:
        for c in (1, 2):
            fig.add_vline(x=best_epoch, line_dash="dash", line_color="#888", row=1, col=c)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="mean squared error", type="log", row=1, col=1)
    fig.update_yaxes(title_text="share of rows rounded to the target", tickformat=".0%", row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.1, x=0), margin=dict(t=70, b=50, l=70, r=20))
    last = history[-1]
    best = min(history, key=lambda h: h.get("val_mse", np.inf))
    caption = (f"The MLP over {len(history)} epochs: train loss {history[0]['train_loss']:.3g} → {last['train_loss']:.3g}, "
               f"validation MSE {history[0]['val_mse']:.3g} → {last['val_mse']:.3g} (lowest {best['val_mse']:.3g} at epoch "
               f"{best['epoch']}, the weights kept: dashed line), validation exact-match {last['val_exact_match']:.1%} at the end.")
    return fig, caption


def sae_figure(history: list) -> tuple[go.Figure, str]:
    panels = [p for p in SAE_PANELS if _series(history, p[0])[0]]
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.07, subplot_titles=[p[1] for p in panels])
    for c, (key, title, y_title, scale) in enumerate(panels, start=1):
        x, y = _series(history, key)
        fig.add_trace(go.Scatter(x=x, y=y, name=title, line=dict(color=SAE_COLOR), showlegend=False,
                                 hovertemplate="step %{x}<br>" + esc(title) + " %{y:.4g}<extra></extra>"), 1, c)
        fig.update_xaxes(title_text="training step", row=1, col=c)
        log = scale == "log" and min(y) > 0
        # log axes label 1, 2 and 5 of each decade only (the default labels every digit: unreadable)
        fig.update_yaxes(title_text=y_title, type="log" if log else "linear", dtick="D2" if log else None, row=1, col=c)
        if key == "dead_share":
            fig.update_yaxes(tickformat=".0%", row=1, col=c)
        if not log:        # from 0: a TopK L0 pinned at k must read as flat, not as noise around 15.99
            fig.update_yaxes(rangemode="tozero", row=1, col=c)
    fig.update_layout(margin=dict(t=50, b=50, l=60, r=20))
    first, last = history[0], history[-1]
    said = [f"{k} {first[k]:.3g} → {last[k]:.3g}" for k in ("loss", "fvu", "l0") if k in first and k in last]
    if "dead_share" in last:
        said.append(f"dead share {last['dead_share']:.1%} at the end")
    caption = (f"The SAE over {last.get('step', len(history))} steps ({len(history)} records): " + ", ".join(said) + ".")
    return fig, caption


def _usable(history, keys) -> list:
    """`history` when it is a list of records holding a number under each of `keys`, else [] (a model file
    written before histories were kept, or altered: its page says there is none, it does not fail)."""
    ok = isinstance(history, list) and all(
        isinstance(h, dict) and all(isinstance(h.get(k), (int, float)) and not isinstance(h.get(k), bool) for k in keys)
        for h in history)
    return history if ok else []


def build(paths, subtitle: str = "", footer: str = "") -> tuple[str, int]:
    parts, n_plots = [], 0
    mlp_m = mlp_metrics_of(paths.mlp)
    history = _usable(mlp_m.get("history"), ("epoch", "train_loss", "val_mse", "val_exact_match"))
    if history:
        fig, cap = mlp_figure(history, mlp_m.get("best_epoch"))
        parts.append(section("MLP (train_mlp.py)", figure_html(fig, "history-mlp", cap, height=380), anchor="mlp"))
        n_plots += 1
    else:
        parts.append(section("MLP (train_mlp.py)", f'<p class="missing">No history in {esc(paths.mlp.name)}: it was '
                             'trained before train_mlp.py kept one; retrain it to see the curves.</p>', anchor="mlp"))
    history = _usable(sae_metrics_of(paths.sae).get("history"), ("step",))
    if history:
        fig, cap = sae_figure(history)
        parts.append(section("Sparse autoencoder (train_sae.py)", figure_html(fig, "history-sae", cap, height=360), anchor="sae"))
        n_plots += 1
    else:
        origin = sae_metrics_of(paths.sae).get("origin")
        why = (f"it was trained by {origin.get('library', 'another library')} and joined with import_sae.py; its curves "
               "are in that library's logs" if isinstance(origin, dict) else
               "it was trained before train_sae.py kept one; retrain it to see the curves")
        parts.append(section("Sparse autoencoder (train_sae.py)", f'<p class="missing">No history in {esc(paths.sae.name)}: '
                             f'{esc(why)}.</p>', anchor="sae"))
    return page(paths, "training_html", "Training history", "\n".join(parts), subtitle=subtitle,
                footer=footer), n_plots
