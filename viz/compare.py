"""reports/compare.html: every SAE of the run beside the neurons and random directions.

Answers "are the features monosemantic, and compared with what?": one table (analysis.compare) and
one chart of the explained share against FVU, the trade-off the paper is about, each point a
dictionary, its random-direction control beneath it and the neurons as a line.
"""
import plotly.graph_objects as go

from analysis.compare import capacity_line
from common.provenance import short
from viz.common import esc, figure_html, page, pct, section

FMT = {"fvu": "{:.4f}", "l0": "{:.1f}"}


def _cell(key: str, v) -> str:
    if v is None or v == "":
        return "-"
    if key in ("explained_share", "random_share", "spliced_exact_match", "interchange_success", "neurons_share",
               "split_share", "random_split_share", "with_ultralow_share"):
        return pct(v)
    if key == "x_random":
        return f"{v:.1f}x"
    if key in ("absorption_full", "absorption_partial", "random_absorption_full"):
        return f"{v:.3f}"
    if key in FMT:
        return FMT[key].format(v)
    return esc(v)


COLUMNS = [("sae", "SAE"), ("origin", "origin (library, architecture there, weights SHA-256)"), ("architecture", "architecture"), ("d_sae", "size"), ("settings", "settings"),
           ("explained_share", "explained (score >= 0.8, of alive)"), ("random_share", "random directions, same density"),
           ("x_random", "features / random"),
           ("split_share", "explained, split-aware grammar"), ("random_split_share", "random directions, split-aware"),
           ("with_ultralow_share", "explained if ultralow units counted"),
           ("alive", "alive"), ("dead", "dead"), ("ultralow", "ultralow"),
           ("fvu", "FVU"), ("l0", "L0"), ("spliced_exact_match", "spliced exact-match"),
           ("interchange_success", "interchange"),
           ("absorption_full", "full absorption (share of parent inputs)"), ("absorption_partial", "partial absorption"),
           ("random_absorption_full", "full absorption, random directions"), ("ramps_found", "ramps + sign (of 9)"),
           ("core_found", "core concepts (of 38)")]


def comparison_table(c: dict) -> str:
    head = "".join(f"<th>{esc(label)}</th>" for _, label in COLUMNS)
    rows = []
    for r in [*c["saes"], c["neurons"]]:
        cls = ' class="neurons"' if r.get("kind") == "neurons" else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_cell(k, r.get(k))}</td>" for k, _ in COLUMNS) + "</tr>")
    return f'<div class="tablewrap"><table class="compare"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def tradeoff_figure(c: dict) -> tuple[go.Figure, str]:
    rows = [r for r in c["saes"] if r["labelled"] and r["fvu"] is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[r["fvu"] for r in rows], y=[100 * r["explained_share"] for r in rows], mode="markers+text",
        name="SAE features", text=[r["sae"] for r in rows], textposition="top center",
        marker=dict(size=12, color="#2f5fd0"),
        hovertemplate="%{text}<br>FVU %{x:.4f}<br>explained %{y:.1f}%<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[r["fvu"] for r in rows], y=[100 * (r["random_share"] or 0) for r in rows], mode="markers",
        name="random directions at the same densities", text=[r["sae"] for r in rows],
        marker=dict(size=11, color="#b3261e", symbol="circle-open", line=dict(width=2)),
        hovertemplate="%{text}: random directions<br>explained %{y:.1f}%<extra></extra>"))
    n = c["neurons"]["explained_share"]
    if n is not None:
        fig.add_hline(y=100 * n, line_dash="dash", line_color="#5b6577",
                      annotation_text=f"neurons {100 * n:.1f}%", annotation_position="top left")
    fig.update_xaxes(title="FVU on held-out activations (lower reconstructs better)", type="log")
    fig.update_yaxes(title="alive units explained at score >= 0.8 (%)", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    if rows:
        best = max(rows, key=lambda r: r["explained_share"])
        caption = (f"{len(rows)} dictionar{'y' if len(rows) == 1 else 'ies'} of this run. The most monosemantic is "
                   f"{best['sae']} ({best['architecture']} {best['d_sae']}): {pct(best['explained_share'])} of its alive "
                   f"features explained, against {pct(best['random_share'])} for random directions of the hidden layer "
                   f"firing as often" + (f" and {pct(n)} for the neurons." if n is not None else "."))
    else:
        caption = "No labelled SAE yet: run label_features.py --sae all."
    return fig, caption


def compare_html(paths, c: dict) -> str:
    fig, caption = tradeoff_figure(c)
    note = ("Every explanation is chosen on one set of fresh inputs and scored on another; a unit counts as explained "
            "when its score (the lesser F1 of where it fires and where it is silent; ramps also capped by |r|) is at "
            "least 0.8. Random directions: one per alive feature, thresholded to fire on the same share of inputs, "
            "explained the same way. Units firing on fewer than 0.1% of inputs are ultralow and counted apart. "
            "Absorption: for each parent concept of the task's hierarchies (a pointer value and its pointer pairs; "
            "the sign of a - b and its values; target >= t and its values), the unit most F1-accurate for it among "
            "those precise for it; full absorption is the share of the parent's inputs where that unit is silent "
            "and a unit precise for the input's child fires; partial also counts where it fires weakly (the missing "
            "part of its typical activation); the mean of the three families; - when no parent has a unit.")
    capacity = capacity_line(c)
    # feature_splitting.py's page, when it has been written (it is not one of every run's pages)
    name = esc(paths.splitting_html.name)
    splitting = (f'<p class="caption">Which features split from which: <a href="{name}">{name}</a> '
                 f'(feature_splitting.py).</p>' if paths.splitting_html.exists() else "")
    body = (section("Are the features monosemantic, and compared with what?", comparison_table(c), splitting,
                    f'<p class="caption">{esc(note)}</p>',
                    f'<p class="caption">{esc(capacity)} It bounds what any dictionary can find.</p>' if capacity else "",
                    anchor="table")
            + section("Explained share against reconstruction", figure_html(fig, "tradeoff", caption, height=520),
                      anchor="tradeoff"))
    made_from = "made from the labels " + ", ".join(f"{r['sae']} {short(r.get('labels_digest'))}" for r in c["saes"])
    return page(paths, "compare_html", "SAEs compared", body,
                subtitle=f"{len(c['saes'])} SAE(s) of this run; labels on {c.get('n_inputs') or '?'} fresh inputs",
                footer=made_from if c["saes"] else "")
