"""The MLP's split, hooks, checkpoint round trip and metrics."""
import pytest
import torch

from dataset.task import sample_inputs
from mlp.evaluate import regression_metrics
from mlp.mlp_definition import HIDDEN_HOOK, MLPConfig, PointerMLP, capture, load_mlp, run_with_cache, save_mlp


@pytest.fixture
def model():
    return PointerMLP(MLPConfig(d_mlp=16, d_hidden=32)).eval()


def _n_hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_forward_is_head_of_hidden(model):
    x = sample_inputs(64, seed=0)
    h = model.hidden(x)
    assert h.shape == (64, 32) and (h >= 0).all()
    assert model(x).shape == (64,)
    assert torch.allclose(model(x), model.head(h).squeeze(-1))


def test_encoding_is_inside_the_model(model):
    enc = model.encode(torch.tensor([[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]]))
    assert enc.shape == (1, 16)
    assert torch.allclose(enc[0, :8] * 9, torch.tensor([8., 9, 5, 1, 2, 9, 4, 7]))
    assert enc[0, 8:].tolist() == [0, 0, 0, 1, 0, 1, 0, 0]


def test_capture_records_hidden_and_removes_hooks(model):
    x = sample_inputs(8, seed=1)
    with capture(model, [HIDDEN_HOOK, "fc1"]) as cache:
        assert _n_hooks(model) == 2
        model(x)
    assert _n_hooks(model) == 0
    assert torch.equal(cache[HIDDEN_HOOK], model.hidden(x)) and cache["fc1"].shape == (8, 16)
    assert not cache[HIDDEN_HOOK].requires_grad


def test_capture_removes_hooks_on_error(model):
    with pytest.raises(ValueError):
        with capture(model):
            model(sample_inputs(2, seed=0))
            raise ValueError("boom")  # anything failing inside the block
    assert _n_hooks(model) == 0


def test_capture_unknown_name(model):
    with pytest.raises(KeyError, match="no submodule"):
        with capture(model, ["nope"]):
            pass
    assert _n_hooks(model) == 0


def test_run_with_cache(model):
    x = sample_inputs(5, seed=2)
    out, cache = run_with_cache(model, x)
    assert torch.equal(out, model(x)) and torch.equal(cache[HIDDEN_HOOK], model.hidden(x))


def test_save_load_round_trip(model, tmp_path):
    path = tmp_path / "m.pth"
    save_mlp(model, path, metrics={"test": {"mse": 0.5}})
    loaded = load_mlp(path)
    assert not loaded.training and loaded.cfg == model.cfg
    x = sample_inputs(20, seed=3)
    assert torch.equal(loaded(x), model(x))
    assert torch.load(path, weights_only=True)["metrics"]["test"]["mse"] == 0.5


def test_regression_metrics():
    m = regression_metrics(torch.tensor([1.4, 2.6, 3.0, 0.2]), torch.tensor([1., 2., 3., 0.]))
    assert m["n"] == 4 and m["exact_match"] == pytest.approx(0.75)
    assert m["mse"] == pytest.approx((0.16 + 0.36 + 0 + 0.04) / 4)
