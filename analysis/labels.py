"""A run's labelling: what every SAE feature and every neuron means, built once and cached.

`build_labels(paths)` samples fresh inputs from the task's "analysis" stream (never the training
rows), runs the MLP and the SAE on them, explains every feature and every neuron
(`analysis.explain`), measures each feature's zero-ablation effect where its explanation holds and
where it does not, runs the interchange test (`analysis.causal`), and writes
`reports/features.csv`, `reports/neurons.csv`, `reports/labels.pt` (the inputs and the F1 matrices)
and the "interpretability" section of metrics.json, each atomically.

`load_or_build_labels(paths)` reuses those files when they are newer than the MLP and the SAE and
were made with the same seed and number of inputs, else rebuilds them.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.causal import (DEPENDS_ON, explanation_mentions, feature_output_weights, interchange_test,
                             resample_variable)
from analysis.concepts import N_CELLS, cell_index, concept_set
from analysis.explain import (NEURON_THRESHOLD_FRACTION, active_mask, cell_sum_matrix, explain_units, found_targets,
                              summarize)
from common.io import PipelineError, atomic_path, atomic_torch_save, require_inputs, safe_torch_load, update_metrics
from common.paths import RunPaths
from dataset.data_generator import ground_truth, sample_inputs, stream_seed, target
from mlp.evaluate import regression_metrics

# 32768 fresh inputs: ~20 per cell of (p1, p2, a, b), 33 firings at the 0.1% ultralow line, and
# scoring the default run's 2048 features + 512 neurons in a few seconds (benchmarks/bench_explain.py)
DEFAULT_N_INPUTS = 32768
INTERCHANGE_PAIRS = 2000         # base inputs per interchange variable
CHUNK = 8192
METRICS_SECTION = "interpretability"
LABELS_VERSION = 3               # bump when the scoring changes, so caches made by older code are rebuilt


@dataclass
class Labels:
    features: pd.DataFrame               # one row per SAE feature (see analysis.explain + effect columns)
    neurons: pd.DataFrame                # one row per neuron
    summary: dict                        # also metrics.json "interpretability"
    inputs: torch.Tensor                 # LongTensor [n, 10], the fresh "analysis"-stream inputs
    concept_names: list                  # columns of feature_f1 / neuron_f1 (= heatmap_concepts)
    feature_f1: np.ndarray               # [d_sae, n_concepts] F1 of each feature vs each single condition
    neuron_f1: np.ndarray                # [d_hidden, n_concepts]
    extras: dict = field(default_factory=dict)

    @property
    def heatmap_concepts(self) -> list:
        """The concepts of the F1 matrices: every single condition on p1, p2, a, b, a - b, target
        (deduplicated); conjunctions and digits are left out of the heatmap."""
        return self.concept_names


def fresh_inputs(seed: int, n: int) -> torch.Tensor:
    return sample_inputs(n, seed=stream_seed(seed, "analysis"))


@torch.no_grad()
def unit_activations(mlp, sae, x: torch.Tensor, chunk: int = CHUNK):
    """(hidden [n, d_hidden], features [n, d_sae], spliced prediction [n], MLP prediction [n]) on the CPU."""
    device = next(mlp.parameters()).device
    hs, fs, spl, own = [], [], [], []
    for i in range(0, len(x), chunk):
        xc = x[i:i + chunk].to(device)
        h = mlp.hidden(xc)                                              # [chunk, d_hidden]
        f = sae.encode(h.to(next(sae.parameters()).device))             # [chunk, d_sae]
        hs.append(h.cpu())
        fs.append(f.cpu())
        spl.append(mlp.head(sae.decode(f).to(device)).squeeze(-1).cpu())
        own.append(mlp.head(h).squeeze(-1).cpu())
    return torch.cat(hs), torch.cat(fs), torch.cat(spl), torch.cat(own)


def _effects(mlp, sae, f: torch.Tensor, ex, x: torch.Tensor) -> pd.DataFrame:
    """Mean zero-ablation effect of each feature where its explanation (concept / ramp support)
    holds, where it does not, where the feature is active, and its mean |effect| over all inputs.
    Zeroing feature u moves the spliced prediction by -f_u * w_u (w = W_dec @ w_head, exact: see
    analysis.causal), so every mean is a sum of f over the right inputs, taken per cell."""
    cs = concept_set()
    gt = ground_truth(x)
    cells = cell_index(gt)
    n, d_sae = f.shape
    w = feature_output_weights(mlp.cpu(), sae.cpu())                    # [d_sae]
    F_cell = (cell_sum_matrix(cells) @ f).double()                     # [1600, d_sae] sums of f per cell
    n_cell = torch.bincount(cells, minlength=N_CELLS).double()          # [1600]
    cols = torch.as_tensor(ex.truth_col)
    on_cells = cols.clamp_min(0) < cs.n_cell
    T = cs.cell_truth[:, cols.clamp_min(0).clamp_max(cs.n_cell - 1)].double()   # [1600, d_sae]
    f_true = (F_cell * T).sum(0)                                        # [d_sae]
    n_true = n_cell @ T
    for u in torch.nonzero(~on_cells & (cols >= 0)).flatten().tolist():  # digit concepts: per input
        holds = cs.concept_truth(int(cols[u]), gt, cells)
        f_true[u], n_true[u] = float(f[holds, u].double().sum()), float(holds.sum())
    f_all = F_cell.sum(0)
    n_act = (f > 0).sum(0).double()
    wd = w.double()
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    live = cols >= 0
    where_true = torch.where(live & (n_true > 0), -wd * f_true / n_true.clamp_min(1), nan)
    where_false = torch.where(live & (n_true < n), -wd * (f_all - f_true) / (n - n_true).clamp_min(1), nan)
    where_active = torch.where(n_act > 0, -wd * f_all / n_act.clamp_min(1), nan)
    return pd.DataFrame({"effect_where_true": where_true.numpy(), "effect_where_false": where_false.numpy(),
                         "effect_where_active": where_active.numpy(),
                         "effect_mean_abs": (wd.abs() * f_all / n).numpy()})


def interchange_suite(mlp, sae, features: pd.DataFrame, seed: int, n_pairs: int = INTERCHANGE_PAIRS) -> dict:
    """For each variable V of (a, b, p1, p2): bases = fresh inputs (analysis stream, offset seed), sources =
    the bases with V changed, patched group = the non-dead features whose explanation depends on V
    (`analysis.causal.DEPENDS_ON`). Also the complement (every other feature patched), which should
    NOT move the prediction. `interchange_success` pools the four variables over the pairs whose base
    and source the unpatched spliced model gets right; `interchange_success_all_pairs` over all."""
    g = torch.Generator().manual_seed(stream_seed(seed, "analysis") + 7)
    x_base = sample_inputs(n_pairs, seed=stream_seed(seed, "analysis") + 1)
    mlp, sae = mlp.cpu(), sae.cpu()
    live = features[features["status"] != "dead"]
    out, total_ok, total_n, right_ok, right_n = {}, 0.0, 0, 0.0, 0
    for var, deps in DEPENDS_ON.items():
        group = [int(u) for u, e in zip(live["unit"], live["explanation"]) if explanation_mentions(e, deps)]
        rest = sorted(set(range(sae.cfg.d_sae)) - set(group))
        x_src = resample_variable(x_base, var, g)
        res = interchange_test(mlp, sae, group, x_base, x_src)
        res["complement_success"] = interchange_test(mlp, sae, rest, x_base, x_src)["success"]
        out[var] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
        if res["n"]:
            total_ok += res["success"] * res["n"]
            total_n += res["n"]
        if res["n_spliced_right"]:
            right_ok += res["success_spliced_right"] * res["n_spliced_right"]
            right_n += res["n_spliced_right"]
    return {"interchange_success": round(right_ok / right_n, 4) if right_n else None,
            "interchange_pairs": int(right_n), "interchange_pairs_all": int(total_n),
            "interchange_success_all_pairs": round(total_ok / max(total_n, 1), 4), "interchange": out}


def load_run_models(paths: RunPaths, device="cpu"):
    """(mlp, sae) of a run, in eval mode; a missing model names the stage to run, and an SAE trained
    on another MLP's hidden layer is refused. The one loader every later stage uses."""
    from mlp.mlp_definition import load_mlp
    from sae.sae_definition import load_sae

    require_inputs(paths, "mlp", "sae")
    mlp = load_mlp(paths.mlp, device=device)
    sae = load_sae(paths.sae, device=device)
    if sae.cfg.d_in != mlp.cfg.d_hidden:
        raise PipelineError(f"{paths.sae}: SAE reads {sae.cfg.d_in}-d activations but the MLP's hidden layer "
                            f"is {mlp.cfg.d_hidden}-d; re-run train_sae.py --run-dir {paths.root}")
    return mlp, sae


def build_labels(paths: RunPaths, seed: int = 0, n_inputs: int = DEFAULT_N_INPUTS, device="cpu",
                 write: bool = True, progress: bool = False) -> Labels:
    """Label every feature and neuron of the run at `paths` on `n_inputs` fresh inputs (see module doc)."""
    if n_inputs < 1000:
        raise PipelineError(f"n_inputs {n_inputs}: expected at least 1000 fresh inputs (the ultralow line is 0.1%)")
    mlp, sae = load_run_models(paths, device)
    labels = label_models(mlp, sae, seed=seed, n_inputs=n_inputs)
    if write:
        write_labels(paths, labels)
    return labels


def label_models(mlp, sae, seed: int = 0, n_inputs: int = DEFAULT_N_INPUTS, neurons: bool = True,
                 interchange: bool = True, keep_activations: bool = False) -> Labels:
    """The labelling of an (MLP, SAE) pair held in memory (see module docstring); `neurons=False`
    skips the neurons (their table is then empty), `interchange=False` the interchange test;
    `keep_activations=True` keeps h [n, d_hidden] and f [n, d_sae] in `extras`."""
    t0 = time.time()
    x = fresh_inputs(seed, n_inputs)
    h, f, spliced, own = unit_activations(mlp, sae, x)
    t_acts = time.time() - t0
    ex_f = explain_units(f, x, kind="feature")
    ex_n = explain_units(h if neurons else h[:, :0], x, active=active_mask(h if neurons else h[:, :0],
                                                                         NEURON_THRESHOLD_FRACTION), kind="neuron")
    t_score = time.time() - t0 - t_acts
    features = pd.concat([ex_f.table, _effects(mlp, sae, f, ex_f, x)], axis=1)
    ic = interchange_suite(mlp, sae, features, seed) if interchange else {"interchange_success": None}
    found_f, found_n = found_targets(ex_f), found_targets(ex_n)
    y = target(x).float()
    summary = {
        **summarize(ex_f, "features"), **summarize(ex_n, "neurons"),
        "ramps_found": {"features": found_f["ramps_found"], "neurons": found_n["ramps_found"]},
        "ramps_best": {"features": found_f["ramps_best"], "neurons": found_n["ramps_best"]},
        "core_concepts_found": {"features": found_f["core_found"], "neurons": found_n["core_found"]},
        "core_concepts_best": {"features": found_f["core_best"], "neurons": found_n["core_best"]},
        **ic,
        "spliced_exact_match": regression_metrics(spliced, y)["exact_match"],
        "mlp_exact_match": regression_metrics(own, y)["exact_match"],
        "neuron_threshold_fraction": NEURON_THRESHOLD_FRACTION,
        "n_concepts": len(concept_set()),
        "n_inputs": int(n_inputs), "seed": int(seed),
        "d_sae": int(sae.cfg.d_sae), "architecture": sae.cfg.architecture,
        "seconds": round(time.time() - t0, 2), "scoring_seconds": round(t_score, 2),
        "version": LABELS_VERSION,
    }
    fs = summary["features_monosemantic_share"]
    ns = summary["neurons_monosemantic_share"]
    summary["monosemantic_ratio"] = float(fs / ns) if ns > 0 else None
    return Labels(features=features, neurons=ex_n.table, summary=summary, inputs=x,
                  concept_names=ex_f.heatmap_concepts, feature_f1=ex_f.heatmap_f1.astype(np.float32),
                  neuron_f1=ex_n.heatmap_f1.astype(np.float32),
                  extras={"hidden": h, "features": f} if keep_activations else {})


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def write_labels(paths: RunPaths, labels: Labels) -> None:
    _write_csv(paths.features_csv, labels.features)
    _write_csv(paths.neurons_csv, labels.neurons)
    atomic_torch_save({"inputs": labels.inputs, "concept_names": list(labels.concept_names),
                       "feature_f1": torch.from_numpy(labels.feature_f1),
                       "neuron_f1": torch.from_numpy(labels.neuron_f1),
                       "summary_seed": labels.summary["seed"], "summary_n_inputs": labels.summary["n_inputs"],
                       "version": LABELS_VERSION}, paths.labels_cache)
    update_metrics(paths.metrics, METRICS_SECTION, labels.summary)


STRING_COLUMNS = ("kind", "status", "explanation", "explanation_kind", "concept_explanation", "ramp_explanation")


def read_table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, keep_default_na=False, na_values={c: ["", "nan", "NaN"] for c in
                                                              ("density", "mean_act", "max_act", "score", "precision",
                                                               "recall", "f1", "corr", "concept_f1", "ramp_score",
                                                               "effect_where_true", "effect_where_false",
                                                               "effect_where_active", "effect_mean_abs")})
    if "monosemantic" in df:
        df["monosemantic"] = df["monosemantic"].astype(str).str.lower() == "true"
    return df


def _cached(paths: RunPaths, seed: int, n_inputs: int) -> Labels | None:
    from common.io import read_metrics

    files = (paths.features_csv, paths.neurons_csv, paths.labels_cache)
    if not all(p.exists() for p in files):
        return None
    made = min(p.stat().st_mtime for p in files)
    if made < max(paths.mlp.stat().st_mtime, paths.sae.stat().st_mtime):
        return None
    summary = read_metrics(paths.metrics).get(METRICS_SECTION)
    try:
        cache = safe_torch_load(paths.labels_cache, "labels cache", "it is rebuilt")
        if (cache.get("version") != LABELS_VERSION or cache.get("summary_seed") != seed
                or cache.get("summary_n_inputs") != n_inputs):
            return None
        features, neurons = read_table(paths.features_csv), read_table(paths.neurons_csv)
    except (PipelineError, ValueError, KeyError, AttributeError, pd.errors.ParserError):
        return None   # a damaged cache is rebuilt, never fatal
    if not summary or summary.get("seed") != seed or summary.get("n_inputs") != n_inputs:
        return None
    return Labels(features=features, neurons=neurons, summary=summary, inputs=cache["inputs"],
                  concept_names=list(cache["concept_names"]), feature_f1=cache["feature_f1"].numpy(),
                  neuron_f1=cache["neuron_f1"].numpy())


def load_or_build_labels(paths: RunPaths, seed: int = 0, n_inputs: int = DEFAULT_N_INPUTS, device="cpu",
                         progress: bool = False) -> Labels:
    """The run's labels from reports/ when they are current (newer than the MLP and SAE files, same seed
    and n_inputs), else freshly built and written."""
    if paths.mlp.exists() and paths.sae.exists():
        cached = _cached(paths, seed, n_inputs)
        if cached is not None:
            return cached
    return build_labels(paths, seed=seed, n_inputs=n_inputs, device=device, progress=progress)
