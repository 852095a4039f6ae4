"""Build every report of a run: gather the inputs once (`gather`), then write each page (`write_reports`,
into the temporaries of one group: `report_files`).

The labels (explanations, scores, causal effects, features.csv / neurons.csv) are read as
label_features.py wrote them (`analysis.labels_io.read_labels`); this module adds only what the
pictures need from the same fresh inputs (histograms, top inputs, flows) and the per-sample trace of
the train / val / test rows.
"""
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from analysis.causal import feature_output_weights
from analysis.concepts import concept_set
from analysis.explain import MONOSEMANTIC_SCORE, NEURON_THRESHOLD_FRACTION, ULTRALOW_DENSITY
from analysis.labels_io import read_labels
from analysis.run import load_run_models
from common import provenance
from common.io import atomic_group, read_metrics, require_inputs
from common.summary import number_at
from dataset.data_loader import load_excel
from dataset.task import task_of
from sae.splice import chunked_pass
from viz import data as vd
from viz import distributions, heatmap, overview, sankey, training
from viz.common import NAV, nav_target
from viz.probe_page import probe_html
from viz.distributions import N_TOP_UNITS
from viz.trace import write_trace as write_trace_xlsx

SPLITS = ("train", "val", "test")


def _top_units(table, k: int) -> list:
    """The k best-explained alive units (score, then density)."""
    alive = table[table["status"] == "alive"]
    return [int(u) for u in alive.sort_values(["score", "density"], ascending=False)["unit"].head(k)]


@dataclass
class ReportInputs:
    """What the pages draw, computed once."""
    paths: object
    mlp: object
    sae: object
    labels: object
    features: object                 # pandas DataFrame, one row per feature (labels.features)
    neurons: object                  # pandas DataFrame, one row per neuron
    x_fresh: torch.Tensor            # [n, 10] the labels' fresh inputs
    h_fresh: torch.Tensor            # [n, d_hidden]
    fresh: vd.FreshStats             # reductions of the features over the fresh inputs
    w_out: torch.Tensor              # [d_sae] W_dec @ w_head
    hist: np.ndarray                 # [d_sae, HIST_BINS]
    hist_max: np.ndarray             # [d_sae]
    top_idx: np.ndarray              # [d_sae, TOP_INPUTS]
    top_val: np.ndarray
    card_contrib: np.ndarray         # [d_sae, d_hidden] mean (h - b_dec) * W_enc[:, i] where feature i fires
    sankey: vd.SankeyData
    profiles: vd.FeatureProfiles     # the cards' quantile examples, ground-truth profiles, neighbours
    combo_maps: dict                 # var -> (means [L*L, 10, d_sae], counts [L*L, 10])
    heatmap: dict | None
    mono_threshold: float
    ultralow: float
    neuron_threshold: float
    subtitle: str
    made_from: dict                  # {role: provenance entry}: the MLP, SAE, labels and splits drawn from
    footer: str                      # the same as one line, at the foot of every page
    splits: tuple                    # (split name per row, x [n, 10], y [n]) of train + val + test
    timings: dict = field(default_factory=dict)
    _gt: dict | None = None

    @property
    def n_fresh(self) -> int:
        return len(self.x_fresh)

    def feature_label(self, i: int) -> str:
        e = self.features["explanation"].iat[int(i)]
        return str(e) if isinstance(e, str) and e else "no explanation"

    def neuron_label(self, j: int) -> str:
        e = self.neurons["explanation"].iat[int(j)]
        return str(e) if isinstance(e, str) and e else "no explanation"

    def top_features(self, k: int) -> list:
        return _top_units(self.features, k)

    def top_neurons(self, k: int) -> list:
        return _top_units(self.neurons, k)

    def feature_values(self, i: int) -> np.ndarray:
        """Activations of feature i where it fires (kept for the top N_TOP_UNITS features)."""
        return self.fresh.columns[int(i)]

    def neuron_values(self, j: int) -> np.ndarray:
        h = self.h_fresh[:, int(j)]
        thr = max(float(h.max()) * self.neuron_threshold, 0.0)
        return h[h > thr].numpy()

    def fresh_gt_row(self, s: int) -> dict:
        if self._gt is None:
            task = task_of(self.x_fresh)
            L = task.slots
            self._gt = {k: v.tolist() for k, v in task.ground_truth(self.x_fresh).items()}
            self._gt["input"] = ["".join(map(str, r[:L])) + "|" + str(r[L]) + " " + "".join(map(str, r[L + 1:2 * L + 1]))
                                 + "|" + str(r[2 * L + 1]) for r in self.x_fresh.tolist()]
        return {k: self._gt[k][s] for k in ("input", "a", "b", "target")}


def heatmap_inputs(labels, x: torch.Tensor, features, neurons) -> dict | None:
    """The labels' F1 matrices plus the counts that give each cell's precision, recall and support."""
    if labels.feature_f1 is None or not len(labels.concept_names):
        return None
    task = task_of(x)
    cs = concept_set(task)
    gt = task.ground_truth(x)
    support = np.array([int(cs.concepts[cs.column(n)].holds(gt).sum()) for n in labels.concept_names])
    n = len(x)
    return {"concepts": list(labels.concept_names), "support": support,
            "feature_f1": np.asarray(labels.feature_f1), "neuron_f1": np.asarray(labels.neuron_f1),
            "feature_n_active": np.rint(features["density"].to_numpy() * n),
            "neuron_n_active": np.rint(neurons["density"].to_numpy() * n)}


def load_splits(paths, mlp=None):
    """The train, val and test rows, validated before any page is written: (split per row, x [n, 10], y [n]).
    With `mlp`, each split must be the file it was trained on (its provenance), or the trace's "train"
    rows would not be the MLP's training rows."""
    xs, ys, splits = [], [], []
    for split in SPLITS:
        p = paths.split_xlsx(split)
        require_inputs(paths, f"{split}_xlsx")
        x, y = load_excel(p, None if mlp is None else mlp.task)
        if mlp is not None:
            provenance.require_made_from(paths.mlp, mlp.provenance, split, p, provenance.rows_digest(x, y),
                                         f"run train_mlp.py --run-dir {paths.root} (and the stages after it) first")
        xs.append(x)
        ys.append(y)
        splits += [split] * len(x)
    return splits, torch.cat(xs), torch.cat(ys)


STEPS = ("labels", "fresh", "sankey_data", "heatmap", "distributions", "sankey", "index", "training", "probe", "trace")


def _noop(step: str) -> None:
    pass


def gather(paths, seed: int = 0, device="cpu", n_inputs: int | None = None, on_step=_noop) -> ReportInputs:
    """Load the run's data, models and labels and compute everything the pages draw. Everything that
    can fail on a bad input fails here, before any page is written. The labels must have been made
    with `seed` (and `n_inputs`, when given)."""
    t = {}
    t0 = time.time()
    mlp, sae = load_run_models(paths, device)
    splits = load_splits(paths, mlp)
    labels = read_labels(paths, seed=seed, n_inputs=n_inputs, models=(mlp, sae))
    made_from = {**labels.made_from, "labels": provenance.entry(paths.labels_cache, labels.digest, paths.root),
                 **{s: mlp.provenance["made_from"][s] for s in SPLITS}}
    t["labels"] = time.time() - t0
    on_step("labels")
    t1 = time.time()
    x = labels.inputs
    features, neurons = labels.features, labels.neurons
    max_act = torch.as_tensor(np.nan_to_num(features["max_act"].to_numpy(dtype=np.float64), nan=0.0), dtype=torch.float32)
    top = _top_units(features, N_TOP_UNITS)
    fs = vd.fresh_stats(mlp, sae, x, max_act, keep_columns=top)
    t["fresh"] = time.time() - t1
    on_step("fresh")
    t1 = time.time()
    sankey = vd.sankey_data(mlp, x, fs, seed=seed, device=device)
    t["sankey_data"] = time.time() - t1
    on_step("sankey_data")
    mlp, sae = mlp.cpu(), sae.cpu()          # the rest (weights, the 10,000-row trace) is small
    w_out = feature_output_weights(mlp, sae)                             # [d_sae]
    profiles = vd.feature_profiles(fs, x, sae.W_dec, w_out, seed=seed)
    # [d_sae, d_hidden]: mean (h_j - b_dec_j) * W_enc[j, i] over the inputs where feature i fires
    card_contrib = ((fs.mean_h_firing - sae.b_dec.detach()[None, :]) * sae.W_enc.detach().T).numpy()
    card_contrib[fs.counts.numpy() == 0] = 0
    m = read_metrics(paths.metrics)
    test = number_at(m, "mlp", "test", "exact_match")
    subtitle = (f"run {paths.root} · SAE {sae.cfg.architecture}, d_sae {sae.cfg.d_sae} · "
                f"{len(x):,} fresh inputs (seed {seed})" + (f" · MLP test exact-match {test:.1%}" if test is not None else ""))
    return ReportInputs(
        paths=paths, mlp=mlp, sae=sae, labels=labels, features=features, neurons=neurons, x_fresh=x, h_fresh=fs.h,
        fresh=fs, w_out=w_out, profiles=profiles, hist=fs.hist.numpy(), hist_max=fs.hist_max.numpy(), top_idx=fs.top_idx.numpy(),
        top_val=fs.top_val.numpy(), card_contrib=card_contrib, sankey=sankey, combo_maps=fs.combo_value,
        heatmap=heatmap_inputs(labels, x, features, neurons), mono_threshold=MONOSEMANTIC_SCORE,
        ultralow=ULTRALOW_DENSITY,
        # the threshold these labels were made with (the constant may have changed since)
        neuron_threshold=float(labels.summary.get("neuron_threshold_fraction", NEURON_THRESHOLD_FRACTION)), subtitle=subtitle, splits=splits, timings=t,
        made_from=made_from, footer=provenance.footer(made_from))


@torch.no_grad()
def write_trace(path, rd: ReportInputs) -> int:
    """The per-sample Excel trace of every train, val and test row, at `path`; returns the number of rows."""
    splits, x, y = rd.splits
    p = chunked_pass(rd.mlp, rd.sae, x)      # hidden [n, d_hidden], features [n, d_sae], mlp / spliced [n]
    expl = [rd.feature_label(i) for i in range(rd.sae.cfg.d_sae)]
    features = rd.features.assign(direct_effect_per_unit=rd.w_out.numpy())
    write_trace_xlsx(path, splits, x, y, p["mlp"], p["spliced"], p["hidden"], p["features"], expl, features,
                     made_from=rd.made_from)
    return len(x)


PAGES = {"heatmap": "heatmap_html", "distributions": "distributions_html", "sankey": "sankey_html",
         "index": "index_html", "training": "training_html", "probe": "probe_html", "trace": "trace_xlsx"}


def report_files(paths) -> list:
    """The files `write_reports` writes for one SAE (RunPaths properties in PAGES), as one group."""
    return [getattr(paths, prop) for prop in PAGES.values()]


def write_reports(paths, rd: ReportInputs, temps: dict | None = None, on_step=_noop) -> dict:
    """Write every page of `report_files` to its temporary in `temps` ({file: temp path} of one
    `atomic_group`, so the set is committed whole; None: to the files themselves, each atomically);
    returns {file name: number of plots} (the trace: its rows); timings into rd.timings.
    `on_step(name)` is called after each part (the stage script draws its progress bar with it)."""
    if temps is None:
        files = report_files(paths)
        with atomic_group(files) as tmp:
            return write_reports(paths, rd, dict(zip(files, tmp)), on_step)
    t = rd.timings
    written = {}
    metrics = read_metrics(paths.metrics)
    nav = [(nav_target(paths, prop), title) for prop, title in NAV]
    builders = {"heatmap": lambda: heatmap.build(paths, rd), "distributions": lambda: distributions.build(paths, rd),
                "sankey": lambda: sankey.build(paths, rd), "index": lambda: overview.build(paths, rd, metrics),
                "training": lambda: training.build(paths, rd.subtitle, rd.footer),
                # no plotly chart: its own forward pass and tables
                "probe": lambda: (probe_html(rd.mlp, rd.sae, rd.features, rd.mlp.task.reference_inputs, nav,
                                                  rd.footer), 0)}
    for name, prop in PAGES.items():
        t2 = time.time()
        target = getattr(paths, prop)
        if name == "trace":
            written[target.name] = write_trace(temps[target], rd)
        else:
            html, n_plots = builders[name]()
            temps[target].write_text(html, encoding="utf-8")
            written[target.name] = n_plots
        t[name] = time.time() - t2
        on_step(name)
    return written
