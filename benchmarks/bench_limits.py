"""Limits at the default sizes (issue 6, part 6): run by hand, prints its figures and this machine's
fp32 matmul yardstick.

    python benchmarks/bench_limits.py [--rows 200000] [--n-samples 1000000] [--keep DIR]

Measures, each in a fresh child process so peak memory (ru_maxrss) is its own:
  1. write_excel + load_excel of an Excel file of --rows rows;
  2. harvest_activations.py --n-samples N with a default-size MLP (512-d hidden layer; untrained:
     its weights do not change time or memory);
  3. loading that activations file (safe_torch_load: CRC check + torch.load) and its CRC check alone;
  4. train_sae.py for 20 steps on it (default d_sae 2048).
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import machine_line  # this folder is sys.path[0] when the benchmark runs as a script
from common.paths import RunPaths
from mlp.mlp_definition import MLPConfig, PointerMLP, save_mlp

ROOT = Path(__file__).resolve().parents[1]

# run with cwd = the repository root, whose stage scripts `python -c` can then import
_CHILD = r"""
import json, resource, sys, time
import torch
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
what, run_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import harvest_activations, train_sae
from common.io import _zip_damage, safe_torch_load
from common.paths import RunPaths
from dataset.task import sample_inputs, target
from dataset.data_loader import load_excel, write_excel
paths = RunPaths(run_dir)
base = peak(); out = {}
t = time.perf_counter()
if what == "excel_write":
    x = sample_inputs(n, seed=7); write_excel(paths.root / "big.xlsx", x, target(x))
elif what == "excel_load":
    out["rows"] = len(load_excel(paths.root / "big.xlsx")[0])
elif what == "harvest":
    harvest_activations.main(harvest_activations.parse_args(["--run-dir", run_dir, "--quiet", "--n-samples", str(n)]))
    out["file_GiB"] = paths.activations.stat().st_size / 2 ** 30
elif what == "load":
    safe_torch_load(paths.activations, "activations file", "")
elif what == "crc":
    _zip_damage(paths.activations)
elif what == "sae":
    train_sae.main(train_sae.parse_args(["--run-dir", run_dir, "--quiet", "--steps", "20"]))
out.update(seconds=time.perf_counter() - t, base_GiB=base, peak_GiB=peak())
print(json.dumps(out))
"""


def child(what: str, run_dir: Path, n: int) -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, what, str(run_dir), str(n)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--n-samples", type=int, default=1_000_000)
    p.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temp folder, deleted)")
    args = p.parse_args()
    print(machine_line())
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_limits_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        torch.manual_seed(0)
        save_mlp(PointerMLP(MLPConfig()), RunPaths(work).mlp)
        rows = [("excel_write", args.rows), ("excel_load", args.rows), ("harvest", args.n_samples), ("crc", 0),
                ("load", 0), ("sae", 0)]
        for what, n in rows:
            t0 = time.time()
            r = child(what, work, n)
            extra = {k: v for k, v in r.items() if k not in ("seconds", "base_GiB", "peak_GiB")}
            if "error" in r:
                print(f"{what:<12} FAILED: {r['error']}")
                continue
            print(f"{what:<12} n={n:>9,}  {r['seconds']:7.2f} s  peak {r['peak_GiB']:.2f} GiB "
                  f"(+{r['peak_GiB'] - r['base_GiB']:.2f} over the interpreter)  {extra if extra else ''}"
                  f"  [{time.time() - t0:.0f} s with start-up]")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
