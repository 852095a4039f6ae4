"""The labels on disk: what `label_features.py` writes and every later stage reads.

`reports/features.csv` and `reports/neurons.csv` (one row per unit, see `analysis.explain`),
`reports/absorption.csv` (one row per unit set, parent and child: `analysis.absorption`),
`reports/labels.pt` (the fresh inputs and the unit-by-condition F1 matrices) and the
"interpretability" section of metrics.json, written as one group (`write_labelings`). labels.pt holds
the provenance record (`common.provenance`): the digests of the MLP and SAE the labels were made from
and the byte digests of the three CSVs written with it; the metrics section holds the same record.
`read_labels` is the one reader: it refuses labels that are missing, made from another MLP or SAE than
the run's, whose CSVs or metrics section are not the ones written with labels.pt, made by older scoring
code or with another seed / number of inputs, naming `label_features.py` as the stage to run.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.run import load_run_models
from common import provenance
from common.io import (PipelineError, atomic_group_with_metrics, atomic_path, atomic_torch_save, read_metrics,
                       require_inputs, safe_torch_load)
from common.paths import RunPaths
from common.validate import shown

METRICS_SECTION = "interpretability"
LABELS_VERSION = 6               # bump when the scoring changes, so labels made by older code are refused
                                 # (5: split-aware columns; the control also covers ultralow densities;
                                 # 6: absorption, absorption.csv and the hole_share / absorbed_by columns)
LABEL_FILES = ("features_csv", "neurons_csv", "absorption_csv", "labels_cache")    # RunPaths properties, in write_labels' order
FLOAT_FORMAT = "%.6g"            # every CSV of the reports: 6 significant digits
PRODUCER = "label_features.py"
# columns read back as text; every other non-numeric column is parsed by pandas
STRING_COLUMNS = ("kind", "status", "explanation", "explanation_kind", "variables", "concept_explanation",
                  "ramp_explanation", "split_explanation", "absorbed_by")
NUMERIC_COLUMNS = ("density", "mean_act", "max_act", "score", "precision", "recall", "f1", "corr", "concept_f1",
                   "concept_score", "ramp_score", "effect_where_true", "effect_where_false", "effect_where_active",
                   "effect_mean_abs", "split_score", "hole_share")
EFFECT_COLUMNS = ("effect_where_true", "effect_where_false", "effect_where_active", "effect_mean_abs")
FEATURE_ONLY_COLUMNS = EFFECT_COLUMNS + ("hole_share", "absorbed_by")   # not in neurons.csv
STATUSES = ("alive", "dead", "ultralow")


@dataclass
class Labels:
    features: pd.DataFrame               # one row per SAE feature (see analysis.explain + effect columns)
    neurons: pd.DataFrame                # one row per neuron
    summary: dict                        # also metrics.json "interpretability"
    inputs: torch.Tensor                 # LongTensor [n, 10], the fresh "analysis"-stream inputs
    concept_names: list                  # columns of feature_f1 / neuron_f1: every single condition on
                                         # p1, p2, a, b, a - b, target (deduplicated)
    feature_f1: np.ndarray               # [d_sae, n_concepts] F1 of each feature vs each single condition
    neuron_f1: np.ndarray                # [d_hidden, n_concepts]
    extras: dict = field(default_factory=dict)
    absorption: pd.DataFrame = field(default_factory=pd.DataFrame)   # absorption.csv: one row per unit set,
                                         # parent and child (analysis.absorption); not read back
    made_from: dict = field(default_factory=dict)   # {"mlp": entry, "sae": entry} (common.provenance)
    digest: str | None = None                       # the labels' own digest, once written or read


def write_table(path: Path, df: pd.DataFrame) -> None:
    """A table as CSV, atomically, floats to 6 significant digits (every CSV of the reports)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)


def read_table(path: Path) -> pd.DataFrame:
    """features.csv / neurons.csv back as written: empty text stays "", empty numbers are NaN."""
    df = pd.read_csv(path, keep_default_na=False, na_values={c: ["", "nan", "NaN"] for c in NUMERIC_COLUMNS})
    if "monosemantic" in df:
        df["monosemantic"] = df["monosemantic"].astype(str).str.lower() == "true"
    return df


def write_labels(paths: RunPaths, labels: Labels) -> None:
    """One SAE's labels (see `write_labelings`)."""
    write_labelings(paths, [(paths, labels)])


def write_labelings(run: RunPaths, labelled: list) -> None:
    """Every labelling of `labelled` ([(its RunPaths, Labels)]): features.csv, neurons.csv, absorption.csv,
    labels.pt and its metrics section each, as one group: all or none (a failed write, e.g. a full disk, leaves every
    old file and section, never new tables beside an old labels.pt or one SAE's new labels beside
    another's old ones)."""
    files = [getattr(paths, p) for paths, _ in labelled for p in LABEL_FILES]
    sections = {}
    with atomic_group_with_metrics(files, run.metrics, sections) as temps:
        for i, (paths, labels) in enumerate(labelled):
            features_tmp, neurons_tmp, absorb_tmp, cache_tmp = temps[4 * i:4 * i + 4]
            labels.features.to_csv(features_tmp, index=False, float_format=FLOAT_FORMAT)
            labels.neurons.to_csv(neurons_tmp, index=False, float_format=FLOAT_FORMAT)
            labels.absorption.to_csv(absorb_tmp, index=False, float_format=FLOAT_FORMAT)
            members = {paths.features_csv.name: provenance.file_digest(features_tmp),
                       paths.neurons_csv.name: provenance.file_digest(neurons_tmp),
                       paths.absorption_csv.name: provenance.file_digest(absorb_tmp)}
            content = {"inputs": labels.inputs, "concept_names": list(labels.concept_names),
                       "feature_f1": torch.from_numpy(labels.feature_f1),
                       "neuron_f1": torch.from_numpy(labels.neuron_f1)}
            record = provenance.make_record(provenance.digest_of({**content, "members": members}),
                                            labels.made_from, members)
            atomic_torch_save({**content, "summary_seed": labels.summary["seed"],
                        "summary_n_inputs": labels.summary["n_inputs"], "version": LABELS_VERSION,
                        provenance.KEY: record}, cache_tmp)   # (a failure names labels.pt)
            sections[paths.section(METRICS_SECTION)] = {**labels.summary, provenance.KEY: record}
            labels.digest = record["digest"]


def _rerun(paths: RunPaths, flags: str = "") -> str:
    which = "" if paths.is_default_sae else f" --sae {paths.sae_name}"
    return f"run {PRODUCER} --run-dir {paths.root}{which}{flags} first"


def read_labels(paths: RunPaths, seed: int | None = None, n_inputs: int | None = None, models=None) -> Labels:
    """The run's labels as `label_features.py` wrote them. Refused with one line naming that stage when
    missing, made from another MLP or SAE than the run's (`models`: its (mlp, sae) when loaded already),
    with CSVs or a metrics section other than those written with labels.pt, written by other scoring
    code, or (when given) made with another seed or number of inputs."""
    require_inputs(paths, "mlp", "sae", *LABEL_FILES)
    mlp, sae = load_run_models(paths) if models is None else models
    cache = safe_torch_load(paths.labels_cache, "labels file", _rerun(paths))
    if not isinstance(cache, dict) or cache.get("version") != LABELS_VERSION:
        raise PipelineError(f"{paths.labels_cache}: labels made by another version of the scoring; {_rerun(paths)}")
    record = provenance.record_of(cache, paths.labels_cache, "labels file", _rerun(paths))
    for role, model, path in (("mlp", mlp, paths.mlp), ("sae", sae, paths.sae)):
        provenance.require_made_from(paths.labels_cache, record, role, path, model.provenance["digest"], _rerun(paths))
    section = paths.section(METRICS_SECTION)
    summary = read_metrics(paths.metrics).get(section)
    if (not isinstance(summary, dict) or summary.get("seed") != cache.get("summary_seed")
            or summary.get("n_inputs") != cache.get("summary_n_inputs")
            or not isinstance(summary.get(provenance.KEY), dict)
            or summary[provenance.KEY].get("digest") != record["digest"]):
        raise PipelineError(f"{paths.metrics}: no '{section}' section matching {paths.labels_cache}; "
                            f"{_rerun(paths)}")
    if (seed is not None and summary["seed"] != seed) or (n_inputs is not None and summary["n_inputs"] != n_inputs):
        want_seed = summary["seed"] if seed is None else seed
        want_n = summary["n_inputs"] if n_inputs is None else n_inputs
        raise PipelineError(f"{paths.labels_cache}: labels made with --seed {summary['seed']} --n-inputs "
                            f"{summary['n_inputs']}; {_rerun(paths, f' --seed {want_seed} --n-inputs {want_n}')}")
    _check_cache(paths, cache, mlp.task)
    tables = {}
    for prop, rows in (("features_csv", len(cache["feature_f1"])), ("neurons_csv", len(cache["neuron_f1"]))):
        path = getattr(paths, prop)
        try:
            tables[prop] = read_table(path)
        except (ValueError, KeyError, AttributeError, UnicodeDecodeError, RecursionError, pd.errors.ParserError) as e:
            raise PipelineError(f"{path}: unreadable labels ({type(e).__name__}); {_rerun(paths)}") from None
        _check_table(paths, path, tables[prop], rows, with_effects=prop == "features_csv")
    # last: a table that reads as labels but is not the one written with labels.pt (edited, or copied
    # from another labelling) is refused here; one that does not read as labels was named above
    problem = provenance.members_problem(paths.labels_cache.parent, record)
    if problem:
        raise PipelineError(f"{paths.labels_cache}: {problem}; {_rerun(paths)}")
    return Labels(features=tables["features_csv"], neurons=tables["neurons_csv"], summary=summary,
                  inputs=cache["inputs"], concept_names=list(cache["concept_names"]),
                  feature_f1=cache["feature_f1"].numpy(), neuron_f1=cache["neuron_f1"].numpy(),
                  made_from=dict(record["made_from"]), digest=record["digest"])


def _check_cache(paths: RunPaths, cache: dict, task) -> None:
    """labels.pt holds what write_labels wrote: inputs [n_inputs, 2L+2] integers of `task` (the MLP's), the concept
    names, and F1 matrices [units, concepts] of floats in [0, 1] (NaN: undefined)."""
    def bad(what: str) -> PipelineError:
        return PipelineError(f"{paths.labels_cache}: {what}; {_rerun(paths)}")

    names, x = cache.get("concept_names"), cache.get("inputs")
    if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)):
        raise bad("concept_names: expected a list of names")
    n_inputs = cache.get("summary_n_inputs")
    if not (torch.is_tensor(x) and x.dtype == torch.long and x.dim() == 2 and x.shape[1] == task.n_inputs
            and (not isinstance(n_inputs, int) or len(x) == n_inputs)):
        raise bad(f"inputs: expected integers [{n_inputs}, {task.n_inputs}], got "
                  f"{f'{x.dtype} {list(x.shape)}' if torch.is_tensor(x) else type(x).__name__}")
    if len(x) and bool(((x < 0) | (x >= task.value_limits)).any()):
        raise bad(f"inputs: values outside the task's digits 0..9 and pointers 0..{task.slots - 1}")
    for key in ("feature_f1", "neuron_f1"):
        t = cache.get(key)
        if not (torch.is_tensor(t) and t.is_floating_point() and t.dim() == 2 and t.shape[1] == len(names)):
            got = f"{t.dtype} {list(t.shape)}" if torch.is_tensor(t) else type(t).__name__
            raise bad(f"{key}: expected floats [units, {len(names)} concepts], got {got}")
        if bool(((t < 0) | (t > 1)).any()):
            raise bad(f"{key}: F1 values outside [0, 1]")


def _check_table(paths: RunPaths, path: Path, df: pd.DataFrame, rows: int, with_effects: bool) -> None:
    """features.csv / neurons.csv: every column the readers use, one row per unit 0..rows-1 (as many as
    labels.pt's matrices have), numbers where numbers belong and a known status."""
    def bad(what: str) -> PipelineError:
        return PipelineError(f"{path}: {what}; {_rerun(paths)}")

    wanted = [c for c in ("unit", "monosemantic", *STRING_COLUMNS, *NUMERIC_COLUMNS)
              if with_effects or c not in FEATURE_ONLY_COLUMNS]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise bad(f"missing column(s) {shown(missing)} (expected the columns label_features.py writes)")
    units = df["unit"]
    if len(df) != rows or not pd.api.types.is_integer_dtype(units) or not (units.to_numpy() == np.arange(rows)).all():
        raise bad(f"expected one row per unit 0..{rows - 1} (as in {paths.labels_cache.name}), got {len(df)} rows")
    for c in wanted:
        if c in NUMERIC_COLUMNS and not pd.api.types.is_numeric_dtype(df[c]):
            raise bad(f"column {c!r} holds text where numbers belong")
    unknown = sorted(set(df["status"].astype(str)) - set(STATUSES))
    if unknown:
        raise bad(f"column 'status': {shown(unknown)}, expected {', '.join(STATUSES)}")
