"""Large inputs work within memory, or are refused up front with the limit (issue 6, part 6).

The two big cases run in a subprocess each so their peak memory (ru_maxrss) is their own; they
are marked `slow` (about 20-40 s each on a busy 2-core machine) but still run in CI. Bounds are
stated relative to the data they hold, so a stray copy of the data fails them:

* an Excel file of 200,000 rows loads completely, in under 1 GiB above the interpreter;
* 1,000,000 harvested activations (the tiny 64-d MLP: 256 MB of floats) are harvested, saved,
  loaded and trained on by the SAE stage within 2.5x their size above the interpreter.

The refusals are fast and in-process. Timings of the default 512-d run are in
benchmarks/bench_limits.py, not here.
"""
import json
import shutil
import subprocess
import sys

import pytest

import harvest_activations
from common.io import PipelineError
from common.paths import RunPaths
from dataset import data_loader
from dataset.data_loader import write_excel
from dataset.task import sample_inputs, target

from tests.conftest import ROOT

MiB = 2 ** 20

# measured inside the child: its peak RSS after importing everything, and after the work
_CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(2)
import harvest_activations, train_sae
from dataset.data_loader import load_excel
from tests.helpers import TINY_SAE_FLAGS
from mlp.activations import load_activations
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
what, arg = sys.argv[1], sys.argv[2]
out = {}
if what == "excel":
    x, y = load_excel(arg)
    out["n"] = len(x)
    out["exact"] = bool((x[:, 0] >= 0).all()) and y.dtype == torch.float32
else:
    common = ["--run-dir", arg, "--quiet"]
    out["harvest"] = harvest_activations.main(harvest_activations.parse_args(common + ["--n-samples", "1000000"]))
    data = load_activations(harvest_activations.run_paths(
        harvest_activations.parse_args(common)).activations)
    out["shape"] = list(data["activations"].shape)
    del data
    # a tiny SAE, but a held-out set and batches that are large next to the tiny run's
    out["sae"] = train_sae.main(train_sae.parse_args(common + [*TINY_SAE_FLAGS, "--steps", "5", "--batch-size", "1024",
                                                              "--n-eval", "10000"]))["steps"]
out["base"], out["peak"] = base, peak()
print(json.dumps(out))
"""


def _child(*argv) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="peak memory is read with the POSIX resource module")
def test_excel_of_200k_rows_loads_within_memory(tmp_path):
    n = 200_000
    x = sample_inputs(n, seed=7)
    path = tmp_path / "big.xlsx"
    write_excel(path, x, target(x))
    r = _child("excel", str(path))
    assert r["n"] == n and r["exact"]
    assert r["peak"] - r["base"] < 1024 * MiB, f"{(r['peak'] - r['base']) / MiB:.0f} MiB above the interpreter"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="peak memory is read with the POSIX resource module")
def test_million_activations_harvest_and_train_within_memory(tiny_run, tmp_path):
    run = RunPaths(tmp_path / "run")
    run.mlp.parent.mkdir(parents=True)
    shutil.copy(tiny_run.mlp, run.mlp)
    r = _child("million", str(run.root))
    d_hidden = r["shape"][1]
    assert r["shape"] == [1_000_000, d_hidden] and r["harvest"]["n"] == 1_000_000 and r["sae"] == 5
    data_bytes = 1_000_000 * (d_hidden * 4 + 10 * 8 + 8)  # activations + inputs + targets
    assert run.activations.stat().st_size >= data_bytes
    assert r["peak"] - r["base"] < 2.5 * data_bytes, \
        f"{(r['peak'] - r['base']) / MiB:.0f} MiB above the interpreter for {data_bytes / MiB:.0f} MiB of data"


def test_harvest_beyond_its_limit_is_refused_up_front(copy_run, capsys):
    run = copy_run()
    before = sorted((p, p.stat().st_mtime_ns) for p in run.root.rglob("*"))
    n = harvest_activations.MAX_SAMPLES + 1
    with pytest.raises(SystemExit) as e:   # refused by the flag's type (common/validate.py), before any work
        harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(run.root), "--quiet", "--n-samples", str(n)]))
    msg = capsys.readouterr().err
    assert e.value.code == 2
    assert "--n-samples" in msg and f"'{n}'" in msg and f"{harvest_activations.MAX_SAMPLES:,}" in msg
    assert sorted((p, p.stat().st_mtime_ns) for p in run.root.rglob("*")) == before


def test_excel_beyond_the_row_limit_is_refused_with_the_limit(tmp_path, monkeypatch):
    """The reading-time guard (the up-front one, from the sheet's declared size, is in
    test_bad_excel.py); a small MAX_ROWS stands in for 1,000,000."""
    x = sample_inputs(30, seed=3)
    path = tmp_path / "rows.xlsx"
    write_excel(path, x, target(x))
    monkeypatch.setattr(data_loader, "MAX_ROWS", 29)
    with pytest.raises(PipelineError, match="more than 29 data rows; split the file"):
        data_loader.load_excel(path)
    monkeypatch.setattr(data_loader, "MAX_ROWS", 30)
    assert len(data_loader.load_excel(path)[0]) == 30
