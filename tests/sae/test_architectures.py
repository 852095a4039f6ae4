"""SAE architectures: shapes, invariants, save/load round trips, refusal of bad files."""
import pytest
import torch

from common.io import PipelineError, atomic_torch_save
from mlp.activations import load_activations
from mlp.mlp_definition import load_mlp
from sae.metrics import evaluate_sae, fvu, l0
from sae.registry import ARCHITECTURES
from sae.sae_definition import load_sae, save_sae
from sae.splice import spliced_forward
from tests.helpers import tiny_sae

D_IN, D_SAE = 64, 256


def make_sae(architecture="relu", **kw):
    return tiny_sae(architecture, D_IN, D_SAE, **{"k": 8, **kw})


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_shapes_and_decode_is_linear(arch):
    sae = make_sae(arch)
    h = torch.rand(32, D_IN)
    assert sae.W_enc.shape == (D_IN, D_SAE) and sae.W_dec.shape == (D_SAE, D_IN)
    assert sae.b_enc.shape == (D_SAE,) and sae.b_dec.shape == (D_IN,)
    h_hat, f = sae(h)
    assert h_hat.shape == (32, D_IN) and f.shape == (32, D_SAE)
    assert (f >= 0).all()
    with torch.no_grad():
        sae.b_dec.normal_()
        f = sae.encode(h)
        torch.testing.assert_close(sae.decode(f), f @ sae.W_dec + sae.b_dec)
        torch.testing.assert_close(sae.decode(2 * f) - sae.b_dec, 2 * (sae.decode(f) - sae.b_dec))


def test_topk_exactly_k_active_and_sparse_decode_matches_dense():
    sae = make_sae("topk", k=8)
    with torch.no_grad():
        sae.b_enc.fill_(1.0)   # all pre-activations positive, so exactly k survive the ReLU
    h = torch.rand(50, D_IN)
    f = sae.encode(h)
    assert ((f > 0).sum(1) == 8).all()
    values, indices, _ = sae.encode_sparse(h)
    torch.testing.assert_close(sae.decode_sparse(values, indices), sae.decode(f), atol=1e-5, rtol=1e-5)


def test_jumprelu_zeroes_below_threshold():
    sae = make_sae("jumprelu", threshold_init=0.5)
    h = torch.rand(40, D_IN)
    pre, f = sae.pre_acts(h), sae.encode(h)
    assert torch.equal(f > 0, pre > 0.5)
    torch.testing.assert_close(f[f > 0], pre[f > 0])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_save_load_round_trip(arch, tmp_path):
    sae = make_sae(arch, l1_coeff=3e-4, k=5)
    with torch.no_grad():
        sae.b_dec.normal_()
    path = tmp_path / "sae.pth"
    save_sae(sae, path, metrics={"fvu": 0.5}, train_config={"lr": 1e-3})
    raw = torch.load(path, weights_only=True)
    assert raw["config"]["architecture"] == arch and raw["metrics"] == {"fvu": 0.5}
    back = load_sae(path)
    assert not back.training and back.cfg == sae.cfg
    sae.eval()                      # (batchtopk selects across the batch only while training)
    h = torch.rand(16, D_IN)
    for a, b in zip(sae(h), back(h)):
        torch.testing.assert_close(a, b)


def test_unit_norm_and_parallel_grad_removed():
    sae = make_sae("relu")
    h = torch.rand(64, D_IN)
    h_hat, f = sae(h)
    ((h - h_hat) ** 2).sum().backward()
    sae.remove_parallel_grad_()
    assert (sae.W_dec.grad * sae.W_dec).sum(1).abs().max() < 1e-4
    opt = torch.optim.Adam(sae.parameters(), lr=0.1)
    opt.step()
    assert (sae.W_dec.norm(dim=1) - 1).abs().max() > 1e-3   # the step itself moves norms...
    sae.unit_norm_decoder_()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))   # ...and this restores them


def test_bad_checkpoints_are_refused_with_a_clear_message(tmp_path):
    relu = make_sae("relu")
    path = tmp_path / "sae.pth"
    save_sae(relu, path)
    ckpt = torch.load(path, weights_only=True)
    # another architecture's file under this config: jumprelu has a threshold the relu file lacks
    ckpt["config"]["architecture"] = "jumprelu"
    atomic_torch_save(ckpt, tmp_path / "arch.pth")
    # another size
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["d_sae"] = 128
    atomic_torch_save(ckpt, tmp_path / "size.pth")
    (tmp_path / "corrupt.pth").write_bytes(path.read_bytes()[:200])
    atomic_torch_save({"weights": torch.zeros(3)}, tmp_path / "foreign.pth")
    for name in ("arch.pth", "size.pth", "corrupt.pth", "foreign.pth", "missing.pth"):
        with pytest.raises(PipelineError) as e:
            load_sae(tmp_path / name)
        assert name in str(e.value) and "re-run train_sae.py" in str(e.value)


def test_metrics_on_known_cases(tiny_run):
    h = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    assert fvu(h, h) == 0.0
    assert fvu(h, h.mean(0).expand_as(h)) == pytest.approx(1.0)
    assert l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])) == 1.0

    mlp = load_mlp(tiny_run.mlp)
    data = load_activations(tiny_run.activations)
    h, x, y = data["activations"], data["inputs"], data["targets"].float()
    sae = tiny_sae("relu", d_in=h.shape[1], d_sae=128)
    # a perfect "SAE": identity encoder/decoder on non-negative activations splices in losslessly
    with torch.no_grad():
        sae.W_enc.zero_(); sae.W_dec.zero_()
        sae.W_enc[:, :h.shape[1]] = torch.eye(h.shape[1]); sae.W_dec[:h.shape[1]] = torch.eye(h.shape[1])
    torch.testing.assert_close(spliced_forward(mlp, sae, x), mlp(x).detach())
    m = evaluate_sae(sae, mlp, h, x, y)
    assert m["fvu"] < 1e-10
    assert m["spliced_exact_match"] == m["mlp_exact_match"] and m["spliced_mse"] == pytest.approx(m["mlp_mse"])
    assert m["dead_share"] >= 0.5                 # features 64..127 never fire
    assert len(m["density_log10"]) == 128 and min(m["density_log10"]) == -10.0
    counts = (h > 0).sum(0)
    assert m["l0"] == pytest.approx(float((h > 0).sum(1).float().mean()))
    assert m["dense_share"] == pytest.approx(float((counts / len(h) > 0.1).sum()) / 128)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_spliced_forward_is_the_head_of_the_reconstruction(arch, tiny_run):
    """A lossy SAE: the spliced prediction must be the head applied to decode(encode(h)), computed
    here by hand from the weights (not the MLP's own output, which an identity SAE would also give)."""
    mlp = load_mlp(tiny_run.mlp)
    x = load_activations(tiny_run.activations)["inputs"][:200]
    sae = tiny_sae(arch, d_in=mlp.cfg.d_hidden, d_sae=32, k=3, seed=1)
    with torch.no_grad():
        h = torch.relu(mlp.fc2(torch.relu(mlp.fc1(mlp.encode(x)))))
        f = sae.encode(h)
        by_hand = (f @ sae.W_dec + sae.b_dec) @ mlp.head.weight[0] + mlp.head.bias[0]
        own = mlp(x)
    spliced = spliced_forward(mlp, sae, x)
    torch.testing.assert_close(spliced, by_hand, rtol=1e-5, atol=1e-5)
    assert (spliced - own).abs().max() > 1e-3                        # the reconstruction is lossy: it shows
    torch.testing.assert_close(spliced_forward(mlp, sae, x, with_error=True), own, rtol=1e-5, atol=1e-4)
