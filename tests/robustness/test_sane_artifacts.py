"""Finite weights and sane activations on load, and all-or-nothing stages (common.io.atomic_group)."""
import os

import pandas as pd
import pytest
import torch

import harvest_activations
from analysis.labels_io import LABEL_FILES, Labels, write_labels
from common.io import PipelineError, atomic_group
from common.paths import RunPaths
from dataset import data_generator
from mlp.activations import load_activations
from mlp.mlp_definition import load_mlp
from sae.sae_definition import load_sae, save_sae
from tests.helpers import tiny_sae


def _snapshot(paths):
    return {p: p.read_bytes() for p in paths}


def test_mlp_with_a_nan_weight_is_refused_naming_the_tensor(copy_run):
    run = copy_run()
    ckpt = torch.load(run.mlp, weights_only=True)
    ckpt["state_dict"]["fc2.weight"][3, 4] = float("nan")
    torch.save(ckpt, run.mlp)
    with pytest.raises(PipelineError, match=r"perfect_mlp.pth: MLP tensor 'fc2.weight' holds NaN .*train_mlp.py"):
        load_mlp(run.mlp)


def test_harvest_with_a_nan_mlp_leaves_the_activations_unchanged(copy_run):
    run = copy_run()
    before = _snapshot([run.activations, run.metrics])
    ckpt = torch.load(run.mlp, weights_only=True)
    ckpt["state_dict"]["head.bias"][0] = float("inf")
    torch.save(ckpt, run.mlp)
    with pytest.raises(PipelineError, match="head.bias"):
        harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(run.root), "--quiet"]))
    assert _snapshot(before) == before


@pytest.mark.parametrize("name", ["W_enc", "b_dec"])
def test_sae_with_a_nan_weight_is_refused_naming_the_tensor(tmp_path, name):
    sae = tiny_sae("relu")
    with torch.no_grad():
        getattr(sae, name)[(0,) * getattr(sae, name).dim()] = float("nan")
    save_sae(sae, tmp_path / "sae.pth")
    with pytest.raises(PipelineError, match=rf"sae.pth: SAE tensor '{name}' holds NaN"):
        load_sae(tmp_path / "sae.pth")


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["inputs"].__setitem__((3, 4), 7), r"inputs\[3\]\[4\] = 7: expected a pointer in 0..3"),
    (lambda d: d["inputs"].__setitem__((5, 0), -1), r"inputs\[5\]\[0\] = -1: expected a digit in 0..9"),
    (lambda d: d["targets"].__setitem__(2, d["targets"][2] + 1), r"targets\[2\] = .* disagrees with inputs\[2\]"),
    (lambda d: d.__setitem__("inputs", d["inputs"].float()), "inputs and targets must be integers"),
    (lambda d: d["activations"].__setitem__((0, 0), float("inf")), "NaN or infinite"),
    (lambda d: d.__setitem__("activations", d["activations"][:, :, None]), r"must be \[N, d\]"),
])
def test_activations_are_checked_on_load(copy_run, edit, message):
    run = copy_run()
    data = torch.load(run.activations, weights_only=True)
    edit(data)
    torch.save(data, run.activations)
    with pytest.raises(PipelineError, match=message):
        load_activations(run.activations)


def test_atomic_group_leaves_every_old_file_when_the_block_fails(tmp_path):
    paths = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for p in paths:
        p.write_text("old")
    with pytest.raises(ValueError):
        with atomic_group(paths) as temps:
            temps[0].write_text("new")
            temps[1].write_text("new")
            raise ValueError("third write failed")
    assert [p.read_text() for p in paths] == ["old"] * 3
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]   # no temps, no backups left


def test_atomic_group_undoes_the_renames_done_when_a_later_one_fails(tmp_path, monkeypatch):
    paths = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for p in paths:
        p.write_text("old")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(paths[2]):
            raise PermissionError(1, "Operation not permitted", str(dst))
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PipelineError, match=r"permission denied while writing .*/c"):
        with atomic_group(paths) as temps:
            for t in temps:
                t.write_text("new")
    monkeypatch.undo()
    assert [p.read_text() for p in paths] == ["old"] * 3
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]


def test_atomic_group_writes_all_files_and_new_ones(tmp_path):
    (tmp_path / "a").write_text("old")
    with atomic_group([tmp_path / "a", tmp_path / "sub" / "b"]) as (a, b):
        a.write_text("A")
        b.write_text("B")
    assert (tmp_path / "a").read_text() == "A" and (tmp_path / "sub" / "b").read_text() == "B"


def test_data_generator_writes_all_three_splits_or_none(tmp_path, monkeypatch):
    args = ["--run-dir", str(tmp_path), "--quiet", "--n-train=50", "--n-val=20", "--n-test=20"]
    data_generator.main(data_generator.parse_args(args))
    files = sorted((tmp_path / "dataset").glob("*.xlsx"))
    before = _snapshot(files)
    calls = []

    def third_fails(path, x, y):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        real(path, x, y)
    real = data_generator.write_excel
    monkeypatch.setattr(data_generator, "write_excel", third_fails)
    with pytest.raises(PipelineError, match=r"no space left on device while writing .*mlp_test.xlsx"):
        data_generator.main(data_generator.parse_args(args[:-3] + ["--n-train=900", "--n-val=30", "--n-test=30"]))
    assert _snapshot(files) == before
    assert sorted(os.listdir(tmp_path / "dataset")) == [f.name for f in files]


def test_labels_are_written_all_or_none(tmp_path, monkeypatch):
    paths = RunPaths(tmp_path)
    labels = Labels(features=pd.DataFrame({"unit": [0, 1], "score": [0.5, 0.25]}),
                    neurons=pd.DataFrame({"unit": [0], "score": [0.75]}),
                    summary={"seed": 0, "n_inputs": 1000}, inputs=torch.zeros(2, 10, dtype=torch.long),
                    concept_names=["p1=0"], feature_f1=torch.zeros(2, 1).numpy(), neuron_f1=torch.zeros(1, 1).numpy())
    write_labels(paths, labels)
    files = [getattr(paths, p) for p in LABEL_FILES] + [paths.metrics]
    before = _snapshot(files)
    labels.features["score"] = [0.9, 0.9]
    labels.summary = {"seed": 1, "n_inputs": 1000}

    def disk_full(*a, **k):  # torch.save's own error on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(PipelineError, match=r"labels.pt"):
        write_labels(paths, labels)
    assert _snapshot(files) == before
