"""Stage 4: train a sparse autoencoder (SAE) on the MLP's harvested hidden layer.

Reads  <run-dir>/mlp_activations.pt (stage 3: harvest_activations.py) and <run-dir>/mlp/perfect_mlp.pth
Writes <run-dir>/sae/sae_model.pth (weights + config + metrics + train_config), the same SAE in
       SAELens's layout in <run-dir>/sae/saelens/ (cfg.json, sae_weights.safetensors,
       sparsity.safetensors), and the "sae" section of <run-dir>/metrics.json; while training, <run-dir>/sae/checkpoint.pth (removed when done).
       With --name NAME: the same for a named SAE, in <run-dir>/sae/NAME/ and section "sae:NAME".
       With --sweep S=v1,v2: one named SAE per value (<name or "sweep">_S_<v>), sae/sweep/sweep.csv and
       frontier.html, and the "sae_sweep" section of metrics.json.

The last --n-eval activations are held out: every metric is measured on them.

    python train_sae.py                                   # the default run (TopK, 256 features, k=16)
    python train_sae.py --architecture relu --d-sae 2048  # the paper's L1 SAE with 2048 features
    python train_sae.py --resume                          # continue an interrupted run
    python train_sae.py --sweep l1_coeff=0.005,0.01,0.02  # one SAE per value + table + frontier chart
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import csv
import io
import re
import time
from dataclasses import asdict, fields, replace

from tqdm import tqdm

from common import distributed
from common import validate
from common.cli import ArgumentParser, add_common_args, pick_device, run_main, run_paths, seed_everything
from common.io import PipelineError
from common.paths import RunPaths
from mlp.activations import load_training_inputs
from sae.base import ARCHITECTURES, DEFAULT_ARCHITECTURE, MAX_D_SAE
from sae.metrics import evaluate_sae, metrics_table
from sae.registry import config_fields, sae_config
from sae.sae_definition import write_saes
from sae.sources import StreamSource
from sae.training import RECIPE_FIELDS, TrainConfig, split_activations, train
from viz.frontier import frontier_html

# Every default lives in the configs: an architecture's settings in its module (sae/relu.py, ...),
# the training settings in sae.training.TrainConfig, or for the ones measured per architecture in
# the architecture's RECIPE. This script maps flags onto them and nothing else; a flag left unset
# is None, "the config's default".
TRAIN_HELP = {
    "lr": "Adam learning rate", "batch_size": "activations per step, 1..65,536",
    "steps": "optimizer steps, 0..10,000,000 (fixes the compute whatever the data size); 0 to train --epochs instead",
    "epochs": "passes over the training activations (at most 10,000), used when --steps is 0",
    "warmup_steps": "linear lr warm-up", "sparsity_warmup_steps": "linear warm-up of l1_coeff / l0_coeff",
    "n_eval": "held-out activations (the file's last rows, at most a fifth)",
    "dead_window": "training inputs without firing after which a feature counts as dead (for resampling and AuxK)",
    "resample_at": "fractions of training at which dead features are resampled, comma-separated, or 'none'",
    "dec_init": "decoder rows at start: random unit vectors, or directions of training inputs (random, data)",
    "checkpoint_every": "steps between resumable checkpoints, 0 for none",
}


def _sae_settings() -> dict:
    """{setting: (type, help, {architecture: default})} over every registered architecture."""
    out = {}
    for arch, cls in ARCHITECTURES.items():
        for f in fields(cls.config_class):
            if "help" in f.metadata:
                kind, helptext, defaults = out.setdefault(f.name, (f.type, f.metadata["help"], {}))
                defaults[arch] = f.default
    return out


def _default_text(defaults: dict) -> str:
    values = set(defaults.values())
    if len(values) == 1 and len(defaults) == len(ARCHITECTURES):
        return f"{next(iter(values))}"
    return ", ".join(f"{a} {v}" for a, v in defaults.items())


def _recipe_text(name: str) -> str:
    fmt = lambda v: "none" if v == () else ",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}" if isinstance(v, float) else str(v)
    return _default_text({a: fmt(cls.RECIPE[name]) for a, cls in ARCHITECTURES.items()})


def _type(kind):
    return {"int": int, "float": float, "tuple": tuple}.get(kind, kind) if isinstance(kind, str) else kind


def int_list(text: str) -> tuple:
    """'64,256,1024' -> (64, 256, 1024); '' -> ()."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {validate.shown(text)}") from None


# what each flag accepts (argparse `type=`, so a bad value is one line and exit 2 before any work);
# 0 is allowed where it means something: --steps 0 trains --epochs, 0 warm-up steps or checkpoints mean none
# The caps bound memory and time, far past any useful run: a batch of 65,536 rows (the default is 512),
# 10 million steps (the default 1,500) or 10,000 epochs; --epochs 1e300 or --batch-size 1e12 ran forever or
# failed in the allocator. Batch x d_sae is capped too (configs_from_args: MAX_BATCH_FEATURES).
MAX_BATCH, MAX_STEPS, MAX_EPOCHS = 65_536, 10_000_000, 10_000
MAX_BATCH_FEATURES = 2**28   # one [batch, d_sae] float temporary of 1 GiB
FLAG_TYPES = {int: validate.positive_int, float: validate.finite_nonnegative_float, tuple: int_list,
              "lr": validate.finite_positive_float, "epochs": validate.float_range(0.0, MAX_EPOCHS, lo_open=True),
              "batch_size": validate.int_range(1, MAX_BATCH), "steps": validate.int_range(0, MAX_STEPS), "warmup_steps": validate.nonnegative_int,
              "sparsity_warmup_steps": validate.nonnegative_int, "checkpoint_every": validate.nonnegative_int,
              "n_eval": validate.int_range(1, 1_000_000), "d_sae": validate.int_range(1, MAX_D_SAE), "threshold_init": validate.finite_positive_float,
              "bandwidth": validate.finite_positive_float, "threshold_momentum": validate.float_range(0.0, 1.0, hi_open=True),
              "resample_at": str, "dec_init": str}   # parsed by configs_from_args


def flag_type(name: str):
    """The argparse `type=` of the flag for setting `name` (an SAE setting or a training setting): by
    name where FLAG_TYPES says, else by the setting's type (its default's, or the recipes')."""
    if name in FLAG_TYPES:
        return FLAG_TYPES[name]
    settings = _sae_settings()
    if name in settings:
        kind = _type(settings[name][0])
    elif name in RECIPE_FIELDS:
        kind = type(ARCHITECTURES[DEFAULT_ARCHITECTURE].RECIPE[name])
    else:
        kind = type(getattr(TrainConfig(), name))
    return FLAG_TYPES.get(kind, kind)


def sweepable() -> list:
    """Numeric settings that have a flag: what --sweep can vary."""
    numeric = [n for n, (kind, _, _) in _sae_settings().items() if _type(kind) in (int, float)]
    return sorted(set(numeric) | {f.name for f in fields(TrainConfig) if f.name in TRAIN_HELP
                                  and f.name not in ("resample_at", "dec_init", "checkpoint_every")})


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    a = p.add_argument_group("architecture (each setting belongs to the architectures named in its default)")
    a.add_argument("--architecture", choices=list(ARCHITECTURES), default=DEFAULT_ARCHITECTURE,
                   help=f"one of {', '.join(ARCHITECTURES)}: relu is the paper's L1 SAE; see README (default: {DEFAULT_ARCHITECTURE})")
    for name, (kind, helptext, defaults) in _sae_settings().items():
        a.add_argument(f"--{name.replace('_', '-')}", type=flag_type(name), default=None,
                       help=f"{helptext} (default: {_default_text(defaults)})")
    t = p.add_argument_group("training (defaults: sae.training.TrainConfig and each architecture's RECIPE)")
    defaults = TrainConfig()
    for name, helptext in TRAIN_HELP.items():
        default = _recipe_text(name) if name in RECIPE_FIELDS else getattr(defaults, name)
        t.add_argument(f"--{name.replace('_', '-')}", type=flag_type(name), default=None,
                       help=f"{helptext} (default: {default})")
    t.add_argument("--resume", action="store_true", help="continue from <run-dir>/sae/checkpoint.pth (same flags)")
    t.add_argument("--stream", action="store_true",
                   help="train on fresh task inputs run through the MLP batch by batch (no activations file, memory "
                        "independent of the sample count); held out: --n-eval inputs of a stream of their own")
    t.add_argument("--n-samples", type=validate.positive_int, default=None,
                   help="with --stream: training activations in all (sets --steps to n_samples / batch size)")
    p.add_argument("--name", default=None,
                   help="train a named SAE into <run-dir>/sae/NAME/ (its own labels and reports follow with --sae NAME "
                        "in the later stages), leaving every other SAE of the run alone (default: the run's default SAE)")
    p.add_argument("--sweep", metavar="NAME=v1,v2,...",
                   help=f"train one SAE per value of NAME into <run-dir>/sae/sweep/ (NAME one of: {', '.join(sweepable())})")
    return p.parse_args(argv)


def _parse_resample_at(text: str) -> tuple:
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise PipelineError(f"--resample-at {text!r}: expected fractions like 0.2,0.4,0.6 or 'none'") from None
    if not all(0 < v < 1 for v in values):
        raise PipelineError(f"--resample-at {text!r}: every fraction must lie strictly between 0 and 1")
    return values


def configs_from_args(args, d_in: int) -> tuple:
    """(SAE config, TrainConfig with the architecture's recipe filled in) from the flags; a flag of
    another architecture or a bad value -> PipelineError."""
    arch = args.architecture
    own = config_fields(arch)
    given = {n: getattr(args, n) for n in _sae_settings() if getattr(args, n, None) is not None}
    foreign = sorted(set(given) - set(own))
    if foreign:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in foreign)
        mine = ", ".join(f"--{n.replace('_', '-')}" for n in own if n not in ("d_in",))
        raise PipelineError(f"{flags}: not a setting of the {arch} SAE (its settings: {mine})")
    try:
        sae_cfg = sae_config(arch, d_in=d_in, **given)
    except ValueError as e:
        raise PipelineError(f"SAE settings: {e}") from None
    train = {n: getattr(args, n) for n in TRAIN_HELP if getattr(args, n, None) is not None}
    if "resample_at" in train:
        train["resample_at"] = _parse_resample_at(train["resample_at"])
    tc = TrainConfig(**train, seed=args.seed).for_architecture(arch)
    n_samples = getattr(args, "n_samples", None)
    if n_samples is not None:
        if not getattr(args, "stream", False):
            raise PipelineError(f"--n-samples {n_samples}: only with --stream (a harvested file has the samples it has)")
        if n_samples < tc.batch_size:
            raise PipelineError(f"--n-samples {n_samples}: expected at least one batch ({tc.batch_size})")
        tc = replace(tc, steps=n_samples // tc.batch_size)
    if getattr(args, "stream", False) and tc.steps == 0:
        raise PipelineError("--steps 0 (train by epochs) needs a harvested file; with --stream give --steps or --n-samples")
    for name in ("batch_size",):
        if getattr(tc, name) < 1:
            raise PipelineError(f"--{name.replace('_', '-')} {getattr(tc, name)}: expected a positive integer")
    if tc.batch_size * sae_cfg.d_sae > MAX_BATCH_FEATURES:
        raise PipelineError(f"--batch-size {tc.batch_size:,} with --d-sae {sae_cfg.d_sae:,}: at most "
                            f"{MAX_BATCH_FEATURES:,} features per batch ({MAX_BATCH_FEATURES // sae_cfg.d_sae:,} rows at "
                            f"this size); lower one of them")
    if tc.steps < 0:
        raise PipelineError(f"--steps {tc.steps}: expected >= 0 (0: train --epochs instead)")
    for name in ("lr", "epochs"):
        if not getattr(tc, name) > 0:
            raise PipelineError(f"--{name.replace('_', '-')} {getattr(tc, name)}: expected a positive number")
    for name in ("l1_coeff", "l0_coeff", "aux_coeff"):
        if getattr(sae_cfg, name, 0) < 0:
            raise PipelineError(f"--{name.replace('_', '-')} {getattr(sae_cfg, name)}: expected >= 0")
    if tc.dec_init not in ("random", "data"):
        raise PipelineError(f"--dec-init {tc.dec_init!r}: expected random or data")
    return sae_cfg, tc


def load_inputs(args):
    """(activations dict, MLP) of the run (`mlp.activations.load_training_inputs`)."""
    return load_training_inputs(run_paths(args), args.stream, args.seed)


def train_and_evaluate(args, data, mlp, device, checkpoint_path=None, desc="sae") -> tuple:
    """Train one SAE with the settings in `args`; (sae, summary dict with the held-out metrics,
    density list included)."""
    d_in = mlp.cfg.d_hidden if data.get("stream") else data["activations"].shape[1]
    sae_cfg, tc = configs_from_args(args, d_in)
    if data.get("stream"):
        acts = StreamSource(mlp, args.seed, tc.n_eval, device=device)
        h_eval, x_eval, y_eval = acts.held_out()
    else:
        acts = data["activations"].float()                            # [N, d_in]
        _, eval_rows = split_activations(acts, tc.n_eval)
        h_eval, x_eval, y_eval = acts[eval_rows], data["inputs"][eval_rows], data["targets"][eval_rows]
    seed_everything(args.seed)
    bar = tqdm(total=1, desc=desc, disable=args.quiet, leave=False)

    def on_step(step, total, s):
        bar.total = total
        bar.update(step - bar.n)
        if step % 10 == 0 or step == total:
            bar.set_postfix(loss=f"{s['loss']:.4f}", fvu=f"{s['mse']:.4f}", l0=f"{s['l0']:.1f}", refresh=False)

    t0 = time.perf_counter()
    sae, info = train(sae_cfg, acts, tc, device=device, checkpoint_path=checkpoint_path,
                      resume=getattr(args, "resume", False), on_step=on_step, made_from=data["made_from"])
    bar.close()
    train_seconds = time.perf_counter() - t0
    mlp = mlp.to(device)
    m = evaluate_sae(sae, mlp, h_eval, x_eval, y_eval.float())
    summary = {**{k: v for k, v in m.items()}, "train_seconds": round(train_seconds, 2),
               "loop_seconds": round(info["seconds"], 2), "steps": info["steps"], "resampled": info["resampled"],
               "n_train": info["n_train"], "n_eval": info["n_eval"], "config": sae_cfg.to_dict(),
               "train_config": asdict(tc), "source": data.get("source", "")}
    if info["processes"] > 1:
        summary["processes"] = info["processes"]
    return sae, summary, info["history"]


def parse_sweep(text: str) -> tuple:
    if "=" not in text:
        raise PipelineError(f"--sweep {text!r}: expected NAME=v1,v2,... (e.g. l1_coeff=0.005,0.01,0.02)")
    name, values = text.split("=", 1)
    name = name.strip().replace("-", "_")
    if name not in sweepable():
        raise PipelineError(f"--sweep {text!r}: cannot sweep {name!r}; expected one of {', '.join(sweepable())}")
    parse = flag_type(name)
    try:
        parsed = [parse(v.strip()) for v in values.split(",") if v.strip()]
    except argparse.ArgumentTypeError as e:
        raise PipelineError(f"--sweep {validate.shown(text)}: {name}: {e}") from None
    if not parsed:
        raise PipelineError(f"--sweep {text!r}: no values given")
    return name, [v.strip() for v in values.split(",") if v.strip()], parsed


# how a value's sign characters are spelled in a member name, so that 1e-3 and 1e+3 stay two names
SIGN_CHARACTERS = str.maketrans({"-": "m", "+": "p"})


def sweep_member(args, name: str, text: str) -> str:
    """The SAE name of one sweep value: <--name or "sweep">_<setting>_<value> (a plain identifier; a
    value's - and + become m and p: l1_coeff=1e-3 -> sweep_l1_coeff_1em3, other characters _)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{args.name or 'sweep'}_{name}_{text.translate(SIGN_CHARACTERS)}")


def checked_new_name(paths: RunPaths, name: str, flag: str) -> RunPaths:
    """The run's paths for the SAE `name` a stage is about to write: a name that is not a plain identifier
    of at most 64 characters, or that differs only in case from an SAE of the run, -> PipelineError."""
    try:
        member = paths.for_sae(name)
    except ValueError as e:
        raise PipelineError(f"{flag}: {e}") from None
    clash = paths.case_clash(name)
    if clash:
        raise PipelineError(f"{flag}: SAE name {name!r} differs only in case from the run's SAE {clash!r} "
                            f"(one folder on a case-insensitive disk); use {clash!r} or another name")
    return member


def sweep_members(args, paths, name: str, texts: list, values: list) -> list:
    """The run's paths of each sweep member, all checked before any training: a derived name that is too
    long or clashes with an SAE of the run, two values that are equal or would share one name -> PipelineError."""
    members, seen = [], {}
    for text, value in zip(texts, values):
        flag = f"--sweep {validate.shown(args.sweep, 40)}: value {validate.shown(text, 40)}"
        if value in values[:len(members)]:
            raise PipelineError(f"{flag}: {name} = {value!r} is given twice; give each value once")
        member = checked_new_name(paths, sweep_member(args, name, text), flag)
        if member.sae_name.lower() in seen:
            raise PipelineError(f"{flag}: its SAE name {member.sae_name!r} is also the name of value "
                                f"{seen[member.sae_name.lower()]!r}; write the values differently")
        seen[member.sae_name.lower()] = text
        members.append(member)
    return members


def run_sweep(args, data, mlp, device, writer: bool = True) -> dict:
    """One named SAE per value (sae/<member>/, metrics section sae:<member>); every process trains
    under torchrun, only the writer saves and prints. Every value is checked before any training."""
    paths = run_paths(args)
    name, texts, values = parse_sweep(args.sweep)
    d_in = mlp.cfg.d_hidden
    members = []
    for text, value, member in zip(texts, values, sweep_members(args, paths, name, texts, values)):
        one = argparse.Namespace(**{**vars(args), name: value, "resume": False})
        try:
            configs_from_args(one, d_in)
        except PipelineError as e:
            raise PipelineError(f"--sweep {name}={text}: {e}") from None
        members.append((text, value, one, member))
    trained = []
    for text, value, one, member in members:   # every member trained before anything is written
        sae, m, history = train_and_evaluate(one, data, mlp, device, desc=f"{name}={text}")
        trained.append((member, sae, m, history))
    rows = [{name: value, **{k: m[k] for k in ("fvu", "l0", "dead_share", "dense_share", "spliced_exact_match",
                                               "spliced_mse", "mlp_exact_match", "resampled", "train_seconds")},
             "architecture": args.architecture, "d_sae": m["config"]["d_sae"], "sae": member.sae_name,
             "path": str(member.sae)} for (_, value, _, _), (member, sae, m, _) in zip(members, trained)]
    if not writer:
        return {"name": name, "rows": rows}
    buf = io.StringIO()
    table = csv.DictWriter(buf, fieldnames=list(rows[0]))
    table.writeheader()
    table.writerows(rows)
    title = f"SAE sweep over {name}: {args.architecture}" + (f", d_sae={args.d_sae}" if args.d_sae else "")
    texts = {paths.sweep_csv: buf.getvalue(), paths.sweep_html: frontier_html(rows, name, title)}
    write_saes(paths, [(member, sae, m, history, data["made_from"]) for member, sae, m, history in trained],
               texts, {"sae_sweep": {"name": name, "rows": rows}})
    if not args.quiet:
        cols = [name, "l0", "fvu", "dead_share", "spliced_exact_match", "train_seconds"]
        print("  ".join(f"{c:>20}" for c in cols))
        for r in rows:
            print("  ".join(f"{r[c]:>20.4g}" if isinstance(r[c], float) else f"{r[c]!s:>20}" for c in cols))
        print(f"wrote {len(rows)} SAEs ({', '.join(r['sae'] for r in rows)}) under {paths.root / 'sae'}; "
              f"{paths.sweep_csv}, {paths.sweep_html}; label them with label_features.py --sae all")
    return {"name": name, "rows": rows}


def sae_paths(args):
    """The run's paths for the SAE this invocation trains (--name, or the default SAE)."""
    paths = run_paths(args)
    return paths.for_sae(None) if args.name in (None, "default") else checked_new_name(paths, args.name, "--name")


def main(args) -> dict:
    paths = sae_paths(args)
    rank, n_ranks, device = distributed.start(pick_device(args.device))
    try:
        return _main(args, paths, device, rank)
    except RuntimeError as e:
        if distributed.is_peer_failure(e):
            raise PipelineError(f"process {rank} of {n_ranks}: another process of the torchrun job stopped "
                                f"({' '.join(str(e).split())[:120]}); nothing was written; re-run with --resume") from None
        raise
    finally:
        distributed.stop()


def _main(args, paths, device, rank: int) -> dict:
    writer = rank == 0                                                # under torchrun only rank 0 writes or prints
    if not writer:
        args = argparse.Namespace(**{**vars(args), "quiet": True})
    data, mlp = load_inputs(args)
    if args.sweep:
        return run_sweep(args, data, mlp, device, writer)
    sae, m, history = train_and_evaluate(args, data, mlp, device, checkpoint_path=paths.sae_checkpoint)
    if not writer:
        return m
    write_saes(paths, [(paths, sae, m, history, data["made_from"])])
    paths.sae_checkpoint.unlink(missing_ok=True)
    if not args.quiet:
        print(f"SAE {m['config']['architecture']} d_sae={m['config']['d_sae']} on {m['source'] or 'activations'} "
              f"(held-out {m['n_eval']:,}):")
        print(metrics_table(m))
        print(f"wrote {paths.sae}")
    return m


if __name__ == "__main__":
    run_main(main, parse_args())
