"""common/summary.py on a hand-written metrics.json, and common/checkpoint.py's round trip and refusals."""
import json

import pytest
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.io import PipelineError
from common.paths import RunPaths
from common.summary import summary_lines

METRICS = {
    "mlp": {"test": {"exact_match": 0.98765, "mse": 0.012345, "n": 1000}},
    "harvest": {"n": 123456, "d_hidden": 512, "source": "fresh inputs"},
    "sae": {"fvu": 0.123456, "l0": 15.98, "dead_share": 0.0, "spliced_exact_match": 0.9512},
    "interpretability": {"features_monosemantic_share": 0.4567, "features_alive": 64,
                         "neurons_monosemantic_share": 0.0912, "neurons_alive": 500},
}


def test_summary_lines_say_what_the_metrics_hold(tmp_path):
    run = RunPaths(tmp_path)
    run.metrics.write_text(json.dumps(METRICS))
    lines = summary_lines(run)
    assert lines == [
        "MLP      test exact-match 98.77%  MSE 0.0123  (n=1000)",
        "Harvest  123,456 activations x 512  (fresh inputs)",
        "SAE      fvu 0.123  l0 16  dead_share 0  spliced exact-match 95.12%",
        "Explained (score >= 0.8)  features 45.7% of 64 alive  vs neurons 9.1% of 500 alive",
    ]
    run.index_html.parent.mkdir(parents=True)
    run.index_html.write_text("<html></html>")
    assert summary_lines(run)[-1] == f"Reports  {run.index_html.resolve()}"


def test_summary_of_a_partial_or_missing_run(tmp_path):
    run = RunPaths(tmp_path)
    assert summary_lines(run) == []                                     # no metrics.json yet
    run.metrics.write_text(json.dumps({"mlp": METRICS["mlp"], "sae": {"fvu": None, "l0": 3}}))
    assert summary_lines(run) == ["MLP      test exact-match 98.77%  MSE 0.0123  (n=1000)", "SAE      l0 3"]


CONFIG, TRAIN_CONFIG = {"d_sae": 8}, {"lr": 1e-3, "steps": 10}
REQUIRED = ["state_dict", "step"]


def _save(path, **state):
    state = {"state_dict": {"w": torch.arange(6.0).view(2, 3)}, "step": 4, **state}
    save_checkpoint(path, config=CONFIG, train_config=TRAIN_CONFIG, state=state)


def _load(path, config=CONFIG, train_config=TRAIN_CONFIG):
    return load_checkpoint(path, config=config, train_config=train_config, required=REQUIRED,
                           remedy="delete it", what="test checkpoint")


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "checkpoint.pth"
    g = torch.Generator().manual_seed(5)
    _save(path, generator=g.get_state(), history=[{"step": 1, "loss": 0.5}])
    ck = _load(path)
    assert ck["config"] == CONFIG and ck["train_config"] == TRAIN_CONFIG and ck["step"] == 4
    assert torch.equal(ck["state_dict"]["w"], torch.arange(6.0).view(2, 3))
    assert ck["history"] == [{"step": 1, "loss": 0.5}]
    resumed = torch.Generator().set_state(ck["generator"])
    assert torch.equal(torch.rand(3, generator=resumed), torch.rand(3, generator=g))
    with pytest.raises(ValueError):                                     # the settings are not state
        save_checkpoint(path, config=CONFIG, train_config=TRAIN_CONFIG, state={"config": {}})


def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pth"
    _save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])    # cut half-way
    with pytest.raises(PipelineError) as e:
        _load(path)
    assert str(path) in str(e.value) and "delete it" in str(e.value) and "\n" not in str(e.value)


def test_checkpoint_missing_a_state_key_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pth"
    save_checkpoint(path, config=CONFIG, train_config=TRAIN_CONFIG, state={"state_dict": {}})   # no "step"
    with pytest.raises(PipelineError, match="missing step") as e:
        _load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("config,train_config", [({"d_sae": 16}, TRAIN_CONFIG), (CONFIG, {"lr": 1e-3, "steps": 20})],
                         ids=["other model config", "other training settings"])
def test_checkpoint_of_other_settings_is_refused(tmp_path, config, train_config):
    path = tmp_path / "checkpoint.pth"
    _save(path)
    with pytest.raises(PipelineError, match="other settings") as e:
        _load(path, config, train_config)
    assert str(path) in str(e.value)
