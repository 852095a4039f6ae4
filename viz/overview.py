"""index.html: the run at a glance, links to every report, and the feature dashboard.

The dashboard is plain HTML + JavaScript (no library): the cards' data is one JSON array; the page
filters, sorts and draws one page of cards at a time, each with an inline-SVG histogram, so 2048
features stay light. Every number on a card comes from the Python side (labels, SAE, MLP); the
script only formats and orders them.
"""
import numpy as np
import plotly.graph_objects as go

from common.summary import number_at
from viz import data as vd
from viz.common import esc, figure_html, fmt, json_for_script, page, pct, section

# metrics.json sections, the stage that writes each, and the keys shown first
SECTIONS = (("mlp", "MLP (train_mlp.py)"), ("harvest", "Harvested activations (harvest_activations.py)"),
            ("sae", "Sparse autoencoder (train_sae.py)"), ("interpretability", "Interpretability (feature_probe.py)"))
HIDE_KEYS = ("density_log10", "history")   # long lists: drawn in the distributions and training reports instead
CARDS_PER_PAGE = 48
LONG_SECTION = 16       # metrics sections with more rows than this are laid out across the page


def _flatten(d: dict, prefix: str = "") -> list:
    out = []
    for k, v in d.items():
        name = f"{prefix}{k}"
        if k in HIDE_KEYS:
            continue
        if isinstance(v, dict):
            out += _flatten(v, name + ".")
        elif isinstance(v, (list, tuple)):
            if len(v) <= 12 and all(not isinstance(t, (dict, list)) for t in v):
                out.append((name, ", ".join(fmt(t) for t in v) or "(none)"))
            else:
                out.append((name, f"({len(v)} values)"))
        else:
            out.append((name, fmt(v)))
    return out


def _value_html(v) -> str:
    """A metric's value; a nested section folds away (open it to see its entries)."""
    if isinstance(v, dict):
        rows = _flatten(v)
        inner = "".join(f"<tr><td class=name>{esc(k)}</td><td>{esc(t)}</td></tr>" for k, t in rows)
        return (f"<details><summary>{len(rows)} entries</summary><table class=metrics>{inner}</table></details>")
    if isinstance(v, (list, tuple)):
        return esc(_flatten({"": v})[0][1]) if v else "(none)"
    return esc(fmt(v))


def metrics_section(metrics: dict) -> str:
    blocks = []
    mlp = metrics.get("mlp")
    if isinstance(mlp, dict) and any(isinstance(mlp.get(s), dict) for s in ("train", "val", "test")):
        rows = "".join(f"<tr><td class=name>{s}</td><td>{fmt(mlp[s].get('mse'), 4)}</td><td>{pct(mlp[s].get('exact_match'))}</td>"
                       f"<td>{fmt(mlp[s].get('n'))}</td></tr>" for s in ("train", "val", "test") if isinstance(mlp.get(s), dict))
        extra = "".join(f"<tr><td class=name>{esc(k)}</td><td colspan=3>{_value_html(v)}</td></tr>"
                        for k, v in mlp.items() if k not in ("train", "val", "test") + HIDE_KEYS)
        blocks.append(("", f"<h3>MLP (train_mlp.py)</h3><table class=metrics><tr><th>split</th><th>MSE</th><th>exact-match</th>"
                           f"<th>samples</th></tr>{rows}{extra}</table>"))
    for key, title in SECTIONS:
        if key == "mlp" and blocks:
            continue
        sec = metrics.get(key)
        if not isinstance(sec, dict):
            stage = title.split("(")[-1].rstrip(")")
            blocks.append(("", f'<h3>{esc(title)}</h3><p class="missing">Not in metrics.json yet: run {esc(stage)} to fill it.</p>'))
            continue
        # scalars first, folded sections last; a long section spans the row, its table in three side by side
        items = sorted(((k, v) for k, v in sec.items() if k not in HIDE_KEYS), key=lambda kv: isinstance(kv[1], dict))
        rows = [f"<tr><td class=name>{esc(k)}</td><td>{_value_html(v)}</td></tr>" for k, v in items]
        head = "<tr><th>metric</th><th>value</th></tr>"
        if len(rows) > LONG_SECTION:
            per = -(-len(rows) // 3)
            tables = "".join(f"<table class=metrics>{head}{''.join(rows[i:i + per])}</table>" for i in range(0, len(rows), per))
            blocks.append(("wide", f'<h3>{esc(title)}</h3><div class="split">{tables}</div>'))
        else:
            blocks.append(("", f"<h3>{esc(title)}</h3><table class=metrics>{head}{''.join(rows)}</table>"))
    return section("Pipeline metrics (metrics.json)", '<div class="mgrid">' + "".join(
        f'<div class="{cls}">{b}</div>' for cls, b in blocks) + "</div>", anchor="metrics")


def headline(metrics: dict, rd) -> str:
    """The few numbers a reader wants first."""
    items = []
    if isinstance(metrics.get("mlp", {}).get("test"), dict):
        items.append(("MLP test exact-match", pct(number_at(metrics, "mlp", "test", "exact_match"))))
        items.append(("MLP test MSE", fmt(number_at(metrics, "mlp", "test", "mse"), 4)))
    for k, label in (("fvu", "SAE FVU"), ("l0", "SAE L0"), ("spliced_exact_match", "spliced exact-match")):
        v = number_at(metrics, "sae", k) if k in metrics.get("sae", {}) else number_at(metrics, "sae", "eval", k)
        if v is not None:
            items.append((label, pct(v) if "exact" in k else f"{v:.1f}" if k == "l0" else f"{v:.3f}"))
    f, n = rd.features, rd.neurons
    for name, t in (("features", f), ("neurons", n)):
        alive = t["status"] == "alive"
        share = float(t.loc[alive, "monosemantic"].mean()) if alive.any() else None
        items.append((f"monosemantic {name}", f"{pct(share)} of {int(alive.sum())} alive"))
    return ('<div class="headline">' + "".join(f'<div><div class="hv">{esc(v)}</div><div class="hl">{esc(k)}</div></div>'
                                                 for k, v in items) + "</div>")


def mono_figures(rd) -> list:
    """(figure, div id, caption, height) of the features-vs-neurons comparisons."""
    out = []
    rows = []
    for name, t in (("SAE features", rd.features), ("neurons", rd.neurons)):
        alive = t["status"] == "alive"
        rows.append((name, int(alive.sum()), int(t.loc[alive, "monosemantic"].sum()),
                     int((t["status"] == "ultralow").sum()), int((t["status"] == "dead").sum())))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=[r[0] for r in rows], y=[r[2] / max(r[1], 1) for r in rows], marker_color=["#2f5fd0", "#8e44ad"],
                         text=[f"{r[2]} of {r[1]} alive" for r in rows], textposition="outside",
                         hovertemplate="%{x}: %{y:.1%} monosemantic<extra></extra>"))
    fig.update_layout(yaxis_title=f"share of alive units scoring ≥ {rd.mono_threshold:g}", xaxis_title="unit type",
                      yaxis=dict(tickformat=".0%", range=[0, 1.1]), margin=dict(t=20, b=50, l=70, r=20), showlegend=False)
    cap = (f"Share of alive units whose best explanation scores at least {rd.mono_threshold:g} on fresh inputs, SAE features "
           f"beside the MLP's neurons (ultralow: {rows[0][3]} features, {rows[1][3]} neurons; dead: {rows[0][4]} features, "
           f"{rows[1][4]} neurons, not counted): higher means more units mean one thing.")
    out.append((fig, "mono-share", cap, 330))

    fig = go.Figure()
    for name, t, color in (("SAE features", rd.features, "#2f5fd0"), ("neurons", rd.neurons, "#8e44ad")):
        s = t.loc[t["status"] == "alive", "score"].dropna().to_numpy()
        fig.add_trace(go.Histogram(x=s, xbins=dict(start=0, end=1.0001, size=0.05), histnorm="percent", name=name,
                                   marker_color=color, opacity=0.6,
                                   hovertemplate=name + ": %{y:.1f}% of alive units score %{x}<extra></extra>"))
    fig.add_vline(x=rd.mono_threshold, line_dash="dash", line_color="#c0392b")
    fig.update_layout(barmode="overlay", xaxis_title="explanation score (F1 on both sides; ramps: min(that, |r|))",
                      yaxis_title="% of alive units", margin=dict(t=40, b=50, l=60, r=20),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    med = [float(t.loc[t["status"] == "alive", "score"].median()) for t in (rd.features, rd.neurons)]
    cap = ("Distribution of the best explanation score of every alive unit, features (blue) over neurons (purple); "
           f"mass right of the red line is monosemantic. Median score here: features {fmt(med[0], 2)}, neurons {fmt(med[1], 2)}.")
    out.append((fig, "score-hist", cap, 330))
    return out


def _round_list(a, d: int = 3) -> list:
    return [None if not np.isfinite(v) else round(float(v), d) for v in np.asarray(a, dtype=float)]


def _absorbers(text) -> list:
    """features.csv's absorbed_by ("155:0.96 33:0.41") as [(155, 0.96), (33, 0.41)]."""
    if not isinstance(text, str) or not text:
        return []
    return [(int(j), float(c)) for j, c in (pair.split(":") for pair in text.split())]


def card_data(rd) -> list:
    """One compact record per alive feature, in unit order. Effects are signed as contributions:
    + raises the spliced prediction (features.csv's effect_* columns are the change when the feature is
    zeroed, i.e. minus the contribution)."""
    t = rd.features
    alive = t[t["status"] == "alive"]
    pr = rd.profiles
    cards = []
    num = lambda v, d=4: None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), d)
    neg = lambda v: None if v is None else -v

    def example(s, v):
        g = rd.fresh_gt_row(int(s))
        return [g["input"], round(float(v), 3), g["a"], g["b"], g["target"]]

    for row in alive.itertuples(index=False):
        i = int(row.unit)
        tops = [example(s, v) for s, v in zip(rd.top_idx[i], rd.top_val[i]) if s >= 0]
        bands = [[example(s, v) for s, v in band] for band in pr.bands[i]]
        contrib = rd.card_contrib[i]
        neurons = [[int(j), round(float(contrib[j]), 3)] for j in np.argsort(-np.abs(contrib))[:5]]
        gt = []
        for var in pr.binned:
            means, counts = pr.binned[var]
            m = [None if k == 0 else round(float(x), 3) for x, k in zip(means[i], counts[i])]
            gt.append([var, num(pr.corr[var][i], 3), pr.values[var], m, num(pr.slope[var][i], 4)])
        cards.append({
            "id": i, "e": row.explanation, "k": row.explanation_kind, "s": num(row.score, 3),
            "p": num(row.precision, 3), "r": num(row.recall, 3), "f": num(row.f1, 3),
            "c": num(getattr(row, "corr", None), 3), "d": num(row.density, 5), "ma": num(row.mean_act, 3),
            "mx": num(row.max_act, 3),
            # contributions (+ raises the prediction) = minus the ablation effects of features.csv
            "et": neg(num(getattr(row, "effect_where_true", None), 3)),
            "ef": neg(num(getattr(row, "effect_where_false", None), 3)),
            "eac": neg(num(getattr(row, "effect_where_active", None), 3)),
            "ea": num(getattr(row, "effect_mean_abs", None), 3),
            "w": num(rd.w_out[i], 3), "hm": num(rd.hist_max[i], 3), "h": rd.hist[i].tolist(), "t": tops, "q": bands,
            "n": neurons, "g": gt, "cd": _round_list(pr.contrib_by_diff[i], 3),
            "nc": [[j, round(v, 2), rd.feature_label(j)] for j, v in pr.cos_neighbours[i]],
            "nj": [[j, round(v, 2), rd.feature_label(j)] for j, v in pr.coact_neighbours[i]],
            "m": bool(row.monosemantic),
            # the split-aware grammar's explanation (a pointer pair and one value condition), when it differs
            "se": (row.split_explanation if isinstance(getattr(row, "split_explanation", ""), str)
                   and row.split_explanation != row.explanation else ""),
            "ss": num(getattr(row, "split_score", None), 3),
            # the hole of its explanation (where it holds and the feature is silent) and the features filling it
            "hs": num(getattr(row, "hole_share", None), 3),
            "ab": [[j, c, rd.feature_label(j)] for j, c in _absorbers(getattr(row, "absorbed_by", ""))],
        })
    return cards


DASH_CSS = """
.mgrid { display:grid; grid-template-columns:repeat(auto-fit,minmax(330px,1fr)); gap:8px 24px; align-items:start; }
.mgrid > div.wide { grid-column:1 / -1; }
.mgrid .split { display:flex; flex-wrap:wrap; gap:0 24px; align-items:flex-start; }
.mgrid h3 { font-size:14px; margin:6px 0 4px; }
.headline { display:flex; flex-wrap:wrap; gap:10px; margin:0 0 16px; }
.headline > div { background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px 14px; min-width:150px; }
.hv { font-size:20px; font-weight:600; } .hl { color:var(--muted); font-size:12px; }
.links li { margin:3px 0; }
.two { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
#controls { display:flex; flex-wrap:wrap; gap:12px; align-items:center; margin:6px 0 12px; }
#controls input[type=search] { width:340px; padding:4px 8px; }
#cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(620px,1fr)); gap:12px; }
.card .cols { display:grid; grid-template-columns:300px 1fr; gap:12px; }
.card .nb { font-size:12px; line-height:1.5; }
.card tr.band td { background:#f3f5f9; color:var(--muted); font-size:11px; text-align:left; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 12px; background:#fff; font-size:12.5px; }
.card h4 { margin:0 0 2px; font-size:14px; }
.card .ex { font-weight:600; color:#1d2330; }
.badge { display:inline-block; font-size:11px; border-radius:9px; padding:0 7px; margin-left:4px; background:#eef1f6; color:#39435a; }
.badge.mono { background:#dff3e4; color:#1e6b34; }
.card table { border-collapse:collapse; width:100%; margin-top:4px; }
.card td, .card th { border-top:1px solid #eef0f4; padding:1px 4px; text-align:center; font-variant-numeric:tabular-nums; }
.card th { color:var(--muted); font-weight:500; }
.card .row { display:flex; gap:10px; align-items:flex-start; }
.card .lbl { color:var(--muted); font-size:11px; margin-top:6px; }
.pos { color:#1e5fb4; } .neg { color:#b03a2e; }
#pager button { margin:0 4px; }
"""

DASH_JS = r"""
const CARDS = __CARDS__;
const PER_PAGE = __PER_PAGE__;
let view = CARDS.slice(), pageNo = 0;
const f3 = v => v === null || v === undefined ? '—' : (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
const pc = v => v === null ? '—' : (100 * v < 0.1 ? (100 * v).toPrecision(2) : (100 * v).toFixed(1)) + '%';
const sg = v => v === null ? '—' : '<span class="' + (v >= 0 ? 'pos' : 'neg') + '">' + (v >= 0 ? '+' : '') + f3(v) + '</span>';
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }
function hist(c) {
  const W = 150, H = 64, L = 26, B = 14, n = c.h.length, m = Math.max(1, ...c.h), bw = (W - L) / n;
  let s = '<svg width="' + W + '" height="' + (H + B + 10) + '" role="img" aria-label="activation histogram">';
  c.h.forEach((v, i) => { const hh = (H - 4) * v / m;
    s += '<rect x="' + (L + i * bw).toFixed(1) + '" y="' + (H - hh).toFixed(1) + '" width="' + (bw - 1).toFixed(1) + '" height="' + hh.toFixed(1) + '" fill="#2f5fd0"><title>' + v + ' inputs</title></rect>'; });
  s += '<line x1="' + L + '" y1="' + H + '" x2="' + W + '" y2="' + H + '" stroke="#888"/>';
  s += '<text x="' + (L - 3) + '" y="9" font-size="9" text-anchor="end" fill="#555">' + m + '</text>';
  s += '<text x="' + (L - 3) + '" y="' + H + '" font-size="9" text-anchor="end" fill="#555">0</text>';
  s += '<text x="' + L + '" y="' + (H + 10) + '" font-size="9" fill="#555">0</text>';
  s += '<text x="' + W + '" y="' + (H + 10) + '" font-size="9" text-anchor="end" fill="#555">' + f3(c.hm) + '</text>';
  s += '<text x="' + ((L + W) / 2) + '" y="' + (H + 21) + '" font-size="9" text-anchor="middle" fill="#555">activation (where active)</text>';
  s += '<text x="8" y="' + (H / 2) + '" font-size="9" text-anchor="middle" fill="#555" transform="rotate(-90 8 ' + (H / 2) + ')">inputs</text>';
  return s + '</svg>';
}
// a small labelled bar chart: vals (null = no data) over the labels xs
function bars(vals, xs, title, signed, color) {
  const W = 300, H = 56, L = 34, B = 14, T = 13, n = vals.length, bw = (W - L) / n;
  const ok = vals.filter(v => v !== null), top = Math.max(1e-9, ...ok.map(Math.abs));
  const lo = signed ? -top : 0, hi = top, y = v => T + (H - T) * (hi - v) / (hi - lo);
  let s = '<svg width="' + W + '" height="' + (H + B) + '" role="img" aria-label="' + esc(title) + '">';
  s += '<text x="0" y="10" font-size="10.5" fill="#1d2330">' + esc(title) + '</text>';
  vals.forEach((v, i) => { if (v === null) return;
    const y0 = y(Math.max(0, v)), y1 = y(Math.min(0, v));
    s += '<rect x="' + (L + i * bw + 0.5).toFixed(1) + '" y="' + y0.toFixed(1) + '" width="' + Math.max(1, bw - 1).toFixed(1) +
      '" height="' + Math.max(0.5, y1 - y0).toFixed(1) + '" fill="' + (color || (v >= 0 ? '#1e5fb4' : '#b03a2e')) + '"><title>' +
      esc(xs[i]) + ': ' + f3(v) + '</title></rect>'; });
  s += '<line x1="' + L + '" y1="' + y(0).toFixed(1) + '" x2="' + W + '" y2="' + y(0).toFixed(1) + '" stroke="#888"/>';
  s += '<text x="' + (L - 3) + '" y="' + (T + 8) + '" font-size="9" text-anchor="end" fill="#555">' + f3(hi) + '</text>';
  s += '<text x="' + (L - 3) + '" y="' + (H) + '" font-size="9" text-anchor="end" fill="#555">' + f3(lo) + '</text>';
  [0, Math.floor(n / 2), n - 1].forEach(i => s += '<text x="' + (L + (i + 0.5) * bw).toFixed(1) + '" y="' + (H + 11) +
      '" font-size="9" text-anchor="middle" fill="#555">' + esc(xs[i]) + '</text>');
  return s + '</svg>';
}
function exRow(t) {
  return '<tr><td style="font-family:monospace">' + t[0] + '</td><td>' + f3(t[1]) + '</td><td>' + t[2] + '</td><td>' + t[3] + '</td><td>' + t[4] + '</td></tr>';
}
function nbList(list, what) {
  if (!list.length) return '<span style="color:#5b6577">none</span>';
  return list.map(n => 'f' + n[0] + ' <span style="color:#5b6577">(' + what + ' ' + n[1].toFixed(2) + ')</span> ' + esc(n[2])).join('<br>');
}
function card(c) {
  const kind = c.k === 'ramp' ? 'ramp: F1 of support ' + f3(c.f) + ', r ' + f3(c.c) : 'concept';
  let h = '<div class="card" data-id="' + c.id + '"><h4>feature ' + c.id + ' ' + (c.m ? '<span class="badge mono">monosemantic</span>' : '') +
    '<span class="badge">score ' + f3(c.s) + '</span></h4>';
  h += '<div class="ex">' + esc(c.e || '(no explanation)') + '</div><div style="color:#5b6577">' + kind + '</div>';
  if (c.se) h += '<div style="color:#5b6577">split-aware: <b>' + esc(c.se) + '</b> (score ' + f3(c.ss) + ')</div>';
  h += '<table><tr><th>precision</th><th>recall</th><th>F1</th><th>density</th><th>mean act</th><th>max act</th></tr><tr><td>' + f3(c.p) +
    '</td><td>' + f3(c.r) + '</td><td>' + f3(c.f) + '</td><td>' + pc(c.d) + '</td><td>' + f3(c.ma) + '</td><td>' + f3(c.mx) + '</td></tr></table>';
  if (c.hs !== null && c.hs !== undefined) h += '<div class="lbl">absorbed by: silent on ' + pc(c.hs) + ' of the inputs where its explanation holds; ' +
    (c.ab.length ? 'there fire, precise for its explanation:</div><div class="nb">' +
       c.ab.map(a => 'f' + a[0] + ' <span style="color:#5b6577">(on ' + pc(a[1]) + ' of them)</span> ' + esc(a[2])).join('<br>') + '</div>'
     : 'no feature precise for its explanation fills that hole</div>');
  h += '<div class="cols"><div>' + hist(c);
  h += '<div class="lbl">activation where it fires, mean per ground-truth value (r: correlation)</div>';
  c.g.forEach(g => h += bars(g[3], g[2], 'vs ' + g[0] + '   r = ' + f3(g[1]), false, '#2f5fd0'));
  h += '<div class="lbl">contribution to the prediction, mean over all inputs per value of a − b</div>' +
    bars(c.cd, Array.from({length: c.cd.length}, (_, i) => String(i - 9)), 'f·(W_dec·w_head) by a − b', true);
  h += '</div><div>';
  const ab = c.g.find(g => g[0] === 'a-b');
  h += '<div class="lbl">effect on the prediction (+ raises it)</div><table><tr><th>per unit of act.</th><th>where active</th><th>expl. holds</th><th>expl. not</th><th title="least-squares change of its contribution per unit of a − b, over the inputs where it fires">per unit a − b (where active)</th></tr><tr><td>' +
    sg(c.w) + '</td><td>' + sg(c.eac) + '</td><td>' + sg(c.et) + '</td><td>' + sg(c.ef) + '</td><td>' + sg(ab ? ab[4] : null) + '</td></tr></table>';
  h += '<div class="lbl">neurons feeding it (mean contribution to its pre-activation where it fires)</div><div>' +
    c.n.map(n => 'n' + n[0] + ' ' + sg(n[1])).join(', ') + '</div>';
  h += '<div class="lbl">nearest features by decoder direction (cosine)</div><div class="nb">' + nbList(c.nc, 'cos') + '</div>';
  h += '<div class="lbl">most often firing together (Jaccard of the inputs they fire on)</div><div class="nb">' + nbList(c.nj, 'J') + '</div>';
  h += '<div class="lbl">examples (input: c1|p1 c2|p2; a = c1[p1], b = c2[p2])</div><table><tr><th>input</th><th>act</th><th>a</th><th>b</th><th>target</th></tr>';
  h += '<tr class="band"><td colspan="5">top activations</td></tr>' + c.t.slice(0, 5).map(exRow).join('');
  const nb = c.q.length;
  for (let q = nb - 1; q >= 0; q--) {
    if (!c.q[q].length) continue;
    h += '<tr class="band"><td colspan="5">quantile band ' + (nb - q) + ' of ' + nb + ' (' + Math.round(100 * q / nb) + '–' + Math.round(100 * (q + 1) / nb) + '% of its activations)</td></tr>' + c.q[q].map(exRow).join('');
  }
  h += '</table></div></div>';
  return h + '</div>';
}
const KEYS = {score: c => c.s ?? -1, density: c => c.d ?? -1, effect: c => c.ea ?? Math.abs(c.w ?? 0) * (c.ma ?? 0), id: c => -c.id,
              direct: c => Math.abs(c.w ?? 0)};
function update(resetPage) {
  const q = document.getElementById('q').value.trim().toLowerCase();
  const key = KEYS[document.getElementById('sort').value];
  const mono = document.getElementById('mono').checked;
  const isId = /^\d+$/.test(q);   // a number finds that feature; text searches both grammars' explanations
  view = CARDS.filter(c => (!mono || c.m) && (!q || (isId ? String(c.id) === q : ('feature ' + c.id + ' ' + c.e + ' ' + c.se).toLowerCase().includes(q))));
  view.sort((a, b) => key(b) - key(a));
  if (resetPage) pageNo = 0;
  const pages = Math.max(1, Math.ceil(view.length / PER_PAGE));
  pageNo = Math.min(pageNo, pages - 1);
  document.getElementById('cards').innerHTML = view.slice(pageNo * PER_PAGE, (pageNo + 1) * PER_PAGE).map(card).join('');
  document.getElementById('count').textContent = view.length + ' of ' + CARDS.length + ' alive features';
  document.getElementById('pageinfo').textContent = 'page ' + (pageNo + 1) + ' of ' + pages;
}
document.getElementById('q').addEventListener('input', () => update(true));
document.getElementById('sort').addEventListener('change', () => update(true));
document.getElementById('mono').addEventListener('change', () => update(true));
document.getElementById('prev').addEventListener('click', () => { pageNo = Math.max(0, pageNo - 1); update(false); });
document.getElementById('next').addEventListener('click', () => { pageNo += 1; update(false); });
update(true);
"""


def dashboard(rd) -> str:
    cards = card_data(rd)
    n_ultra = int((rd.features["status"] == "ultralow").sum())
    n_dead = int((rd.features["status"] == "dead").sum())
    controls = ('<div id="controls"><input type="search" id="q" placeholder="search explanations (p1 = 2, ramp a …) or an id">'
                '<label>sort by <select id="sort"><option value="score">explanation score</option><option value="density">density</option>'
                '<option value="effect">effect (mean |contribution|)</option><option value="direct">direct effect per unit</option>'
                '<option value="id">feature id</option></select></label>'
                '<label><input type="checkbox" id="mono"> monosemantic only</label><span id="count" style="color:#5b6577"></span>'
                '<span id="pager"><button id="prev">◀</button><span id="pageinfo"></span><button id="next">▶</button></span></div>')
    intro = (f'<p class="caption">One card per alive feature (firing on at least {rd.ultralow:.1%} of {rd.n_fresh:,} fresh inputs); '
             f'{n_ultra} ultralow and {n_dead} dead features are listed in features.csv only. A card shows the explanation '
             f'with its precision, recall and F1 against the ground truth, what it is absorbed by (the share of the inputs '
             f'where its explanation holds and it is silent, and the features precise for that explanation that fire '
             f'there), the feature\'s density, a histogram of its '
             f'activation where it fires, its mean activation against a, b and a − b where it fires (with the correlation r), '
             f'its effect on the spliced prediction, the neurons feeding it most, its nearest features by decoder cosine '
             f'and by co-activation, and examples: the top activations and {vd.PER_BAND} random inputs from each of '
             f'{vd.N_BANDS} equal-count bands of its activations.</p>'
             '<p class="caption"><b>Sign convention, used on every page: + raises the prediction.</b> A feature\'s effect '
             'is its contribution to the spliced prediction, f·(W_dec·w_head); zeroing the feature changes the prediction '
             'by minus that. (features.csv\'s effect_* columns are the change when zeroed, so they carry the opposite sign.)</p>')
    script = "<script>" + DASH_JS.replace("__CARDS__", json_for_script(cards)).replace("__PER_PAGE__", str(CARDS_PER_PAGE)) + "</script>"
    return section("Feature dashboard", intro, controls, '<div id="cards"></div>', script, anchor="dashboard")


def build(paths, rd, metrics: dict) -> tuple[str, int]:
    links = "".join(f'<li><a href="{esc(p.name)}">{esc(p.name)}</a> — {esc(what)}</li>' for p, what in (
        (paths.heatmap_html, "which ground-truth concept each feature and neuron matches (F1 maps), and which feature carries each pointer combination"),
        (paths.distributions_html, "feature and neuron density histograms; activation histograms of the best-explained units"),
        (paths.sankey_html, "input → neuron → feature → prediction flow, by pointer combination and target"),
        (paths.probe_html, "type an input: the MLP and the SAE run in the browser; ablate or clamp features and see the prediction move"),
        (paths.training_html, "training curves of the MLP (loss, validation MSE and exact-match) and the SAE (loss, FVU, L0, dead share)"),
        (paths.trace_xlsx, "every train/val/test sample traced: prediction, error, top neurons and features (Excel)"),
        (paths.features_csv, "one row per feature: status, explanation, scores, causal effects (effect_* = the change "
                             "of the prediction when the feature is zeroed, i.e. minus its contribution)"),
        (paths.neurons_csv, "one row per neuron: the same for the MLP's neurons")))
    parts = [headline(metrics, rd), section("Reports", f'<ul class="links">{links}</ul>', anchor="reports")]
    figs = mono_figures(rd)
    parts.append(section("Monosemanticity: SAE features vs neurons",
                         '<div class="two">' + "".join(f"<div>{figure_html(f, i, c, height=h)}</div>" for f, i, c, h in figs) + "</div>",
                         anchor="mono"))
    parts.append(metrics_section(metrics))
    parts.append(dashboard(rd))
    html = page(paths, "index_html", "Monosemanticity run overview", "\n".join(parts), subtitle=rd.subtitle,
                head_extra=f"<style>{DASH_CSS}</style>", footer=rd.footer)
    return html, len(figs)
