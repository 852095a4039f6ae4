"""Stage 3: record the MLP's 512-d hidden layer for the SAE to learn from.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2) and, by default, <run-dir>/dataset/mlp_train.xlsx
Writes <run-dir>/mlp_activations.pt: {"activations": float32 [N, 512], "inputs": int64 [N, 10],
       "targets": int64 [N], "source": str, "hook": str, "provenance": the MLP's digest (and the data
       file's)}, and the "harvest" section of metrics.json.

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

from common.cli import ArgumentParser, add_common_args, pick_device, run_main, run_paths
from common import provenance
from common.io import PipelineError, require_inputs, update_metrics
from common.validate import int_range, positive_int
from dataset.data_loader import load_excel
from dataset.task import stream_seed
from mlp.activations import firing_counts, harvest, save_activations
from mlp.mlp_definition import load_mlp

MAX_SAMPLES = 4_000_000  # 4e6 x 512 float32 = 8 GiB: the most this 24 GiB machine holds with room to train


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--n-samples", type=int_range(1, MAX_SAMPLES), default=None,
                   help=f"harvest N fresh inputs sampled from the task, 1..{MAX_SAMPLES:,} "
                        "(default: the training split's rows)")
    p.add_argument("--data", default=None, help="harvest the rows of this Excel file instead of the training split")
    p.add_argument("--batch-size", type=positive_int, default=65536, help="inputs per forward pass (default: 65536)")
    return p.parse_args(argv)


def main(args) -> dict:
    paths = run_paths(args)
    require_inputs(paths, "mlp")
    model = load_mlp(paths.mlp, device=pick_device(args.device))
    made_from = {"mlp": provenance.entry(paths.mlp, model.provenance["digest"], paths.root)}
    if args.n_samples is not None:
        x = model.task.sample_inputs(args.n_samples, seed=stream_seed(args.seed, "harvest"))   # the MLP's task
        source = f"fresh:{args.n_samples}:seed={args.seed}"
    else:
        data = args.data or paths.train_xlsx
        if not args.data:
            require_inputs(paths, "train_xlsx")
        x, y = load_excel(data, model.task)   # rows of another task are refused by row
        source = f"file:{data}"
        made_from["data"] = provenance.entry(data, provenance.rows_digest(x, y), paths.root)
    t0 = time.time()
    with tqdm(total=len(x), desc="harvest", unit="input", disable=args.quiet) as bar:
        acts = harvest(model, x, args.batch_size, on_chunk=bar.update)           # [N, d_hidden]
    if not all(bool(torch.isfinite(acts[i:i + args.batch_size]).all()) for i in range(0, len(acts), args.batch_size)):
        raise PipelineError(f"{paths.mlp}: the MLP's hidden layer is NaN or infinite on these inputs; "
                            f"re-run train_mlp.py ({paths.activations} is unchanged)")
    counts = firing_counts(acts)
    seconds = time.time() - t0
    record = save_activations(paths.activations, acts, x, source, made_from)
    stats = {"n": len(x), "d_hidden": acts.shape[1], "source": source, "seconds": round(seconds, 2),
             "active_share": float(counts.sum()) / acts.numel(),
             "dead_neurons": int((counts == 0).sum()), provenance.KEY: record}
    update_metrics(paths.metrics, "harvest", stats)
    if not args.quiet:
        print(f"harvested {tuple(acts.shape)} from {source} in {seconds:.1f} s; "
              f"{stats['active_share']:.1%} of entries active, {stats['dead_neurons']} dead neurons")
        print(f"wrote {paths.activations}")
    return stats


if __name__ == "__main__":
    run_main(main, parse_args())
