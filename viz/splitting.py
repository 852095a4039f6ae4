"""reports/splitting.html: which fine features split from which coarse ones (feature_splitting.py).

One section per set of links (a Matryoshka dictionary's prefixes, or two sizes of a sweep): the
summary, a chart of every alive child against its co-firing parent (the coarse feature whose firing rate
rises most where it fires; analysis.splitting): their decoder cosine against how often the parent fires with it,
coloured by whether the child's explanation refines the parent's; and the parents with the most
children firing inside them, each with its children's explanations.
"""
import pandas as pd
import plotly.graph_objects as go

from analysis.explain import MONOSEMANTIC_SCORE
from analysis.splitting import REFINES
from viz.common import esc, figure_html, fmt, page, pct, section

N_PARENTS = 12        # parents listed per set of links
N_CHILDREN = 8        # children listed per parent

GROUPS = (("refines its parent", "#1b8a3a"), ("both explained, not a refinement", "#2f5fd0"),
          ("child or parent unexplained", "#9aa3b5"))


def title(summary: dict) -> str:
    if summary["link"] == "prefix":
        return f"{summary['child_sae']}: Matryoshka prefixes, later latents against earlier ones"
    return f"{summary['child_sae']} against {summary['parent_sae']} (dictionary sizes)"


def _group(row) -> int:
    if row.child_score >= MONOSEMANTIC_SCORE and row.cofiring_parent_score >= MONOSEMANTIC_SCORE:
        return 0 if row.cofiring_parent_refines else 1
    return 2


def links_figure(alive: pd.DataFrame, key: str) -> str:
    fig = go.Figure()
    groups = alive.apply(_group, axis=1) if len(alive) else pd.Series(dtype=int)
    for g, (name, color) in enumerate(GROUPS):
        part = alive[groups == g]
        fig.add_trace(go.Scatter(
            x=part["cofiring_parent_cos"], y=part["cofiring_parent_coactivation"], mode="markers",
            name=f"{name} ({len(part)})", marker=dict(size=7, color=color, opacity=0.75),
            customdata=part[["child", "child_level", "child_explanation", "cofiring_parent", "cofiring_parent_level",
                             "cofiring_parent_explanation"]].fillna("").to_numpy(),
            hovertemplate="child %{customdata[0]} (level %{customdata[1]}): %{customdata[2]}<br>"
                          "parent %{customdata[3]} (level %{customdata[4]}): %{customdata[5]}<br>"
                          "cos %{x:.2f}, parent fires on %{y:.0%} of its firings<extra></extra>"))
    fig.update_xaxes(title="decoder cosine of child and co-firing parent", range=[-1.05, 1.05])
    fig.update_yaxes(title="share of the child's firings where the parent fires", range=[-0.05, 1.05])
    fig.update_layout(legend=dict(orientation="h", y=-0.22))
    caption = (f"{len(alive)} alive children, each against the coarse feature whose firing rate rises most where it fires. A child "
               f"that splits its parent sits high (fires inside it), and far right if it also points the same way; "
               f"green ones name a sub-case of the parent's explanation (it holds on >= {REFINES:.0%} of the child's "
               f"inputs).")
    return figure_html(fig, key, caption, height=460)


def family_table(alive: pd.DataFrame) -> str:
    """The parents with the most children firing inside them, with those children."""
    inside = alive[alive["cofiring_parent_coactivation"] >= 0.5]
    order = inside.groupby("cofiring_parent").size().sort_values(ascending=False).head(N_PARENTS)
    if not len(order):
        return '<p class="note">No alive child fires inside its parent on at least half of its firings.</p>'
    rows = []
    for parent, n in order.items():
        kids = inside[inside["cofiring_parent"] == parent].sort_values("child_score", ascending=False)
        first = kids.iloc[0]
        items = "".join(
            f"<li>#{int(k.child)} <b>{esc(k.child_explanation or '(none)')}</b> ({fmt(k.child_score, 2)}; "
            f"cos {k.cofiring_parent_cos:.2f}, parent fires on {k.cofiring_parent_coactivation:.0%})"
            f"{' &#10003; refines' if k.cofiring_parent_refines else ''}</li>"
            for k in kids.head(N_CHILDREN).itertuples())
        more = f"<li>... {n - N_CHILDREN} more</li>" if n > N_CHILDREN else ""
        rows.append(f"<tr><td class=\"name\">#{int(parent)} (level {int(first.cofiring_parent_level)})<br>"
                    f"<b>{esc(first.cofiring_parent_explanation or '(none)')}</b> ({fmt(first.cofiring_parent_score, 2)})</td>"
                    f"<td>{n}</td><td class=\"name\"><ul style=\"margin:0;padding-left:18px\">{items}{more}</ul></td></tr>")
    return ('<table class="metrics"><thead><tr><th>parent (explanation, score)</th><th>children inside it</th>'
            f'<th>children (explanation, score; decoder cosine, share of their firings)</th></tr></thead><tbody>{"".join(rows)}'
            '</tbody></table>')


def splitting_html(paths, links: pd.DataFrame, summaries: list) -> str:
    parts = []
    for i, s in enumerate(summaries):
        sel = ((links["link"] == s["link"]) & (links["child_sae"] == s["child_sae"])
               & (links["parent_sae"] == s["parent_sae"]))
        alive = links[sel & (links["child_status"] == "alive")]
        line = (f"{s['alive_children']} alive children. Closest decoder direction: median cosine "
                f"{fmt(s['median_cos'], 2)} ({pct(s['share_with_close_parent'])} at >= 0.9), "
                f"{pct(s['decoder_share_firing_inside'])} fire inside it, {pct(s['decoder_share_refining'])} of "
                f"{s['decoder_explained_pairs']} explained pairs refine it. Co-firing parent: "
                f"{pct(s['cofiring_share_firing_inside'])} fire inside it (median {pct(s['cofiring_median_coactivation'])} "
                f"of their firings), {pct(s['cofiring_share_refining'])} of {s['cofiring_explained_pairs']} explained "
                f"pairs refine it.")
        parts.append(section(title(s), f"<p>{esc(line)}</p>", links_figure(alive, f"split{i}"),
                             family_table(alive), anchor=f"split{i}"))
    if not parts:
        parts.append(section("No splitting to show",
                             '<p class="note">Train a Matryoshka SAE or a size sweep (train_sae.py --sweep d_sae=64,256) '
                             'and label it (label_features.py --sae all).</p>'))
    note = ("Explanations are the split-aware grammar's (a pointer pair and one value condition can be named), chosen on "
            "one set of fresh inputs and scored on another. A child's parent is the coarse feature with the closest "
            "decoder direction (the paper's view) or the one whose firing rate rises most where the child fires.")
    return page(paths, "", "Feature splitting", "".join(parts) + f'<p class="caption">{esc(note)}</p>',
                subtitle=f"{len(summaries)} set(s) of links")
