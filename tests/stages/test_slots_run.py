"""A run on a task of another L (tests.helpers.OTHER_SLOTS): every stage after the data generator reads
L from the run (the splits' width, the MLP's config), and a file of another task is refused in one line."""
import shutil

import pytest
import torch

import feature_probe
import harvest_activations
import train_mlp
from common.io import PipelineError, read_metrics
from common.paths import RunPaths
from dataset.data_loader import write_excel
from dataset.task import Task, target
from mlp.activations import load_activations, load_training_inputs
from mlp.mlp_definition import load_mlp
from tests.helpers import OTHER_SLOTS
from tests.viz.test_feature_reports import shared_reports_run

L = OTHER_SLOTS


@pytest.fixture(scope="module")
def reports(tiny_run_other_slots, tmp_path_factory):
    return shared_reports_run(tiny_run_other_slots, tmp_path_factory, "shared_reports_run_other_slots")


def private_copy(run: RunPaths, tmp_path) -> RunPaths:
    return RunPaths(shutil.copytree(run.root, tmp_path / "run"))


def test_the_mlp_and_the_activations_hold_the_runs_task(tiny_run_other_slots):
    mlp = load_mlp(tiny_run_other_slots.mlp)
    assert mlp.cfg.slots == L and mlp.task == Task(L) and mlp.fc1.in_features == 4 * L
    x = load_activations(tiny_run_other_slots.activations)["inputs"]
    assert x.shape[1] == 2 * L + 2 and bool((x[:, [L, 2 * L + 1]] < L).all())
    assert mlp(Task(L).sample_inputs(5, seed=0)).shape == (5,)


def test_labels_and_probe_follow_the_runs_task(reports, capsys):
    paths, _ = reports
    summary = read_metrics(paths.metrics)["interpretability"]
    assert summary["n_inputs"] > 0 and len(summary["ramps_best"]["features"]) == 2 * L + 1      # 2L ramps + the sign
    assert {f"p1 = {k}" for k in range(L)} <= set(summary["core_concepts_best"]["features"])
    assert f"p1 = {L}" not in summary["core_concepts_best"]["features"]
    out = feature_probe.main(feature_probe.parse_args(["--run-dir", str(paths.root), "--json"]))
    assert [r["input"] for r in out["inputs"]] == [list(r) for r in Task(L).reference_inputs]
    assert all(r["expected"] == int(target(torch.tensor([r["input"]]))) for r in out["inputs"])
    with pytest.raises(PipelineError, match=f"expected {2 * L + 2} integers, got 10"):
        feature_probe.main(feature_probe.parse_args(["--run-dir", str(paths.root), "--input", "8,9,5,1,3,2,9,4,7,1"]))
    capsys.readouterr()


def test_a_split_of_another_task_is_refused_by_row(tiny_run_other_slots, tmp_path):
    paths = private_copy(tiny_run_other_slots, tmp_path)
    x = Task(4).sample_inputs(20, seed=1)
    write_excel(paths.val_xlsx, x, target(x))                  # the validation split of an L = 4 run
    with pytest.raises(PipelineError, match=rf"mlp_val.xlsx: row 2: input_list: expected {2 * L + 2} integers, got 10"):
        train_mlp.main(train_mlp.parse_args(["--run-dir", str(paths.root), "--quiet", "--epochs", "1"]))


def test_harvest_and_evaluate_refuse_data_of_another_task(tiny_run_other_slots, tmp_path):
    paths = private_copy(tiny_run_other_slots, tmp_path)
    other = tmp_path / "l4.xlsx"
    x = Task(4).sample_inputs(20, seed=1)
    write_excel(other, x, target(x))
    before = paths.activations.read_bytes()
    with pytest.raises(PipelineError, match=rf"row 2: input_list: expected {2 * L + 2} integers, got 10"):
        harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(paths.root), "--quiet", "--data", str(other)]))
    assert paths.activations.read_bytes() == before
    with pytest.raises(PipelineError, match=rf"expected {2 * L + 2} integers, got 10"):
        train_mlp.main(train_mlp.parse_args(["--run-dir", str(paths.root), "--evaluate", str(other)]))
    # fresh inputs are drawn from the MLP's task, with no flag to say otherwise
    stats = harvest_activations.main(harvest_activations.parse_args(["--run-dir", str(paths.root), "--quiet",
                                                                     "--n-samples", "50"]))
    assert stats["n"] == 50 and load_activations(paths.activations)["inputs"].shape == (50, 2 * L + 2)


def test_activations_of_another_task_than_the_mlp_are_refused(tiny_run, tiny_run_other_slots, tmp_path):
    paths = private_copy(tiny_run_other_slots, tmp_path)
    shutil.copy(tiny_run.activations, paths.activations)       # harvested from the L = 4 run's MLP
    with pytest.raises(PipelineError, match=f"the MLP solves the task of L = {L}"):
        load_training_inputs(paths)
