"""Benchmark of issue "Overcomplete dictionaries that mean something": for each architecture, size
and seed, train an SAE on a finished run's activations with the project's own code, measure it on
the held-out rows as train_sae.py does, label it as label_features.py does, and print one row; per
architecture, the known-dictionary recovery on benchmarks/synthetic.py's default data.

    .venv/bin/python benchmarks/bench_dictionaries.py --run-dir /tmp/baseline_run
    .venv/bin/python benchmarks/bench_dictionaries.py --run-dir D --architectures topk --sizes 2048 \
        --set topk:lr=0.001 --no-synthetic
    .venv/bin/python benchmarks/bench_dictionaries.py --run-dir runs/slots8 --dictionaries topk:256,relu:2048 \
        --seeds 0 --n-inputs 32768 --no-synthetic --no-split        # issue 24's grid (bench_slots.py)

Each row records the task's L (`slots`) its run is of. `--dictionaries` picks (architecture, size)
pairs instead of the --architectures x --sizes product; the neurons are labelled once per seed for
every dictionary of the process; `--no-split` labels without the split-aware grammar (its columns
left empty), most of the labelling time at L = 8.

The run directory is only read (MLP + harvested activations). Each row is appended to --csv as soon as
it is measured, so an interrupted run keeps what it measured. The issue's default rule, checked per
row ("rule"): >= 2048 latents, >= 50% alive, >= 50% of alive explained at score >= 0.8, and that share
>= 3x the random-direction control's; "rule split" is the same under the split-aware grammar (a pointer pair
and one value condition, `analysis.concepts`), with its own control. "+ultralow" is the explained share if
ultralow features counted (alive or ultralow, score >= 0.8), as the neurons' is in labels. "absorb"
is full/partial absorption (`analysis.absorption`, as label_features.py measures it), "control" the
random directions' full absorption.
"""
import argparse
import csv
import sys
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the project root: `benchmarks.` as a script too

import torch  # noqa: E402

from analysis.explain import pointer_ramp_names  # noqa: E402
from analysis.labels import label_models  # noqa: E402
from benchmarks._machine import machine_line  # noqa: E402
from benchmarks.synthetic import SyntheticConfig, make_synthetic, score  # noqa: E402
from common.cli import run_main, seed_everything  # noqa: E402
from common.io import PipelineError  # noqa: E402
from common.paths import RunPaths  # noqa: E402
from dataset.task import DEFAULT_TASK, Task  # noqa: E402
from mlp.activations import load_activations  # noqa: E402
from mlp.mlp_definition import load_mlp  # noqa: E402
from sae.base import ARCHITECTURES  # noqa: E402
from sae.metrics import evaluate_sae  # noqa: E402
from sae.registry import config_fields, sae_config  # noqa: E402
from sae.training import RECIPE_FIELDS, TrainConfig, split_activations, train  # noqa: E402


def n_ramps(task: Task) -> int:
    """The ramps a dictionary may find: the pointer ramps of `task` and the sign of a - b."""
    return len(pointer_ramp_names(task)) + 1


RULE = dict(d_sae=2048, alive_share=0.5, explained_share=0.5, control_ratio=3.0)
COLUMNS = ["kind", "slots", "architecture", "size", "seed", "settings", "alive", "dead", "ultralow", "fvu", "l0",
           "spliced_exact_match", "mlp_exact_match", "explained_share", "control_share", "ratio",
           "neurons_share", "split_share", "split_control_share", "split_ratio", "neurons_split_share",
           "with_ultralow_share", "neurons_with_ultralow_share", "ramps_found", "ramps_total", "core_found", "rule", "rule_split", "train_seconds", "label_seconds",
           "recovered", "mmcs", "dead_share", "steps", "lr",
           "absorption_full", "absorption_partial", "control_absorption_full", "neurons_absorption_full"]


def _value(text: str, like):
    """`text` parsed as the type of `like` (a tuple: comma-separated numbers, 'none' for empty)."""
    if isinstance(like, tuple) or like is None and "," in text:
        return () if text.lower() in ("none", "") else tuple(float(v) if "." in v else int(v) for v in text.split(","))
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    return text


def parse_overrides(items: list, architectures: list) -> dict:
    """{architecture: ({SAE setting: value}, {TrainConfig field: value})} from ARCH:FIELD=VALUE items."""
    out = {a: ({}, {}) for a in architectures}
    train_fields = {f.name: f.default for f in fields(TrainConfig)}
    for item in items:
        try:
            arch, rest = item.split(":", 1)
            name, text = rest.split("=", 1)
        except ValueError:
            raise PipelineError(f"--set {item!r}: expected ARCH:FIELD=VALUE, e.g. topk:lr=0.001") from None
        name = name.strip().replace("-", "_")
        if arch not in ARCHITECTURES:
            raise PipelineError(f"--set {item!r}: architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
        own = config_fields(arch)
        try:
            if name in own and name not in ("d_in", "d_sae"):
                out.setdefault(arch, ({}, {}))[0][name] = _value(text, own[name])
            elif name in train_fields and name != "seed":
                like = ARCHITECTURES[arch].RECIPE[name] if name in RECIPE_FIELDS else train_fields[name]
                out.setdefault(arch, ({}, {}))[1][name] = _value(text, like)
            else:
                raise PipelineError(f"--set {item!r}: {name!r} is neither a {arch} SAE setting nor a training setting")
        except ValueError:
            raise PipelineError(f"--set {item!r}: {text!r} is not a valid value of {name}") from None
    return out


def settings_text(overrides: tuple) -> str:
    return " ".join(f"{k}={v}" for part in overrides for k, v in part.items()) or "recipe"


def write_row(path: Path, row: dict) -> None:
    """Append one row (header first when the file is new): a partial run keeps what it measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != COLUMNS:       # rows of another layout would land under the wrong names
            raise PipelineError(f"--csv {path}: written with other columns (an older version of this benchmark); "
                                f"expected a new file or one with the columns {','.join(COLUMNS)}")
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})


def meets_rule(row: dict, split: bool = False) -> bool:
    """The issue's default rule, under the two-condition grammar or (split=True) the split-aware one."""
    size, alive = row["size"], row["alive"]
    explained, ratio = (row["split_share"], row["split_ratio"]) if split else (row["explained_share"], row["ratio"])
    return (size >= RULE["d_sae"] and alive >= RULE["alive_share"] * size
            and explained >= RULE["explained_share"] and ratio is not None and ratio >= RULE["control_ratio"])


def control_ratio(explained: float, control: float):
    # a control of 0 beats any ratio: infinite when something is explained, undefined when nothing is
    if explained is None or control is None:        # not measured (--no-split)
        return None
    return explained / control if control > 0 else float("inf") if explained > 0 else None


def measure(arch, size, seed, overrides, data, mlp, n_inputs, split=True, neuron_cache=None) -> dict:
    """Train, evaluate on the held-out rows (as train_sae.py) and label (as label_features.py) one SAE.
    `neuron_cache` (a dict): the neurons' labels, which depend only on the MLP, the seed and the inputs,
    kept per seed and reused for every dictionary of that seed, as label_features.py does for the SAEs of a
    run. `split=False`: without the split-aware grammar (its columns left empty)."""
    sae_settings, train_settings = overrides
    acts = data["activations"].float()                                # [N, d_in]
    tc = TrainConfig(seed=seed, **train_settings).for_architecture(arch)
    _, eval_rows = split_activations(acts, tc.n_eval)
    cfg = sae_config(arch, d_in=acts.shape[1], d_sae=size, **sae_settings)
    seed_everything(seed)
    t0 = time.perf_counter()
    sae, info = train(cfg, acts, tc)
    train_seconds = time.perf_counter() - t0
    m = evaluate_sae(sae, mlp, acts[eval_rows], data["inputs"][eval_rows], data["targets"][eval_rows].float())
    t0 = time.perf_counter()
    neuron_cache = {} if neuron_cache is None else neuron_cache
    labels = label_models(mlp, sae, seed=seed, n_inputs=n_inputs, interchange=False,
                          neuron_labels=neuron_cache.get(seed), split=split)
    neuron_cache[seed] = labels.extras["neuron_labels"]
    s = labels.summary
    label_seconds = time.perf_counter() - t0
    control = s["random_directions_monosemantic_share"]
    explained = s["features_monosemantic_share"]
    row = {"kind": "real", "slots": mlp.task.slots, "architecture": arch, "size": size, "seed": seed, "settings": settings_text(overrides),
           "alive": s["features_alive"], "dead": s["features_dead"], "ultralow": s["features_ultralow"],
           "dead_share": s["features_dead"] / size,
           "fvu": m["fvu"], "l0": m["l0"], "spliced_exact_match": m["spliced_exact_match"],
           "mlp_exact_match": m["mlp_exact_match"], "explained_share": explained, "control_share": control,
           "ratio": control_ratio(explained, control), "neurons_share": s["neurons_monosemantic_share"],
           "split_share": s.get("features_split_monosemantic_share"),
           "split_control_share": s.get("random_directions_split_monosemantic_share"),
           "split_ratio": control_ratio(s.get("features_split_monosemantic_share"), s.get("random_directions_split_monosemantic_share")),
           "neurons_split_share": s.get("neurons_split_monosemantic_share"),
           "with_ultralow_share": s["features_monosemantic_share_with_ultralow"],
           "neurons_with_ultralow_share": s["neurons_monosemantic_share_with_ultralow"], "ramps_found": len(s["ramps_found"]["features"]),
           "ramps_total": n_ramps(mlp.task),
           "core_found": len(s["core_concepts_found"]["features"]), "train_seconds": train_seconds,
           "label_seconds": label_seconds, "steps": info["steps"], "lr": tc.lr,
           "absorption_full": s["features_absorption_full"], "absorption_partial": s["features_absorption_partial"],
           "control_absorption_full": s["random_directions_absorption_full"],
           "neurons_absorption_full": s["neurons_absorption_full"]}
    row["rule"] = "MET" if meets_rule(row) else "no"
    row["rule_split"] = "-" if row["split_share"] is None else "MET" if meets_rule(row, split=True) else "no"
    return row


def measure_synthetic(arch, overrides, data, seed) -> dict:
    """Known-dictionary recovery of `arch` (its recipe, d_sae 1024) on the default synthetic data."""
    sae_settings, train_settings = overrides
    scfg = SyntheticConfig()
    # all synthetic training rows are trained on (n_eval=1); the synthetic eval split is the held-out set
    tc = TrainConfig(seed=seed, **{"n_eval": 1, **train_settings}).for_architecture(arch)
    cfg = sae_config(arch, d_in=scfg.d_in, d_sae=2 * scfg.n_features, **sae_settings)
    seed_everything(seed)
    t0 = time.perf_counter()
    sae, info = train(cfg, data["train"], tc)
    r = score(sae, data)
    return {"kind": "synthetic", "architecture": arch, "size": cfg.d_sae, "seed": seed,
            "settings": settings_text(overrides), "recovered": r["recovered"], "mmcs": r["mmcs"], "fvu": r["fvu"],
            "l0": r["l0"], "dead_share": r["dead_share"], "train_seconds": time.perf_counter() - t0,
            "steps": info["steps"], "lr": tc.lr}


HEADER = (f"{'arch':<10} {'size':>5} {'seed':>4} {'alive/dead/ultralow':>19} {'FVU':>7} {'L0':>6} {'spliced':>7} "
          f"{'explained':>9} {'control':>7} {'ratio':>6} {'neurons':>7} {'split':>6} {'control':>7} {'ratio':>6} "
          f"{'neurons':>7} {'+ultralow':>9} {'ramps':>5} {'rule':>4} {'rule split':>10} {'absorb':>13} {'control':>7} "
          f"{'train s':>7} {'label s':>7}  settings")


def _x(ratio) -> str:
    return f"{ratio:.1f}x" if ratio is not None else "-"


def row_line(r: dict) -> str:
    adu = f"{r['alive']}/{r['dead']}/{r['ultralow']}"
    return (f"{r['architecture']:<10} {r['size']:>5} {r['seed']:>4} {adu:>19} {r['fvu']:7.4f} {r['l0']:6.2f} "
            f"{r['spliced_exact_match']:7.2%} {r['explained_share']:9.1%} {r['control_share']:7.1%} {_x(r['ratio']):>6} "
            f"{r['neurons_share']:7.1%} {_pct(r['split_share']):>6} {_pct(r['split_control_share']):>7} {_x(r['split_ratio']):>6} "
            f"{_pct(r['neurons_split_share']):>7} {r['with_ultralow_share']:9.1%} {r['ramps_found']:>2}/{r['ramps_total']} "
            f"{r['rule']:>4} {r['rule_split']:>10} {_abs(r.get('absorption_full')):>6}/{_abs(r.get('absorption_partial')):<6} "
            f"{_abs(r.get('control_absorption_full')):>7} {r['train_seconds']:7.1f} {r['label_seconds']:7.1f}  {r['settings']}")


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def _abs(v) -> str:
    """An absorption share (None: no parent represented)."""
    return "-" if v in (None, "") else f"{float(v):.3f}"


def synthetic_line(r: dict) -> str:
    return (f"{r['architecture']:<10} d_sae {r['size']}: recovered {r['recovered']:.3f} (cos >= 0.9), "
            f"MMCS {r['mmcs']:.3f}, FVU {r['fvu']:.4f}, L0 {r['l0']:.1f}, dead {r['dead_share']:.3f}, "
            f"{r['train_seconds']:.1f} s  {r['settings']}")


def summarize_rows(rows: list) -> list[str]:
    """One line per (architecture, size, settings) over its seeds: mean (min-max) of each figure, the
    range of ramps found and how many seeds meet the rule (the README's findings are read from this)."""
    groups = {}
    for r in rows:
        if r["kind"] == "real":
            # rows of another task (L) are another group (older CSVs have no slots: the default task's)
            groups.setdefault((r["architecture"], int(r["size"]), r["settings"], int(r.get("slots") or DEFAULT_TASK.slots)),
                              []).append(r)
    f = lambda rs, k: [float(r[k]) for r in rs if r.get(k) not in ("", None, "inf")]   # older CSVs lack some columns

    def span_of(v, fmt):
        return "-" if not v else f"{format(sum(v) / len(v), fmt)} ({format(min(v), fmt)}-{format(max(v), fmt)})"

    def span(rs, k, fmt, scale=1.0):
        return span_of([x * scale for x in f(rs, k)], fmt)
    # the dead share from the dead count (older CSVs' real rows have no dead_share)
    dead = lambda rs: span_of([100 * float(r["dead"]) / float(r["size"]) for r in rs], ".1f")
    lines = [f"{'arch':<10} {'size':>5} {'seeds':>5} {'alive':>15} {'dead %':>17} {'FVU':>22} {'explained %':>17} {'control %':>17} "
             f"{'x random':>17} {'split %':>17} {'split ctrl %':>17} {'+ultralow %':>17} {'neurons %':>9} {'ramps':>7} "
             f"{'absorption full':>21} {'partial':>21} {'control full':>21} rule  settings (L = the task's slots)"]
    for (arch, size, settings, slots), rs in sorted(groups.items(), key=lambda kv: (ARCH_ORDER.get(kv[0][0], 9), kv[0][1:])):
        ramps = f(rs, "ramps_found")
        total = rs[0].get("ramps_total") or n_ramps(DEFAULT_TASK)      # older CSVs: the default task's
        lines.append(
            f"{arch:<10} {size:>5} {len(rs):>5} {span(rs, 'alive', '.0f'):>15} {dead(rs):>17} "
            f"{span(rs, 'fvu', '.4f'):>22} "
            f"{span(rs, 'explained_share', '.1f', 100):>17} {span(rs, 'control_share', '.1f', 100):>17} "
            f"{span(rs, 'ratio', '.1f'):>17} {span(rs, 'split_share', '.1f', 100):>17} {span(rs, 'split_control_share', '.1f', 100):>17} "
            f"{span(rs, 'with_ultralow_share', '.1f', 100):>17} {sum(f(rs, 'neurons_share')) / len(rs) * 100:>9.1f} "
            f"{f'{min(ramps):.0f}-{max(ramps):.0f}/{total}':>7} {span(rs, 'absorption_full', '.3f'):>21} "
            f"{span(rs, 'absorption_partial', '.3f'):>21} {span(rs, 'control_absorption_full', '.3f'):>21} "
            f"{sum(r['rule'] == 'MET' for r in rs)}/{len(rs)}   {settings} L={slots}")
    return lines


ARCH_ORDER = {a: i for i, a in enumerate(("topk", "ortsae", "balmatryoshka", "batchtopk", "matryoshka", "relu", "jumprelu"))}


def int_list(lowest: int):
    """argparse type: comma-separated integers >= lowest."""
    def parse(text: str) -> list:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < lowest:
            raise argparse.ArgumentTypeError(f"expected integers >= {lowest}, got {text!r}")
        return values
    return parse


def measure_grid(args, dictionaries, seeds, overrides, csv_path: Path) -> None:
    """Every (architecture, size) x seed on the run's activations, one printed and appended row each."""
    paths = RunPaths(Path(args.run_dir))
    for p in (paths.activations, paths.mlp):
        if not p.exists():
            raise PipelineError(f"{p}: missing; --run-dir must be a finished run (MLP + harvested activations)")
    data, mlp = load_activations(paths.activations), load_mlp(paths.mlp)
    print(f"{len(data['activations']):,} activations from {paths.activations}; labels on {args.n_inputs:,} fresh "
          f"inputs per set; rule: >= {RULE['d_sae']} latents, >= 50% alive, >= 50% of alive explained at >= 0.8, "
          f">= {RULE['control_ratio']:.0f}x the random-direction control; rows -> {csv_path}", flush=True)
    print(HEADER, flush=True)
    neuron_cache = {}
    for arch, size in dictionaries:
        for seed in seeds:
            row = measure(arch, size, seed, overrides[arch], data, mlp, args.n_inputs, not args.no_split, neuron_cache)
            print(row_line(row), flush=True)
            write_row(csv_path, row)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", help="a finished run (MLP + harvested activations); only read")
    p.add_argument("--summarize", nargs="+", metavar="CSV", help="print the per-dictionary summary over seeds of "
                   "rows already measured (the --csv files of earlier runs) and stop")
    p.add_argument("--architectures", default=",".join(ARCHITECTURES),
                   help=f"comma-separated (default: {','.join(ARCHITECTURES)})")
    p.add_argument("--sizes", type=int_list(1), default=[64, 256, 2048], help="d_sae values (default: 64,256,2048)")
    p.add_argument("--dictionaries", default=None, metavar="ARCH:SIZE,...",
                   help="these (architecture, d_sae) pairs instead of --architectures x --sizes, e.g. topk:256,relu:2048")
    p.add_argument("--seeds", type=int_list(0), default=[0], help="comma-separated seeds (default: 0)")
    p.add_argument("--n-inputs", type=int, default=16384, help="fresh inputs per labelling set (default: 16384)")
    p.add_argument("--set", action="append", default=[], metavar="ARCH:FIELD=VALUE",
                   help="override an SAE or training setting of one architecture (repeatable), e.g. topk:lr=0.001")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--csv", default="benchmarks/results/dictionaries.csv", help="rows are appended here")
    p.add_argument("--no-split", action="store_true", help="label without the split-aware grammar (its columns "
                   "left empty; most of the labelling time at L = 8)")
    p.add_argument("--no-synthetic", action="store_true", help="skip the known-dictionary recovery")
    p.add_argument("--synthetic-only", action="store_true", help="only the known-dictionary recovery (no --run-dir)")
    return p.parse_args(argv)


def main(args) -> None:
    if args.summarize:
        rows = []
        for path in args.summarize:
            with open(path, newline="") as fh:
                rows += list(csv.DictReader(fh))
        print("\n".join(summarize_rows(rows)))
        return
    if not args.run_dir and not args.synthetic_only:
        raise PipelineError("--run-dir: required (a finished run), unless --summarize or --synthetic-only")
    if args.dictionaries:
        try:
            dictionaries = [(a.strip(), int(n)) for a, n in (d.split(":") for d in args.dictionaries.split(",") if d.strip())]
        except ValueError:
            raise PipelineError(f"--dictionaries {args.dictionaries!r}: expected ARCH:SIZE pairs, e.g. topk:256,relu:2048") from None
        if not dictionaries or min(n for _, n in dictionaries) < 1:
            raise PipelineError(f"--dictionaries {args.dictionaries!r}: expected ARCH:SIZE pairs with sizes >= 1")
        archs = list(dict.fromkeys(a for a, _ in dictionaries))
    else:
        archs = [a.strip() for a in args.architectures.split(",") if a.strip()]
        dictionaries = [(a, n) for a in archs for n in args.sizes]
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        flag = f"--dictionaries {args.dictionaries!r}" if args.dictionaries else f"--architectures {args.architectures!r}"
        raise PipelineError(f"{flag}: {', '.join(unknown)} unknown; "
                            f"expected some of {', '.join(ARCHITECTURES)}")
    seeds = args.seeds
    overrides = parse_overrides(args.set, archs)
    torch.set_num_threads(args.threads)
    print(machine_line(), flush=True)
    csv_path = Path(args.csv)
    if not args.synthetic_only:
        measure_grid(args, dictionaries, seeds, overrides, csv_path)
    if not args.no_synthetic:
        print("known-dictionary recovery (benchmarks/synthetic.py default: d_in 128, 512 true features):", flush=True)
        synth = make_synthetic(SyntheticConfig())
        for arch in archs:
            row = measure_synthetic(arch, overrides[arch], synth, seeds[0])
            print(synthetic_line(row), flush=True)
            write_row(csv_path, row)


if __name__ == "__main__":
    run_main(main, parse_args())
