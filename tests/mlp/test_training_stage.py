"""train_mlp.py's loop: the epoch kept is the best on validation (not the last), the symmetry
augmentation is applied every epoch unless --no-augment, and the harvest keeps rows aligned."""
import shutil

import torch

import train_mlp
from common.paths import RunPaths
from dataset.data_loader import load_excel
from mlp.activations import harvest
from mlp.evaluate import regression_metrics
from mlp.mlp_definition import MLPConfig, PointerMLP, load_mlp
from dataset.task import sample_inputs

FLAGS = ["--quiet", "--d-mlp=16", "--d-hidden=16", "--batch-size=64", "--checkpoint-every=0"]


def _train(tiny_run, tmp_path, *flags) -> RunPaths:
    run = tmp_path / "run"
    shutil.copytree(tiny_run.dataset_dir, run / "dataset")
    train_mlp.main(train_mlp.parse_args(["--run-dir", str(run), *FLAGS, *flags]))
    return RunPaths(run)


def test_the_epoch_kept_is_the_best_on_validation(tiny_run, tmp_path):
    # a learning rate high enough that validation MSE goes up and down between epochs
    paths = _train(tiny_run, tmp_path, "--epochs=5", "--lr=0.1")   # measured: best epoch 2 of 5
    saved = torch.load(paths.mlp, weights_only=True)["metrics"]
    val = [h["val_mse"] for h in saved["history"]]
    best = min(range(len(val)), key=val.__getitem__)
    assert best != len(val) - 1, f"validation MSE fell every epoch ({val}): the case shows nothing"
    assert saved["best_epoch"] == best + 1
    x, y = load_excel(paths.val_xlsx)
    with torch.no_grad():
        mse = regression_metrics(load_mlp(paths.mlp)(x), y)["mse"]
    assert abs(mse - val[best]) < 1e-4


def test_augmentation_runs_every_epoch_unless_turned_off(tiny_run, tmp_path, monkeypatch):
    calls = []
    real = train_mlp.augment
    monkeypatch.setattr(train_mlp, "augment", lambda x, g=None: calls.append(len(x)) or real(x, g))
    _train(tiny_run, tmp_path / "a", "--epochs=3")
    assert len(calls) == 3
    _train(tiny_run, tmp_path / "b", "--epochs=3", "--no-augment")
    assert len(calls) == 3


def test_harvest_rows_stay_aligned_with_their_inputs_across_chunks():
    model = PointerMLP(MLPConfig(d_mlp=16, d_hidden=32)).eval()
    x = sample_inputs(50, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(harvest(model, x, batch_size=7), model.hidden(x))
