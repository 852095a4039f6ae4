// The probe page's model and controls (inlined into reports/probe.html by viz/probe_page.py).
// Weights arrive as base64 float32, row-major, with the shapes of the PyTorch modules; every sum is
// accumulated in float64, so the page agrees with the Python forward pass to ~1e-6.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("probe-data").textContent);
  const T = D.task;

  // Float32Array reads the platform's byte order; every browser in use is little-endian, as written.
  function f32(b64) {
    const s = atob(b64), u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return new Float32Array(u.buffer);
  }
  const M = {
    d_in: D.mlp.d_in, d_mlp: D.mlp.d_mlp, d_hidden: D.mlp.d_hidden,
    fc1_w: f32(D.mlp.fc1_w), fc1_b: f32(D.mlp.fc1_b), fc2_w: f32(D.mlp.fc2_w), fc2_b: f32(D.mlp.fc2_b),
    head_w: f32(D.mlp.head_w), head_b: f32(D.mlp.head_b)[0],
  };
  const S = {
    arch: D.sae.architecture, d_in: D.sae.d_in, d_sae: D.sae.d_sae, k: D.sae.k,
    W_enc: f32(D.sae.W_enc), b_enc: f32(D.sae.b_enc), W_dec: f32(D.sae.W_dec), b_dec: f32(D.sae.b_dec),
    threshold: D.sae.threshold ? f32(D.sae.threshold) : null,
  };
  const NAMES = [];   // position names: c1[0..3], p1, c2[0..3], p2
  for (let i = 0, c1 = 0, c2 = 0; i < T.n_inputs; i++) {
    if (i === T.p1) NAMES.push("p1"); else if (i === T.p2) NAMES.push("p2");
    else if (i < T.p1) NAMES.push("c1[" + c1++ + "]"); else NAMES.push("c2[" + c2++ + "]");
  }

  // --- model ---------------------------------------------------------------------------------
  function linearRelu(W, b, x, nOut, nIn) {         // relu(W x + b), W [nOut, nIn]
    const y = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let s = b[o];
      const off = o * nIn;
      for (let i = 0; i < nIn; i++) s += W[off + i] * x[i];
      y[o] = s > 0 ? s : 0;
    }
    return y;
  }

  function encode(x) {                              // [10] ints -> [16]: digits / 9, one-hot p1, one-hot p2
    const e = new Float64Array(M.d_in);
    T.digit_positions.forEach((p, j) => { e[j] = x[p] / (T.n_digits - 1); });
    const nd = T.digit_positions.length;
    e[nd + x[T.p1]] = 1;
    e[nd + T.n_slots + x[T.p2]] = 1;
    return e;
  }

  function hidden(x) {                              // [d_hidden], the layer the SAE reads
    const a = linearRelu(M.fc1_w, M.fc1_b, encode(x), M.d_mlp, M.d_in);
    return linearRelu(M.fc2_w, M.fc2_b, a, M.d_hidden, M.d_mlp);
  }

  function head(h) {
    let s = M.head_b;
    for (let i = 0; i < M.d_hidden; i++) s += M.head_w[i] * h[i];
    return s;
  }

  function saeEncode(h) {                           // features [d_sae], non-negative
    const n = S.d_sae, pre = new Float64Array(n);
    for (let j = 0; j < n; j++) pre[j] = S.b_enc[j];
    for (let i = 0; i < S.d_in; i++) {              // pre = (h - b_dec) @ W_enc + b_enc, W_enc [d_in, d_sae]
      const c = h[i] - S.b_dec[i], off = i * n;
      if (c !== 0) for (let j = 0; j < n; j++) pre[j] += c * S.W_enc[off + j];
    }
    const f = new Float64Array(n);
    if (S.arch === "relu") {
      for (let j = 0; j < n; j++) f[j] = pre[j] > 0 ? pre[j] : 0;
    } else if (S.arch === "topk") {                 // the k largest pre-activations, then ReLU
      const order = Array.from(pre.keys()).sort((a, b) => pre[b] - pre[a]);
      for (let r = 0; r < S.k; r++) { const j = order[r]; f[j] = pre[j] > 0 ? pre[j] : 0; }
    } else {                                        // jumprelu: pre where pre > exp(log_threshold)
      for (let j = 0; j < n; j++) f[j] = pre[j] > S.threshold[j] ? pre[j] : 0;
    }
    return f;
  }

  function decodeHead(f) {                          // head(f @ W_dec + b_dec): the spliced prediction
    const h = Float64Array.from(S.b_dec);
    for (let u = 0; u < S.d_sae; u++) {
      if (f[u] === 0) continue;
      const off = u * S.d_in;
      for (let i = 0; i < S.d_in; i++) h[i] += f[u] * S.W_dec[off + i];
    }
    return head(h);
  }

  // W_dec[u] . w_head: the change of the spliced prediction per unit of feature u (the head is linear)
  const OUT = new Float64Array(S.d_sae);
  for (let u = 0; u < S.d_sae; u++) {
    let s = 0;
    for (let i = 0; i < S.d_in; i++) s += S.W_dec[u * S.d_in + i] * M.head_w[i];
    OUT[u] = s;
  }
  const BIAS = decodeHead(new Float64Array(S.d_sae));  // b_dec through the head, plus the head's bias

  // --- input ---------------------------------------------------------------------------------
  function parseInput(text) {                       // -> {x} or {error}
    const tokens = String(text).trim().split(/[\s,;]+/).filter(t => t.length > 0);
    if (tokens.length !== T.n_inputs)
      return {error: "expected " + T.n_inputs + " integers, got " + tokens.length + ": nothing is predicted until the input is valid."};
    const x = [];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!/^[+-]?\d+$/.test(t)) return {error: "position " + (i + 1) + " (" + NAMES[i] + ") is \"" + t + "\": expected an integer."};
      const v = parseInt(t, 10), hi = (i === T.p1 || i === T.p2) ? T.n_slots - 1 : T.n_digits - 1;
      if (v < 0 || v > hi) return {error: "position " + (i + 1) + " (" + NAMES[i] + ") is " + v + ": expected 0-" + hi + "."};
      x.push(v);
    }
    return {x: x};
  }

  function validate(x) {
    if (!Array.isArray(x)) return parseInput("");
    return parseInput(x.map(String).join(" "));
  }

  function run(x) {
    const h = hidden(x), f = saeEncode(h);
    return {mlp: head(h), spliced: decodeHead(f), features: f};
  }

  // For tests and the console: {mlp, spliced, features [d_sae]} or {error}.
  window.probeModel = function (x) {
    const p = validate(x);
    if (p.error) return {error: p.error};
    const r = run(p.x);
    return {mlp: r.mlp, spliced: r.spliced, features: Array.from(r.features)};
  };
  window.probeInfo = {d_sae: S.d_sae, architecture: S.arch, headDot: Array.from(OUT), bias: BIAS};

  // --- page ----------------------------------------------------------------------------------
  const $ = id => document.getElementById(id);
  const edits = new Map();   // unit -> {ablate: bool, clamp: string}; kept when the input changes
  let current = null;        // {x, mlp, spliced, features} of the valid input shown

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v, signed, digits) { return (signed && v > 0 ? "+" : "") + v.toFixed(digits === undefined ? 4 : digits); }
  function setNum(node, v, signed, digits) {
    node.setAttribute("data-value", String(v));
    node.textContent = fmt(v, signed, digits);
    node.classList.toggle("pos", !!signed && v > 0);
    node.classList.toggle("neg", !!signed && v < 0);
  }
  function clearNum(node) { node.removeAttribute("data-value"); node.textContent = "\u2014"; node.className = "v"; }

  function newValue(u, f) {                         // the feature's value after the edit of u (if any)
    const e = edits.get(u);
    if (!e) return f[u];
    if (e.ablate) return 0;
    const c = e.clamp.trim() === "" ? NaN : Number(e.clamp);
    return Number.isFinite(c) ? c : f[u];
  }

  function drawColumns(x) {
    const box = $("cols");
    box.textContent = "";
    const a = x[T.digit_positions[x[T.p1]]], b = x[T.digit_positions[T.n_slots + x[T.p2]]];
    [["col1", 0, T.p1, "p1", "a", a], ["col2", T.n_slots, T.p2, "p2", "b", b]].forEach(([name, start, pp, pn, vn, v]) => {
      const c = el("div", {class: "col"});
      c.appendChild(el("span", {class: "lbl"}, name));
      for (let s = 0; s < T.n_slots; s++)
        c.appendChild(el("span", {class: "d" + (s === x[pp] ? " pt" : "")}, String(x[T.digit_positions[start + s]])));
      c.appendChild(el("span", {class: "lbl"}, "  " + pn + " = " + x[pp] + "  \u2192  " + vn + " = " + v));
      box.appendChild(c);
    });
    box.appendChild(el("div", {class: "col"}, "target = |a - b| = " + Math.abs(a - b)));
    return Math.abs(a - b);
  }

  function rowUnits(f) {                            // active features by activation, then added ones
    const active = [];
    for (let u = 0; u < S.d_sae; u++) if (f[u] > 0) active.push(u);
    active.sort((p, q) => f[q] - f[p]);
    const extra = [...edits.keys()].filter(u => !(f[u] > 0));
    return active.concat(extra);
  }

  function buildTable() {
    const body = $("feats").tBodies[0], f = current.features;
    body.textContent = "";
    const units = rowUnits(f);
    let n_active = 0;
    for (const u of units) {
      const lab = D.labels[String(u)] || ["(no label)", null, ""];
      const tr = el("tr", {"data-unit": String(u)});
      if (!(f[u] > 0)) tr.classList.add("inactive"); else n_active++;
      tr.appendChild(el("td", {class: "id"}, "#" + u));
      tr.appendChild(el("td", {class: "act"}));
      tr.appendChild(el("td", {class: "contrib"}));
      const barCell = el("td", {class: "barcell"}), axis = el("div", {class: "axis"});
      const left = el("div", {class: "half left"}), right = el("div", {class: "half right"});
      left.appendChild(el("span", {class: "bar neg"}));
      right.appendChild(el("span", {class: "bar pos"}));
      axis.appendChild(left); axis.appendChild(right);
      barCell.appendChild(axis);
      tr.appendChild(barCell);
      const ex = el("td", {class: "expl"}, lab[0] || "-");
      if (lab[2] && lab[2] !== "alive") ex.appendChild(el("span", {class: "status"}, "  (" + lab[2] + ")"));
      tr.appendChild(ex);
      tr.appendChild(el("td", {class: "score"}, lab[1] === null ? "-" : lab[1].toFixed(2)));
      const e = edits.get(u) || {ablate: false, clamp: ""};
      const abl = el("input", {type: "checkbox", class: "ablate", "aria-label": "ablate feature " + u});
      abl.checked = e.ablate;
      const clamp = el("input", {type: "number", step: "any", class: "clamp", "aria-label": "clamp feature " + u});
      clamp.value = e.clamp;
      clamp.disabled = e.ablate;
      abl.addEventListener("change", () => { edit(u, {ablate: abl.checked}); clamp.disabled = abl.checked; });
      clamp.addEventListener("input", () => edit(u, {clamp: clamp.value}));
      const tdA = el("td"); tdA.appendChild(abl); tr.appendChild(tdA);
      const tdC = el("td"); tdC.appendChild(clamp); tr.appendChild(tdC);
      tr.appendChild(el("td", {class: "edit-effect"}));
      body.appendChild(tr);
    }
    $("feat-note").textContent = n_active + " of " + S.d_sae + " features active (" + S.arch +
      (S.arch === "topk" ? ", k = " + S.k : "") + "), largest first; explanations and scores from features.csv. " +
      "Ablate sets a feature to 0, clamp sets it to the number you type; an edit of feature u moves the " +
      "spliced prediction by exactly (new - old) x (W_dec[u] . w_head), shown in the last column.";
    updateNumbers();
  }

  function updateNumbers() {
    const f = current.features, fNew = Float64Array.from(f);
    const rows = $("feats").tBodies[0].rows;
    let maxAbs = 1e-12;
    for (const tr of rows) { const u = +tr.dataset.unit; maxAbs = Math.max(maxAbs, Math.abs(f[u] * OUT[u])); }
    let total = 0, nEdits = 0;
    for (const tr of rows) {
      const u = +tr.dataset.unit, c = f[u] * OUT[u];
      setNum(tr.querySelector(".act"), f[u], false);
      setNum(tr.querySelector(".contrib"), c, true);
      const width = Math.max(1, Math.round(70 * Math.abs(c) / maxAbs)) + "px";   // diverging bar: - left, + right
      tr.querySelector(".bar.neg").style.width = c < 0 ? width : "0px";
      tr.querySelector(".bar.pos").style.width = c > 0 ? width : "0px";
      const cell = tr.querySelector(".edit-effect"), nv = newValue(u, f);
      fNew[u] = nv;
      if (edits.has(u) && nv !== f[u]) {
        const d = (nv - f[u]) * OUT[u];
        setNum(cell, d, true);
        total += d; nEdits++;
        tr.classList.add("edited");
      } else {
        cell.removeAttribute("data-value"); cell.textContent = ""; tr.classList.remove("edited");
      }
    }
    setNum($("out-edited"), decodeHead(fNew), false);
    setNum($("out-edit-total"), total, true);
    let sumC = 0;
    for (let u = 0; u < S.d_sae; u++) sumC += f[u] * OUT[u];
    $("out-detail").textContent = "spliced = " + fmt(BIAS) + " (b_dec through the head, plus its bias) " +
      fmt(sumC, true).replace(/^([+-])/, "$1 ") + " (the active features' contributions).  MLP - spliced = " +
      fmt(current.mlp - current.spliced, true) + " (what the reconstruction misses).  " +
      (nEdits ? nEdits + " edit" + (nEdits > 1 ? "s" : "") + " in effect." : "No edits in effect.");
  }

  function edit(u, change) {
    const e = edits.get(u) || {ablate: false, clamp: ""};
    Object.assign(e, change);
    edits.set(u, e);
    updateNumbers();
  }

  function update() {
    const box = $("x-input"), p = parseInput(box.value);
    if (p.error) {
      current = null;
      box.classList.add("bad");
      $("msg").textContent = p.error;
      ["out-target", "out-mlp", "out-spliced", "out-edited", "out-edit-total"].forEach(id => clearNum($(id)));
      $("out-detail").textContent = "";
      $("cols").textContent = "";
      $("feats").tBodies[0].textContent = "";
      $("feat-note").textContent = "No features: the input above is not valid.";
      return;
    }
    box.classList.remove("bad");
    $("msg").textContent = "";
    current = Object.assign({x: p.x}, run(p.x));
    setNum($("out-target"), drawColumns(p.x), false, 0);
    setNum($("out-mlp"), current.mlp, false);
    setNum($("out-spliced"), current.spliced, false);
    buildTable();
  }

  function addFeature() {
    const t = $("add-id").value.trim(), u = Number(t), msg = $("add-msg");
    if (t === "" || !Number.isInteger(u) || u < 0 || u >= S.d_sae) {
      msg.textContent = "a feature id is an integer 0-" + (S.d_sae - 1) + ".";
      return;
    }
    msg.textContent = "";
    if (!edits.has(u)) edits.set(u, {ablate: false, clamp: ""});
    if (current) buildTable();
    const clamp = document.querySelector('#feats tr[data-unit="' + u + '"] input.clamp');
    if (clamp) clamp.focus();
  }

  D.reference_inputs.forEach(x => {
    const b = el("button", {class: "ref", type: "button"}, x.join(" "));
    b.addEventListener("click", () => { $("x-input").value = x.join(" "); update(); });
    $("refs").appendChild(b);
  });
  $("x-input").addEventListener("input", update);
  $("add-btn").addEventListener("click", addFeature);
  $("add-id").addEventListener("keydown", ev => { if (ev.key === "Enter") addFeature(); });
  $("reset-btn").addEventListener("click", () => { edits.clear(); if (current) buildTable(); });
  $("x-input").value = (D.reference_inputs[0] || [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).join(" ");
  update();
})();
