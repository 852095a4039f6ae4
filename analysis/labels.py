"""A run's labelling: what every SAE feature and every neuron means.

`label_models(mlp, sae)` samples two sets of fresh inputs (never the training rows): on the first (the
task's "explain" stream) it chooses each feature's and each neuron's explanation, on the second (the
"analysis" stream) it scores those explanations (`analysis.explain`), so no score is measured on the
inputs its explanation was picked on. It runs the MLP and the SAE on them (`sae.splice.chunked_pass`),
scores random directions of the hidden layer at the features' densities the same way
(`analysis.controls`), explains all three again under the split-aware grammar (a pointer pair and one
value condition, `analysis.concepts`; columns `split_explanation`, `split_score`), measures each
feature's zero-ablation effect where its explanation holds and where it does not
(`analysis.causal.effects_table`), runs the interchange test (`analysis.interchange`) and measures
absorption for the features, the neurons and the random directions, and each feature's hole
(`analysis.absorption`; columns `hole_share`, `absorbed_by`).
`build_labels(paths)` does it for a run's own models and writes the result
(`analysis.labels_io.write_labels`); `label_features.py` is the stage that calls it.
"""
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from analysis.absorption import absorbed_by, absorption
from analysis.capacity import layer_capacity
from analysis.causal import effects_table
from analysis.controls import random_direction_acts
from analysis.concepts import concept_set
from analysis.explain import (NEURON_THRESHOLD_FRACTION, Explanations, found_targets, held_out, split_aware,
                              summarize)
from analysis.interchange import interchange_suite
from analysis.labels_io import LABELS_VERSION, Labels, write_labels
from analysis.run import load_run_models
from analysis.concepts import explanation_truth
from common import provenance
from common.io import PipelineError
from common.paths import RunPaths
from dataset.task import DEFAULT_TASK, Task, stream_seed, target
from mlp.evaluate import regression_metrics
from sae.splice import chunked_pass

# 32768 fresh inputs: ~20 per cell of (p1, p2, a, b), 33 firings at the 0.1% ultralow line, and
# scoring the default run's 2048 features + 512 neurons in a few seconds (benchmarks/bench_explain.py)
DEFAULT_N_INPUTS = 32768
MIN_N_INPUTS = 1000              # the ultralow line is 0.1%: fewer inputs cannot tell ultralow from dead


def fresh_inputs(seed: int, n: int, stream: str = "analysis", task: Task = DEFAULT_TASK) -> torch.Tensor:
    """The inputs of `task` (an MLP's: `mlp.task`) explanations are scored on ("analysis"), or chosen on ("explain")."""
    return task.sample_inputs(n, seed=stream_seed(seed, stream))


def build_labels(paths: RunPaths, seed: int = 0, n_inputs: int = DEFAULT_N_INPUTS, device="cpu",
                 write: bool = True, neuron_cache: dict | None = None) -> Labels:
    """Label every feature and neuron of the run at `paths` on `n_inputs` fresh inputs (see module doc).
    `neuron_cache` ({}: filled here) keeps the neurons' labels of each (MLP digest, seed, n_inputs), so
    the SAEs of one run (`label_features.py --sae all`) share them instead of scoring the neurons again."""
    if n_inputs < MIN_N_INPUTS:
        raise PipelineError(f"--n-inputs {n_inputs}: expected at least {MIN_N_INPUTS} fresh inputs "
                            f"(the ultralow line is 0.1%)")
    mlp, sae = load_run_models(paths, device)
    key = (mlp.provenance["digest"], seed, n_inputs)
    cached = (neuron_cache or {}).get(key)
    labels = label_models(mlp, sae, seed=seed, n_inputs=n_inputs, neuron_labels=cached)
    if neuron_cache is not None:
        neuron_cache[key] = labels.extras["neuron_labels"]
    labels.made_from = {"mlp": provenance.entry(paths.mlp, mlp.provenance["digest"], paths.root),
                        "sae": provenance.entry(paths.sae, sae.provenance["digest"], paths.root)}
    if write:
        write_labels(paths, labels)
    return labels


def feature_holes(f_choose: torch.Tensor, x_choose: torch.Tensor, f: torch.Tensor, x: torch.Tensor,
                  table: pd.DataFrame) -> pd.DataFrame:
    """Columns hole_share and absorbed_by of every feature (`analysis.absorption.absorbed_by`) over its
    explanation (a ramp's: its support); only the features that fire are candidates, the others get none."""
    fires = torch.from_numpy(table["status"].isin(["alive", "ultralow"]).to_numpy().copy())
    idx = torch.nonzero(fires).flatten()
    out = pd.DataFrame({"hole_share": np.full(len(table), np.nan), "absorbed_by": [""] * len(table)})
    if len(idx):
        names = table["explanation"].to_numpy()[idx.numpy()].tolist()
        holes = absorbed_by(f_choose[:, idx], f[:, idx], explanation_truth(names, x_choose), explanation_truth(names, x),
                            ids=idx.numpy())
        out.loc[idx.numpy(), ["hole_share", "absorbed_by"]] = holes.to_numpy()
        out["hole_share"] = out["hole_share"].astype(float)
    return out


@dataclass
class NeuronLabels:
    """What the labelling finds in the MLP's neurons: a function of the MLP and the two sets of inputs
    alone, the same for every SAE of the run."""
    ex: Explanations                 # held-out explanations, with the split-aware columns
    absorption: object | None        # analysis.absorption's result (None without neurons)
    capacity: dict                   # analysis.capacity.layer_capacity
    found: dict                      # analysis.explain.found_targets


def label_neurons(h_c: torch.Tensor, x_choose: torch.Tensor, h: torch.Tensor, x: torch.Tensor,
                  neurons: bool = True, split: bool = True) -> NeuronLabels:
    """The neurons' labels from the hidden layer on the choosing inputs (h_c [n, d_hidden]) and on the
    scoring inputs (h); `neurons=False`: an empty table (capacity is still measured); `split=False`:
    without the split-aware grammar."""
    width = slice(None) if neurons else slice(0, 0)
    ex_n = held_out(h_c[:, width], x_choose, h[:, width], x, kind="neuron", threshold_fraction=NEURON_THRESHOLD_FRACTION)
    if split:
        ex_n.table = pd.concat([ex_n.table, split_aware(h_c[:, width], x_choose, h[:, width], x, "neuron",
                                                        NEURON_THRESHOLD_FRACTION)], axis=1)
    absorb = absorption(h_c, x_choose, h, x, threshold_fraction=NEURON_THRESHOLD_FRACTION) if neurons else None
    return NeuronLabels(ex_n, absorb, layer_capacity(h, x), found_targets(ex_n))


def label_models(mlp, sae, seed: int = 0, n_inputs: int = DEFAULT_N_INPUTS, neurons: bool = True,
                 interchange: bool = True, keep_activations: bool = False,
                 neuron_labels: NeuronLabels | None = None, split: bool = True) -> Labels:
    """The labelling of an (MLP, SAE) pair held in memory (see module docstring); `neurons=False`
    skips the neurons (their table is then empty), `interchange=False` the interchange test, `split=False`
    the split-aware grammar (its shares are then absent: most of the scoring time at L = 8, where its
    pointer pairs are 64, for a figure the across-L benchmark does not need);
    `keep_activations=True` keeps h [n, d_hidden] and f [n, d_sae] in `extras`. `neuron_labels` (made
    by `label_neurons` for this MLP on the same inputs, e.g. for another SAE of the run) is used as it
    is; it is returned in `extras["neuron_labels"]` either way."""
    t0 = time.time()
    x, x_choose = fresh_inputs(seed, n_inputs, task=mlp.task), fresh_inputs(seed, n_inputs, "explain", mlp.task)
    acts, choose = chunked_pass(mlp, sae, x), chunked_pass(mlp, sae, x_choose)
    h, f = acts["hidden"], acts["features"]                             # [n, d_hidden], [n, d_sae]
    t_acts = time.time() - t0
    h_c, f_c = choose["hidden"], choose["features"]
    ex_f = held_out(f_c, x_choose, f, x, kind="feature")
    nl = neuron_labels if neuron_labels is not None else label_neurons(h_c, x_choose, h, x, neurons, split)
    ex_n = nl.ex
    # random directions at the densities of the features that fire (alive or ultralow)
    fires = ex_f.table["status"].isin(["alive", "ultralow"]).to_numpy()
    r_c, r = random_direction_acts(h_c, h, ex_f.table["density"].to_numpy()[fires], seed)
    ctrl = held_out(r_c, x_choose, r, x, kind="random")
    # the same units under the split-aware grammar (pointer pair + one value condition)
    for ex, a_c, a, kind in ((ex_f, f_c, f, "feature"), (ctrl, r_c, r, "random")) if split else ():
        ex.table = pd.concat([ex.table, split_aware(a_c, x_choose, a, x, kind)], axis=1)
    t_score = time.time() - t0 - t_acts
    # absorption: each hierarchy's parent unit silent where a child's unit fires, for all three unit sets
    t1 = time.time()
    absorb = {"features": absorption(f_c, x_choose, f, x), "random_directions": absorption(r_c, x_choose, r, x)}
    if nl.absorption is not None:
        absorb["neurons"] = nl.absorption
    absorption_table = pd.concat([a.table.assign(unit_set=k) for k, a in absorb.items()], ignore_index=True)
    # and per feature: which features fill its explanation's hole (the cards' "absorbed by")
    ex_f.table = pd.concat([ex_f.table, feature_holes(f_c, x_choose, f, x, ex_f.table)], axis=1)
    t_absorb = time.time() - t1
    features = pd.concat([ex_f.table, effects_table(mlp, sae, f, ex_f, x)], axis=1)
    ic = interchange_suite(mlp, sae, features, seed) if interchange else {"interchange_success": None}
    found_f, found_n = found_targets(ex_f), nl.found
    y = target(x).float()
    summary = {
        **summarize(ex_f, "features"), **summarize(ex_n, "neurons"), **summarize(ctrl, "random_directions"),
        **{k: v for name, a in absorb.items() for k, v in a.summary(name).items()},
        **nl.capacity,
        "ramps_found": {"features": found_f["ramps_found"], "neurons": found_n["ramps_found"]},
        "ramps_best": {"features": found_f["ramps_best"], "neurons": found_n["ramps_best"]},
        "core_concepts_found": {"features": found_f["core_found"], "neurons": found_n["core_found"]},
        "core_concepts_best": {"features": found_f["core_best"], "neurons": found_n["core_best"]},
        **ic,
        "spliced_exact_match": regression_metrics(acts["spliced"], y)["exact_match"],
        "mlp_exact_match": regression_metrics(acts["mlp"], y)["exact_match"],
        "neuron_threshold_fraction": NEURON_THRESHOLD_FRACTION,
        "n_concepts": len(concept_set(mlp.task)), "n_concepts_split": len(concept_set(mlp.task, pointer_pairs=True)),
        "n_inputs": int(n_inputs), "seed": int(seed),
        "d_sae": int(sae.cfg.d_sae), "architecture": sae.cfg.architecture,
        "seconds": round(time.time() - t0, 2), "scoring_seconds": round(t_score, 2),
        "absorption_seconds": round(t_absorb, 2),
        "version": LABELS_VERSION,
    }
    fs = summary["features_monosemantic_share"]
    ns = summary["neurons_monosemantic_share"]
    summary["monosemantic_ratio"] = float(fs / ns) if ns > 0 else None
    return Labels(features=features, neurons=ex_n.table, summary=summary, inputs=x, absorption=absorption_table,
                  concept_names=ex_f.heatmap_concepts, feature_f1=ex_f.heatmap_f1.astype(np.float32),
                  neuron_f1=ex_n.heatmap_f1.astype(np.float32),
                  extras={"neuron_labels": nl, **({"hidden": h, "features": f} if keep_activations else {})})
