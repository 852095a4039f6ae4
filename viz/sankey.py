"""uhd_bold_sankey.html: input position -> neuron -> feature -> output, filterable.

Link widths are the exact quantities of `viz.data` (each layer of links has its own unit, stated in
the hover and the caption): input -> neuron = mean |change of the neuron| when that input position
is resampled; neuron -> feature = the neuron's mean contribution to the feature's pre-activation,
(h_j - b_dec_j) * W_enc[j, i]; feature -> output = the feature's mean direct effect on the
prediction, f_i * (W_dec[i] @ w_head), its contribution (+ raises the prediction). The features not
drawn are one "other features" node, and the baseline (head bias + w_head . b_dec, the prediction with
every feature off) is a node of its own, so the links into the prediction add up to its mean value,
which the prediction node shows beside the mean target. Negative contributions are drawn red,
positive blue. Only the strongest links are drawn (see the constants), so the middle stays legible.

All (pointer combination, target) selections are precomputed here into one JSON; two drop-downs
pick the selection and `Plotly.react` redraws, so the page needs no server.
"""
import numpy as np

from viz.common import esc, json_for_script, page, section
from viz.data import input_names

N_FEATURES = 8          # features drawn per selection (largest |effect on the output|); the rest: one node
N_NEURONS = 8           # neurons drawn (largest |contribution| into the drawn features)
NEURONS_PER_FEATURE = 2
INPUTS_PER_NEURON = 2
MIN_SHARE = 0.2         # a neuron -> feature link is drawn when at least this share of the feature's largest
MIN_LINK = 1e-4        # links are stored to 4 decimals; smaller ones would vanish and strand their node
POS, NEG = "rgba(47,95,208,0.45)", "rgba(192,57,43,0.45)"


def selection(sd, combo: int | None, tgt: int | None, W_enc, b_dec, w_out, bias: float) -> dict | None:
    """One selection (None: every value) as node keys ("i3" input position, "n12" neuron, "f7" feature,
    "rest" the other features, "bias" the baseline, "out") and signed link values, with the mean
    prediction (= bias + every feature's mean contribution) and mean target; None if it holds no inputs."""
    c = slice(None) if combo is None else slice(combo, combo + 1)
    t = slice(None) if tgt is None else slice(tgt, tgt + 1)
    n = float(sd.counts[c, t].sum())
    if n == 0:
        return None
    mean_h = sd.h_sum[c, t].sum((0, 1)).numpy() / n                            # [d_hidden]
    mean_f = sd.f_sum[c, t].sum((0, 1)).numpy() / n                            # [d_sae]
    eff_in = sd.input_effect[c, t].sum((0, 1)).numpy() / max(float(sd.resample_counts[c, t].sum()), 1)   # [10, d_hidden]
    effect = mean_f * w_out                                                    # [d_sae] mean direct effect on the output
    feats = [int(i) for i in np.argsort(-np.abs(effect))[:N_FEATURES] if mean_f[i] > 0]
    targets = np.arange(sd.counts.shape[1])
    target_mean = float((sd.counts[c, t].sum(0).numpy() * targets[t]).sum() / n)
    pred = bias + float(effect.sum())
    if not feats:
        return {"n": int(n), "pred": round(pred, 3), "target": round(target_mean, 3)}
    contrib = (mean_h - b_dec)[:, None] * W_enc[:, feats]                      # [d_hidden, n_feats]
    # neurons silent on the selection (no activity for an input to change) are not drawn: their
    # "contribution" is only the SAE's offset -b_dec_j * W_enc[j, i]
    silent = mean_h <= 0
    if sd.resample_counts[c, t].sum() > 0:
        silent |= eff_in.max(0) < MIN_LINK
    contrib[silent] = 0
    chosen = {}
    for k in range(len(feats)):
        for j in np.argsort(-np.abs(contrib[:, k]))[:NEURONS_PER_FEATURE]:
            chosen[int(j)] = max(chosen.get(int(j), 0.0), abs(float(contrib[j, k])))
    neurons = sorted(chosen, key=lambda j: -chosen[j])[:N_NEURONS]
    nodes = ([f"i{p}" for p in range(sd.input_effect.shape[2])] + [f"n{j}" for j in neurons] + [f"f{i}" for i in feats]
             + ["rest", "bias", "out"])
    index = {k: i for i, k in enumerate(nodes)}
    src, dst, val = [], [], []

    def link(a, b, v):
        if abs(v) >= MIN_LINK:
            src.append(index[a])
            dst.append(index[b])
            val.append(round(float(v), 4))

    for j in neurons:
        for p in np.argsort(-eff_in[:, j])[:INPUTS_PER_NEURON]:
            link(f"i{p}", f"n{j}", eff_in[p, j])
    for k, i in enumerate(feats):
        big = np.abs(contrib[:, k]).max()
        for j in neurons:
            if abs(contrib[j, k]) >= MIN_SHARE * big:
                link(f"n{j}", f"f{i}", contrib[j, k])
        link(f"f{i}", "out", effect[i])
    link("rest", "out", float(effect.sum() - effect[feats].sum()))
    link("bias", "out", bias)
    used = set(src) | set(dst)     # a node without links (e.g. "rest" when every feature is drawn) is left out
    keep = [k for k in range(len(nodes)) if k in used]
    new = {k: i for i, k in enumerate(keep)}
    return {"n": int(n), "nodes": [nodes[k] for k in keep], "src": [new[a] for a in src], "dst": [new[b] for b in dst],
            "val": val, "pred": round(pred, 3), "target": round(target_mean, 3)}


def build(paths, rd) -> tuple[str, int]:
    sd = rd.sankey
    W_enc = rd.sae.W_enc.detach().cpu().numpy()
    b_dec = rd.sae.b_dec.detach().cpu().numpy()
    w_out = rd.w_out.numpy()
    # the spliced prediction is head(W_dec f + b_dec) = w_head . b_dec + head bias + sum_i f_i (W_dec[i] . w_head)
    bias = float(rd.mlp.head.bias.detach().cpu()[0] + rd.mlp.head.weight.detach().cpu()[0] @ rd.sae.b_dec.detach().cpu())
    task = rd.mlp.task
    n_combos, names_in = task.slots ** 2, input_names(task)
    data = {}
    for combo in [None] + list(range(n_combos)):
        for tgt in [None] + list(range(sd.counts.shape[1])):
            s = selection(sd, combo, tgt, W_enc, b_dec, w_out, bias)
            if s is not None:
                data[f"{'all' if combo is None else combo}|{'all' if tgt is None else tgt}"] = s
    used = {k for s in data.values() for k in s.get("nodes", [])}
    short = lambda e: e if len(e) <= 22 else e[:21] + "…"
    names = {k: (f"input {names_in[int(k[1:])]}" if k[0] == "i" else
                 f"n{k[1:]}: {short(rd.neuron_label(int(k[1:])))}" if k[0] == "n" else
                 f"f{k[1:]}: {short(rd.feature_label(int(k[1:])))}" if k[0] == "f" else
                 "other features" if k == "rest" else f"baseline (bias) {bias:+.2f}" if k == "bias" else "prediction")
             for k in sorted(used)}
    full = data.get("all|all", {})
    top_f = ""
    if full.get("nodes"):
        fl = [(full["nodes"][a], v) for a, v in zip(full["src"], full["val"]) if full["nodes"][a][0] == "f"]
        if fl:
            k, v = max(fl, key=lambda t: abs(t[1]))
            top_f = f"; the largest mean contribution is feature {k[1:]} ({rd.feature_label(int(k[1:]))}) with {v:+.2f}"
    run_note = (f"On all {full.get('n', 0):,} fresh inputs the spliced prediction averages {full.get('pred', float('nan')):.2f} "
                f"(mean target {full.get('target', float('nan')):.2f}): the baseline {bias:+.2f} (head bias + w_head·b_dec, the "
                f"prediction with every feature off) plus the features' contributions{top_f}.")
    combo_opts = '<option value="all">all</option>' + "".join(
        f'<option value="{c}">p1={c // task.slots}, p2={c % task.slots}</option>' for c in range(n_combos))
    tgt_opts = '<option value="all">all</option>' + "".join(
        f'<option value="{t}">{t}</option>' for t in range(sd.counts.shape[1]))
    controls = (f'<div style="margin:4px 0 8px">Pointer combination <select id="sel-combo">{combo_opts}</select> '
                f'&nbsp; Target |a - b| <select id="sel-target">{tgt_opts}</select> '
                f'&nbsp; <span id="sel-info" style="color:#5b6577"></span></div>')
    caption = (run_note + f" Flow from the {'ten' if task.n_inputs == 10 else task.n_inputs} input positions through the neurons to the SAE features and the prediction, for the "
               f"fresh inputs of the chosen selection; the {N_FEATURES} features with the largest mean effect on the "
               f"prediction are drawn (the others summed into one node), with the {N_NEURONS} neurons that feed them most (links under "
               f"{MIN_SHARE:.0%} of a feature's largest are left out), and the baseline. Link widths are real quantities, one per layer: "
               f"input→neuron = mean |change of the neuron| when that input position is resampled from another input "
               f"(measured on {int(sd.resample_counts.sum()):,} of the inputs); neuron→feature = mean contribution "
               f"(h − b_dec)·W_enc to the feature's pre-activation; feature→prediction = mean f·(W_dec·w_head), the "
               f"feature's contribution to the prediction (+ raises it), and the baseline's link is the constant the "
               f"contributions add to. The layers have different units, so each layer is drawn to the "
               f"same total width: compare widths within a layer, and hover a link for its real value. Blue links are "
               f"positive, red negative (input→neuron links are sizes, always blue); neurons silent on the selection are "
               f"left out.")
    script = f"""<script>
const SANKEY = {json_for_script(data)};
const NAMES = {json_for_script(names)};
const INPUTS = {json_for_script(list(names_in))};
const NODE_COLOR = {{i: '#7f8c8d', n: '#8e44ad', f: '#2f5fd0', o: '#1d2330', r: '#95a5c6', b: '#e67e22'}};
const BIAS = {bias!r};
function linkText(a, b, v) {{
  const s = (v >= 0 ? '+' : '') + v.toFixed(3);
  if (a[0] === 'i') return 'resampling input ' + INPUTS[+a.slice(1)] + ' changes neuron ' + b.slice(1) + ' by ' + Math.abs(v).toFixed(3) + ' on average (mean |Δh|)';
  if (a === 'bias') return 'baseline: the prediction with every feature off (head bias + w_head·b_dec) = ' + s;
  if (a === 'rest') return 'the features not drawn move the prediction by ' + s + ' on average';
  if (a[0] === 'n') return 'neuron ' + a.slice(1) + ' adds ' + s + ' to feature ' + b.slice(1) + "'s pre-activation (mean (h − b_dec)·W_enc)";
  return 'feature ' + a.slice(1) + ' moves the prediction by ' + s + ' on average (mean f·W_dec·w_head)';
}}
function drawSankey() {{
  const key = document.getElementById('sel-combo').value + '|' + document.getElementById('sel-target').value;
  const s = SANKEY[key];
  const info = document.getElementById('sel-info');
  const div = document.getElementById('sankey');
  if (!s || !s.nodes) {{
    info.textContent = s ? (s.n + ' inputs, but no feature fires on them') : 'no fresh input has this combination';
    Plotly.react(div, [], {{annotations: [{{text: info.textContent, showarrow: false, xref: 'paper', yref: 'paper', x: 0.5, y: 0.5}}],
                           xaxis: {{visible: false}}, yaxis: {{visible: false}}, height: 640}}, {{displaylogo: false}});
    return;
  }}
  info.textContent = s.n.toLocaleString() + ' fresh inputs in this selection; mean prediction ' + s.pred.toFixed(2) +
    ' (baseline ' + BIAS.toFixed(2) + ' + features ' + (s.pred - BIAS).toFixed(2) + '), mean target ' + s.target.toFixed(2);
  const text = s.src.map((a, i) => linkText(s.nodes[a], s.nodes[s.dst[i]], s.val[i]));
  // the three layers have different units: each is drawn to the same total width (widths compare
  // within a layer; the hover gives the real value)
  const layer = s.src.map(a => 'rb'.includes(s.nodes[a][0]) ? 'f' : s.nodes[a][0]);   // bias, rest: the feature layer
  const tot = {{}}; s.val.forEach((v, i) => tot[layer[i]] = (tot[layer[i]] || 0) + Math.abs(v));
  const width = s.val.map((v, i) => Math.abs(v) / tot[layer[i]]);
  // the baseline and the other features belong in the feature column: plotly puts a node with no
  // incoming link in the first column, so each gets an invisible two-link lead-in
  const nodes = s.nodes.slice(), src = s.src.slice(), dst = s.dst.slice(), w = width.slice(), lc = s.val.map(v => v >= 0 ? '{POS}' : '{NEG}');
  const tx = s.val.map((v, i) => text[i]);
  ['rest', 'bias'].forEach(k => {{ const at = nodes.indexOf(k); if (at < 0) return;
    const out = w.filter((_, i) => src[i] === at).reduce((a, b) => a + b, 0);
    nodes.push('_0' + k, '_1' + k);
    src.push(nodes.length - 2, nodes.length - 1); dst.push(nodes.length - 1, at); w.push(out, out);
    lc.push('rgba(0,0,0,0)', 'rgba(0,0,0,0)'); tx.push('', ''); }});
  const label = k => k[0] === '_' ? '' : k === 'out' ? 'prediction ' + s.pred.toFixed(2) + ' (target ' + s.target.toFixed(2) + ')' : NAMES[k];
  Plotly.react(div, [{{type: 'sankey', arrangement: 'snap', valueformat: '.1%',
     node: {{label: nodes.map(label), color: nodes.map(k => k[0] === '_' ? 'rgba(0,0,0,0)' : NODE_COLOR[k[0]]), pad: 10, thickness: 14,
            line: {{width: 0}}, hovertemplate: '%{{label}}<extra></extra>'}},
     link: {{source: src, target: dst, value: w, customdata: tx, color: lc, hovertemplate: '%{{customdata}}<extra></extra>'}}}}],
     {{margin: {{l: 10, r: 10, t: 10, b: 10}}, font: {{size: 13}}, height: 760}}, {{displaylogo: false, responsive: true}});
}}
document.getElementById('sel-combo').addEventListener('change', drawSankey);
document.getElementById('sel-target').addEventListener('change', drawSankey);
drawSankey();
</script>"""
    body = section("Input → neuron → feature → prediction", controls,
                   '<div id="sankey" class="plotly-graph-div" style="height:760px;width:100%"></div>',
                   f'<p class="caption">{esc(caption)}</p>', script, anchor="sankey")
    return page(paths, "sankey_html", "Circuit flow (Sankey)", body, subtitle=rd.subtitle, footer=rd.footer), 1
