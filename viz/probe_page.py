"""reports/probe.html: run the MLP and the SAE in the browser on an input a person types, and edit features.

The page holds every weight it needs (float32, base64) and a plain-JavaScript forward pass
(`viz/static/probe.js`, inlined), so it works from disk with no network and no plotting library:

    x [2L+2 ints] -> encode [4L] -> fc1 -> ReLU -> fc2 -> ReLU = h [d_hidden] -> head -> MLP prediction
    h -> SAE: pre = (h - b_dec) @ W_enc + b_enc -> f = act(pre) [d_sae] -> h_hat = f @ W_dec + b_dec
    h_hat -> head -> spliced prediction

Because the head is linear, setting feature u from f_u to f_new_u moves the spliced prediction by
exactly (f_new_u - f_u) * (W_dec[u] . w_head); the page shows that per edit and in total, and also
computes the edited prediction by decoding the edited features, so the two can be compared.
`window.probeModel(x)` returns {mlp, spliced, features} for tests.
"""
import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from common.io import PipelineError, atomic_write_text
from dataset.task import N_DIGITS

JS_PATH = Path(__file__).resolve().parent / "static" / "probe.js"
FEATURE_COLUMNS = ("unit", "explanation", "score", "status")


def _b64(tensor) -> str:
    """A tensor as base64 of little-endian float32, row-major (the layout probe.js reads)."""
    a = np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype="<f4")
    return base64.b64encode(a.tobytes()).decode("ascii")


def _labels(features: pd.DataFrame) -> dict:
    """{unit: [explanation, score or None, status]} from a features table (as reports/features.csv)."""
    missing = [c for c in FEATURE_COLUMNS if c not in features.columns]
    if missing:
        raise PipelineError(f"features table: missing columns {missing}; expected {list(FEATURE_COLUMNS)} "
                            "as in reports/features.csv")
    out = {}
    for unit, expl, score, status in features[list(FEATURE_COLUMNS)].itertuples(index=False):
        score = None if pd.isna(score) else float(score)
        out[str(int(unit))] = ["" if pd.isna(expl) else str(expl), score, "" if pd.isna(status) else str(status)]
    return out


def probe_payload(mlp, sae, features: pd.DataFrame, reference_inputs) -> dict:
    """Everything probe.js needs: the task's layout (the MLP's task), the weights, the labels and the reference inputs."""
    d_hidden, d_in = mlp.cfg.d_hidden, sae.cfg.d_in
    if d_in != d_hidden:
        raise PipelineError(f"SAE d_in = {d_in} but the MLP's hidden layer has d_hidden = {d_hidden}; "
                            "the SAE was not trained on this MLP")
    arch = sae.cfg.architecture
    sae_w = {"W_enc": _b64(sae.W_enc), "b_enc": _b64(sae.b_enc), "W_dec": _b64(sae.W_dec), "b_dec": _b64(sae.b_dec)}
    if arch == "jumprelu":
        sae_w["threshold"] = _b64(sae.threshold)                      # [d_sae] exp(log_threshold)
    return {
        "task": {"n_inputs": mlp.task.n_inputs, "n_digits": N_DIGITS, "n_slots": mlp.task.slots, "p1": mlp.task.p1,
                 "p2": mlp.task.p2, "digit_positions": list(mlp.task.digit_positions)},
        "mlp": {"d_in": mlp.fc1.in_features, "d_mlp": mlp.cfg.d_mlp, "d_hidden": d_hidden,
                "fc1_w": _b64(mlp.fc1.weight), "fc1_b": _b64(mlp.fc1.bias),      # [d_mlp, 4L], [d_mlp]
                "fc2_w": _b64(mlp.fc2.weight), "fc2_b": _b64(mlp.fc2.bias),      # [d_hidden, d_mlp]
                "head_w": _b64(mlp.head.weight), "head_b": _b64(mlp.head.bias)},  # [1, d_hidden], [1]
        "sae": {"architecture": arch, "d_in": d_in, "d_sae": sae.cfg.d_sae, "k": getattr(sae.cfg, "k", None), **sae_w},
        "labels": _labels(features),
        "reference_inputs": [[int(v) for v in x] for x in reference_inputs],
    }


CSS = """
:root { --fg:#1d2330; --muted:#5b6577; --line:#d9dee7; --bg:#f6f7fa; --card:#fff; --accent:#2f5fd0;
        --pos:#1f7a3a; --neg:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:10px 24px; }
header h1 { margin:0 0 4px; font-size:20px; }
header nav a { color:#cfd8ff; margin-right:16px; text-decoration:none; white-space:nowrap; }
main { padding:16px 24px 40px; max-width:1400px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px; margin:0 0 16px; }
h2 { font-size:17px; margin:0 0 8px; }
p.note { color:var(--muted); margin:4px 0; font-size:13px; }
.row { display:flex; flex-wrap:wrap; gap:10px; align-items:center; }
#x-input { font:16px ui-monospace,Menlo,Consolas,monospace; width:260px; padding:5px 8px; border:1px solid var(--line); border-radius:6px; }
#x-input.bad { border-color:var(--neg); background:#fff4f3; }
button { font:inherit; padding:4px 10px; border:1px solid var(--line); border-radius:6px; background:#eef1f6; cursor:pointer; }
button:hover { background:#e0e6f2; }
button.ref { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:13px; }
#msg { color:var(--neg); font-weight:600; margin:6px 0 0; }
#msg:empty { display:none; }
.cols { display:flex; gap:28px; margin-top:10px; font-family:ui-monospace,Menlo,Consolas,monospace; }
.col span.d { display:inline-block; width:24px; text-align:center; border:1px solid var(--line); border-radius:4px; margin-right:3px; padding:1px 0; }
.col span.d.pt { border-color:var(--accent); background:#e3eaff; font-weight:700; }
.col .lbl { color:var(--muted); margin-right:6px; }
.outs { display:grid; grid-template-columns:repeat(5, minmax(150px, 1fr)); gap:10px; }
.out { border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.out .k { color:var(--muted); font-size:12px; }
.out .v { font-size:22px; font-weight:600; font-variant-numeric:tabular-nums; }
.out.main { border-color:var(--accent); }
table.feats { border-collapse:collapse; width:100%; margin-top:8px; font-variant-numeric:tabular-nums; }
table.feats th, table.feats td { border-bottom:1px solid var(--line); padding:4px 8px; text-align:right; vertical-align:middle; }
table.feats th { background:#eef1f6; font-weight:600; position:sticky; top:0; }
table.feats td.expl, table.feats th.expl { text-align:left; }
table.feats th, table.feats td { white-space:nowrap; }
table.feats td.expl { width:100%; white-space:normal; }
table.feats tr.edited td { background:#fff8e6; }
table.feats tr.inactive td.act { color:var(--muted); }
td.barcell { width:160px; }
.axis { display:flex; width:144px; height:12px; }
.axis .half { flex:1; display:flex; align-items:center; }
.axis .left { justify-content:flex-end; border-right:1px solid #9aa3b2; }
.bar { display:inline-block; height:10px; border-radius:2px; }
.bar.pos { background:var(--pos); } .bar.neg { background:var(--neg); }
.pos { color:var(--pos); } .neg { color:var(--neg); }
.status { font-size:12px; color:var(--muted); }
input.clamp { width:84px; font:inherit; padding:2px 4px; text-align:right; }
input#add-id { width:90px; font:inherit; padding:3px 6px; }
"""

BODY = """
<main>
<section>
  <h2>Input</h2>
  <div class="row">
    <label for="x-input">x =</label>
    <input id="x-input" type="text" spellcheck="false" autocomplete="off" aria-describedby="x-help">
    <span class="note" id="x-help">@X_HELP@ (spaces or commas)</span>
  </div>
  <div class="row" style="margin-top:8px"><span class="note">Reference inputs:</span><span id="refs" class="row"></span></div>
  <p id="msg" role="alert"></p>
  <div class="cols" id="cols"></div>
</section>
<section>
  <h2>Outputs</h2>
  <p class="note">Sign convention: <b>+ raises the prediction</b>. Every contribution on this page is a change of the predicted |a - b|.</p>
  <div class="outs">
    <div class="out"><div class="k">expected target |a - b|</div><div class="v" id="out-target">-</div></div>
    <div class="out"><div class="k">MLP prediction</div><div class="v" id="out-mlp">-</div></div>
    <div class="out"><div class="k">spliced prediction (hidden layer := SAE reconstruction)</div><div class="v" id="out-spliced">-</div></div>
    <div class="out main"><div class="k">spliced prediction with your edits</div><div class="v" id="out-edited">-</div></div>
    <div class="out"><div class="k">total contribution of your edits</div><div class="v" id="out-edit-total">-</div></div>
  </div>
  <p class="note" id="out-detail"></p>
</section>
<section>
  <h2>Active features</h2>
  <p class="note" id="feat-note"></p>
  <div class="row">
    <label for="add-id">Add a feature by id:</label><input id="add-id" type="number" min="0" step="1">
    <button id="add-btn">add</button><button id="reset-btn">reset all edits</button>
    <span class="note" id="add-msg"></span>
  </div>
  <table class="feats" id="feats">
    <thead><tr><th>feature</th><th>activation</th><th>contribution f&middot;(W_dec&middot;w_head)</th><th></th>
    <th class="expl">explanation</th><th>score</th><th>ablate</th><th>clamp to</th><th>this edit's contribution</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</main>
"""


_WORDS = dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                        "sixteen seventeen eighteen".split()))


def input_help(task) -> str:
    """What the input box takes, e.g. "ten integers: four digits 0-9, p1 0-3, four digits 0-9, p2 0-3"."""
    n, L = _WORDS.get(task.n_inputs, str(task.n_inputs)), _WORDS.get(task.slots, str(task.slots))
    return f"{n} integers: {L} digits 0-9, p1 0-{task.slots - 1}, {L} digits 0-9, p2 0-{task.slots - 1}"


def probe_html(mlp, sae, features: pd.DataFrame, reference_inputs, nav=(), footer: str = "") -> str:
    """The page as one string. `nav`: (href, title) links for the header (e.g. back to index.html);
    `footer`: what the page was made from (`common.provenance.footer`)."""
    payload = json.dumps(probe_payload(mlp, sae, features, reference_inputs), separators=(",", ":"))
    payload = payload.replace("</", "<\\/")                     # cannot close the <script> it sits in
    links = "".join(f'<a href="{html.escape(h, quote=True)}">{html.escape(t)}</a>' for h, t in nav)
    arch = sae.cfg.architecture + (f" (k = {sae.cfg.k})" if sae.cfg.architecture == "topk" else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Feature probe</title><style>{CSS}</style></head><body>"
        f"<header><h1>Feature probe: the MLP and its SAE ({html.escape(arch)}, "
        f"{sae.cfg.d_sae} features) on your input</h1><nav>{links}</nav></header>"
        f"{BODY.replace('@X_HELP@', html.escape(input_help(mlp.task)))}"
        + (f'<footer class="provenance">{html.escape(footer)}</footer>' if footer else "")
        + f'<script type="application/json" id="probe-data">{payload}</script>'
        f"<script>{JS_PATH.read_text(encoding='utf-8')}</script></body></html>\n")


def write_probe_page(path: Path, mlp, sae, features: pd.DataFrame, reference_inputs, nav=(), footer: str = "") -> Path:
    """Write reports/probe.html atomically; returns `path`."""
    atomic_write_text(path, probe_html(mlp, sae, features, reference_inputs, nav, footer))
    return Path(path)
