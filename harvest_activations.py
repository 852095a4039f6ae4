"""Stage 3: record the MLP's 512-d hidden layer for the SAE to learn from.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2) and, by default, <run-dir>/dataset/mlp_train.xlsx
Writes <run-dir>/mlp_activations.pt: {"activations": float32 [N, 512], "inputs": int64 [N, 10],
       "targets": int64 [N], "source": str, "hook": str}, and the "harvest" section of metrics.json.

    python harvest_activations.py                    # the 8000 training rows, as the reference does
    python harvest_activations.py --n-samples 1000000   # N fresh inputs from the task instead
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import time

import torch
from tqdm import tqdm

from common.cli import add_common_args, pick_device, run_main, run_paths
from common.io import PipelineError, atomic_torch_save, require_inputs, update_metrics
from dataset.data_generator import N_INPUTS, sample_inputs, stream_seed, target
from dataset.data_loader import load_excel
from mlp.mlp_definition import HIDDEN_HOOK, load_mlp

MAX_SAMPLES = 4_000_000  # 4e6 x 512 float32 = 8 GiB: the most this 24 GiB machine holds with room to train


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--n-samples", type=int, default=None,
                   help="harvest N fresh inputs sampled from the task (default: the training split's rows)")
    p.add_argument("--data", default=None, help="harvest the rows of this Excel file instead of the training split")
    p.add_argument("--batch-size", type=int, default=65536, help="inputs per forward pass (default: 65536)")
    return p.parse_args(argv)


@torch.no_grad()
def harvest(model, x: torch.Tensor, batch_size: int = 65536, progress: bool = False) -> torch.Tensor:
    """Hidden activations of `x`, written batch by batch into one preallocated [N, d_hidden] tensor,
    so peak memory is the result plus one batch."""
    device = next(model.parameters()).device
    out = torch.empty(len(x), model.cfg.d_hidden, dtype=torch.float32)   # [N, d_hidden]
    for i in tqdm(range(0, len(x), batch_size), desc="harvest", disable=not progress):
        out[i:i + batch_size] = model.hidden(x[i:i + batch_size].to(device)).cpu()
    return out


def firing_counts(acts: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
    """How many rows each unit is active (> 0) on, [d]; chunked so no [N, d] temporary is made."""
    return sum((acts[i:i + batch_size] > 0).sum(0) for i in range(0, len(acts), batch_size))


def main(args) -> dict:
    paths = run_paths(args)
    require_inputs(paths, "mlp")
    model = load_mlp(paths.mlp, device=pick_device(args.device))
    if args.n_samples is not None:
        if not 1 <= args.n_samples <= MAX_SAMPLES:
            raise PipelineError(f"--n-samples {args.n_samples}: expected 1..{MAX_SAMPLES:,} "
                                f"({MAX_SAMPLES:,} x {model.cfg.d_hidden} float32 is the most this machine's memory holds)")
        x = sample_inputs(args.n_samples, seed=stream_seed(args.seed, "harvest"))
        source = f"fresh:{args.n_samples}:seed={args.seed}"
    else:
        data = args.data or paths.train_xlsx
        if not args.data:
            require_inputs(paths, "train_xlsx")
        x, _ = load_excel(data)
        source = f"file:{data}"
    t0 = time.time()
    acts = harvest(model, x, args.batch_size, progress=not args.quiet)
    counts = firing_counts(acts)
    seconds = time.time() - t0
    atomic_torch_save({"activations": acts, "inputs": x, "targets": target(x),
                       "source": source, "hook": HIDDEN_HOOK}, paths.activations)
    stats = {"n": len(x), "d_hidden": acts.shape[1], "source": source, "seconds": round(seconds, 2),
             "active_share": float(counts.sum()) / acts.numel(),
             "dead_neurons": int((counts == 0).sum())}
    update_metrics(paths.metrics, "harvest", stats)
    if not args.quiet:
        print(f"harvested {tuple(acts.shape)} from {source} in {seconds:.1f} s; "
              f"{stats['active_share']:.1%} of entries active, {stats['dead_neurons']} dead neurons")
        print(f"wrote {paths.activations}")
    return stats


def load_activations(path, remedy: str = "re-run harvest_activations.py") -> dict:
    """Load and check an activations file: a dict with activations [N, d], inputs [N, 10], targets [N]."""
    from common.io import require_keys, safe_torch_load
    data = safe_torch_load(path, "activations file", remedy)
    require_keys(data, ["activations", "inputs", "targets"], path, "activations file", remedy)
    a, x, y = data["activations"], data["inputs"], data["targets"]
    if not (torch.is_tensor(a) and a.dim() == 2 and torch.is_tensor(x) and x.shape == (len(a), N_INPUTS)):
        raise PipelineError(f"{path}: activations must be [N, d] with inputs [N, {N_INPUTS}]; {remedy}")
    # (robustness) a hand-edited or foreign file must not reach training as a traceback
    if not (a.is_floating_point() and torch.is_tensor(y) and y.shape == (len(a),)):
        raise PipelineError(f"{path}: activations must be floats [N, d] with targets [N]; {remedy}")
    if not all(bool(torch.isfinite(a[i:i + 65536]).all()) for i in range(0, len(a), 65536)):
        raise PipelineError(f"{path}: activations hold NaN or infinite values; {remedy}")
    return data


if __name__ == "__main__":
    run_main(main, parse_args())
