"""Join an SAE trained elsewhere (SAELens, dictionary_learning) to a run, as a named SAE of it.

Reads  FOLDER (a SAELens folder: cfg.json + sae_weights.safetensors; or a dictionary_learning one:
       config.json + ae.pt), <run-dir>/mlp_activations.pt and <run-dir>/mlp/perfect_mlp.pth
Writes <run-dir>/sae/NAME/sae_model.pth (weights + config + metrics, its origin among them), the same
       SAE in SAELens's layout in <run-dir>/sae/NAME/saelens/, and the "sae:NAME" section of
       <run-dir>/metrics.json, exactly as train_sae.py --name NAME does for an SAE it trains.

The SAE is evaluated on the run's held-out activations (the file's last --n-eval rows, as
train_sae.py holds them out) with the same code as a trained one: FVU, L0, dead, density, spliced
exact-match and MSE. Its d_in must be the run's hidden layer's, and the hook its folder names (if any)
the one harvested (hook_hidden; --any-hook accepts another name). Then label_features.py --sae NAME,
feature_probe.py, feature_reports.py and run_summary.py treat it like any other SAE of the run.

    python import_sae.py --run-dir runs/default --from /path/to/saelens_folder --name saelens_topk
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
from pathlib import Path

from common.cli import ArgumentParser, add_common_args, pick_device, run_main, run_paths
from common.io import PipelineError, require_finite
from common.paths import DEFAULT_SAE
from common import validate
from mlp.activations import load_training_inputs
from mlp.mlp_definition import HIDDEN_HOOK
from sae.foreign import read_foreign
from sae.metrics import evaluate_sae, metrics_table
from sae.sae_definition import write_saes
from sae.training import TrainConfig, split_activations


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(p)
    p.add_argument("--from", dest="source", required=True, metavar="FOLDER",
                   help="a SAELens folder (cfg.json + sae_weights.safetensors) or a dictionary_learning one (config.json + ae.pt)")
    p.add_argument("--name", required=True, help="the name the SAE takes in the run (sae/NAME/, --sae NAME in later stages)")
    p.add_argument("--n-eval", type=validate.int_range(1, 1_000_000), default=TrainConfig().n_eval,
                   help=f"held-out activations, the file's last rows, as train_sae.py holds them out (default: {TrainConfig().n_eval})")
    p.add_argument("--any-hook", action="store_true",
                   help=f"accept a folder whose hook name is not {HIDDEN_HOOK} (you vouch it was trained on this layer)")
    return p.parse_args(argv)


def check_fits_run(sae, origin: dict, d_hidden: int, folder: Path, any_hook: bool) -> None:
    """The SAE reads the run's harvested layer: same width, and the hook its folder names is that layer's."""
    if sae.cfg.d_in != d_hidden:
        raise PipelineError(f"{folder}: d_in = {sae.cfg.d_in}, but the run's hidden layer ({HIDDEN_HOOK}) is {d_hidden}-d; "
                            "train the SAE on this run's activations")
    hook = origin.get("hook")
    if hook not in (None, "", HIDDEN_HOOK) and not any_hook:
        raise PipelineError(f"{folder}: trained on hook {validate.shown(hook)}, not the run's {HIDDEN_HOOK!r}; "
                            f"pass --any-hook if it was trained on this run's activations anyway")


def main(args) -> dict:
    run = run_paths(args)
    if args.name == DEFAULT_SAE:
        raise PipelineError(f"--name {DEFAULT_SAE}: the run's default SAE is train_sae.py's; give the imported one a name of its own")
    try:
        paths = run.for_sae(args.name)
    except ValueError as e:
        raise PipelineError(f"--name: {e}") from None
    folder = Path(args.source)
    sae, origin = read_foreign(folder)                                # every check of the folder, before the run is read
    data, mlp = load_training_inputs(run)
    check_fits_run(sae, origin, mlp.cfg.d_hidden, folder, args.any_hook)
    require_finite(sae.state_dict(), folder, "converted SAE", "fix the folder or save it again from its library")
    device = pick_device(args.device)
    acts = data["activations"].float()                                # [N, d_in]
    _, rows = split_activations(acts, args.n_eval)
    sae, mlp = sae.to(device), mlp.to(device)
    m = evaluate_sae(sae, mlp, acts[rows], data["inputs"][rows], data["targets"][rows].float())
    m = {**m, "n_eval": m["n"], "config": sae.cfg.to_dict(), "source": data.get("source", ""), "origin": origin}
    sae = sae.cpu()
    # its .pth, SAELens folder and metrics section as one group, made from the run's MLP (its layer)
    write_saes(run, [(paths, sae, m, [], {"mlp": data["made_from"]["mlp"]})])
    if not args.quiet:
        print(f"SAE {origin['library']} {origin['architecture']} (as {sae.cfg.architecture}) d_sae={sae.cfg.d_sae} "
              f"from {folder}, on {m['source'] or 'activations'} (held-out {m['n_eval']:,}):")
        print(metrics_table(m))
        print(f"wrote {paths.sae}; label it with label_features.py --run-dir {run.root} --sae {paths.sae_name}")
    return m


if __name__ == "__main__":
    run_main(main, parse_args())
