"""The MLP learns the task: train_mlp.py's own main() on a few thousand rows reaches a high
exact-match on inputs it never saw, scored here from the task's definition."""
import pytest
import torch

import train_mlp
from dataset import data_generator
from dataset.task import sample_inputs, target
from mlp.mlp_definition import load_mlp
from common.paths import RunPaths

# Measured on a busy 2-core machine (1 torch thread): 4000 rows, widths 256/256, 50 epochs at batch
# 256 and lr 5e-3 train in ~9 s to 98.5% exact-match on 5000 fresh inputs (seed 1: 99.0%, seed 2:
# 97.7%); 30 epochs of a 256/128 MLP reach only ~50%, so the bar below fails a recipe that stops learning.
N_TRAIN = 4000
FLAGS = ["--d-mlp=256", "--d-hidden=256", "--epochs=50", "--batch-size=256", "--lr=5e-3", "--checkpoint-every=0"]


@pytest.mark.slow
def test_a_small_mlp_learns_the_task(tmp_path):
    common = ["--run-dir", str(tmp_path), "--quiet"]
    data_generator.main(data_generator.parse_args(common + [f"--n-train={N_TRAIN}", "--n-val=200", "--n-test=200"]))
    metrics = train_mlp.main(train_mlp.parse_args(common + FLAGS))
    model = load_mlp(RunPaths(tmp_path).mlp).eval()
    x = sample_inputs(5000, seed=987_654)              # fresh: no stream of the pipeline uses this seed
    with torch.no_grad():
        pred = model(x)                                 # [5000]
    # exact-match by the task's definition: the prediction rounds to |col1[p1] - col2[p2]|
    y = (x[torch.arange(len(x)), x[:, 4]] - x[torch.arange(len(x)), 5 + x[:, 9]]).abs()
    assert torch.equal(y.float(), target(x).float())   # the hand formula is the task's
    exact = float((pred.round() == y.float()).float().mean())
    assert exact >= 0.9, f"exact-match on fresh inputs {exact:.1%} (train split {metrics['train']['exact_match']:.1%})"
