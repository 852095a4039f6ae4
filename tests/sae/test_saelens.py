"""sae.saelens: the SAE in SAELens's folder layout (cfg.json + sae_weights.safetensors + sparsity.safetensors).

The field lists and formulas below are written out from SAELens 6.x's own source
(sae_lens/saes/sae.py SAEConfig, standard_sae.py, topk_sae.py, jumprelu_sae.py), independently
of the module under test, so a drift on either side shows here.
"""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from common.io import PipelineError
from tests.helpers import tiny_sae
from sae.saelens import load_saelens, load_saelens_sparsity, save_saelens

ARCHS = ["relu", "topk", "jumprelu"]
D_IN, D_SAE, K = 8, 16, 3
# SAEConfig.to_dict() of SAELens 6.x: its dataclass fields plus "architecture"
SAELENS_BASE_FIELDS = {"d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations",
                       "reshape_activations", "metadata", "architecture"}
SAELENS_EXTRA_FIELDS = {"standard": set(), "topk": {"k", "rescale_acts_by_decoder_norm"}, "jumprelu": set()}
SAELENS_ARCH = {"relu": "standard", "topk": "topk", "jumprelu": "jumprelu"}


def make_sae(arch: str):
    """An SAE with every parameter away from its initial value, so a dropped tensor shows."""
    sae = tiny_sae(arch, D_IN, D_SAE, seed=1, k=K, l1_coeff=0.02, aux_k=4)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return sae.eval()


def saelens_encode(arch: str, t: dict, h: torch.Tensor) -> torch.Tensor:
    """SAELens's encode, written from its source: sae_in = h - b_dec; hidden_pre = sae_in @ W_enc + b_enc."""
    pre = (h - t["b_dec"]) @ t["W_enc"] + t["b_enc"]                    # [batch, d_sae]
    if arch == "standard":
        return F.relu(pre)
    if arch == "topk":
        top = pre.topk(K, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, F.relu(top.values))
    return F.relu(pre) * (pre > t["threshold"])                         # jumprelu


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_gives_identical_encode_and_decode(tmp_path, arch):
    sae = make_sae(arch)
    density = torch.linspace(-10, 0, D_SAE)
    save_saelens(sae, tmp_path / arch, density)
    back = load_saelens(tmp_path / arch)
    assert back.cfg == sae.cfg and not back.training
    h = torch.randn(2000, D_IN) * 2                                     # [batch, d_in]
    with torch.no_grad():
        f, f_back = sae.encode(h), back.encode(h)
        assert torch.equal(f, f_back)
        assert (f > 0).any() and (f == 0).any()
        assert torch.equal(sae.decode(f), back.decode(f))
    assert torch.equal(load_saelens_sparsity(tmp_path / arch), density)


@pytest.mark.parametrize("arch", ARCHS)
def test_written_folder_is_what_saelens_reads(tmp_path, arch):
    sae = make_sae(arch)
    save_saelens(sae, tmp_path, torch.zeros(D_SAE))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "sae_weights.safetensors", "sparsity.safetensors"]
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    saelens_arch = SAELENS_ARCH[arch]
    assert cfg["architecture"] == saelens_arch
    assert set(cfg) == SAELENS_BASE_FIELDS | SAELENS_EXTRA_FIELDS[saelens_arch]
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["apply_b_dec_to_input"]) == (D_IN, D_SAE, "float32", True)
    assert cfg["normalize_activations"] == "none" and cfg["reshape_activations"] == "none"
    assert cfg["metadata"]["sae_lens_version"].startswith("6.")  # else SAELens converts it as a pre-6 file
    if arch == "topk":
        assert cfg["k"] == K and cfg["rescale_acts_by_decoder_norm"] is False
    t = load_file(str(tmp_path / "sae_weights.safetensors"))
    shapes = {"W_enc": [D_IN, D_SAE], "b_enc": [D_SAE], "W_dec": [D_SAE, D_IN], "b_dec": [D_IN]}
    if arch == "jumprelu":
        shapes["threshold"] = [D_SAE]
    assert {k: list(v.shape) for k, v in t.items()} == shapes
    assert list(load_file(str(tmp_path / "sparsity.safetensors"))) == ["sparsity"]
    # SAELens's formulas on the written tensors give this project's features
    h = torch.randn(500, D_IN) * 2
    with torch.no_grad():
        torch.testing.assert_close(saelens_encode(saelens_arch, t, h), sae.encode(h))


@pytest.mark.parametrize("saelens_arch", ["standard", "topk", "jumprelu"])
def test_a_folder_written_as_saelens_writes_it_loads(tmp_path, saelens_arch):
    """cfg.json as SAELens 6's `save_model` writes it (cfg.to_dict(), metadata from its training
    runner, no field of this project), weights from `save_file(state_dict)`."""
    g = torch.Generator().manual_seed(3)
    t = {"W_enc": torch.randn(D_IN, D_SAE, generator=g), "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
         "W_dec": torch.randn(D_SAE, D_IN, generator=g), "b_dec": torch.randn(D_IN, generator=g)}
    if saelens_arch == "jumprelu":
        t["threshold"] = torch.rand(D_SAE, generator=g) + 0.05
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.54.0", "sae_lens_training_version": "6.54.0", "model_name": "gpt2",
                        "hook_name": "blocks.0.hook_resid_pre", "hook_head_index": None, "context_size": 128,
                        "prepend_bos": True, "seqpos_slice": [None], "model_from_pretrained_kwargs": {}},
           "architecture": saelens_arch}
    if saelens_arch == "topk":
        cfg.update(k=K, rescale_acts_by_decoder_norm=False)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(tmp_path / "sae_weights.safetensors"))
    sae = load_saelens(tmp_path)
    h = torch.randn(500, D_IN) * 2
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(h), saelens_encode(saelens_arch, t, h))
        f = sae.encode(h)
        torch.testing.assert_close(sae.decode(f), f @ t["W_dec"] + t["b_dec"])
    assert load_saelens_sparsity(tmp_path) is None


def test_architecture_saelens_cannot_express_is_refused_not_mis_mapped(tmp_path):
    sae = make_sae("relu")
    sae.SAELENS_ARCHITECTURE = None    # as a future architecture of this project without a SAELens twin
    with pytest.raises(PipelineError, match="no SAELens equivalent"):
        save_saelens(sae, tmp_path)
    assert not (tmp_path / "cfg.json").exists()


def _edit_cfg(folder, **changes):
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(changes)
    (folder / "cfg.json").write_text(json.dumps(cfg))


def _edit_weights(folder, fn):
    t = load_file(str(folder / "sae_weights.safetensors"))
    fn(t)
    save_file(t, str(folder / "sae_weights.safetensors"))


def _nan(t):
    t["W_dec"][0, 0] = float("nan")


BAD = [
    ("missing cfg", "cfg.json", lambda d: (d / "cfg.json").unlink(), "missing"),
    ("bad JSON", "cfg.json", lambda d: (d / "cfg.json").write_text("{not json"), "not valid JSON"),
    ("JSON list", "cfg.json", lambda d: (d / "cfg.json").write_text("[1, 2]"), "JSON object"),
    ("d_sae not a number", "cfg.json", lambda d: _edit_cfg(d, d_sae="x"), "positive integers"),
    ("unknown architecture", "cfg.json", lambda d: _edit_cfg(d, architecture="temporal"), "'temporal' has no equivalent"),
    ("layer norm", "cfg.json", lambda d: _edit_cfg(d, normalize_activations="layer_norm"), "normalize_activations"),
    ("b_dec flag not a bool", "cfg.json", lambda d: _edit_cfg(d, apply_b_dec_to_input="no"), "apply_b_dec_to_input"),
    ("cfg size disagrees", "sae_weights.safetensors", lambda d: _edit_cfg(d, d_sae=D_SAE * 2), "expected float"),
    ("missing weights", "sae_weights.safetensors", lambda d: (d / "sae_weights.safetensors").unlink(), "missing"),
    ("truncated weights", "sae_weights.safetensors",
     lambda d: (d / "sae_weights.safetensors").write_bytes((d / "sae_weights.safetensors").read_bytes()[:100]),
     "not a readable safetensors"),
    ("missing tensor", "sae_weights.safetensors", lambda d: _edit_weights(d, lambda t: t.pop("b_enc")), "missing ['b_enc']"),
    ("extra tensor", "sae_weights.safetensors", lambda d: _edit_weights(d, lambda t: t.update(x=torch.ones(2))),
     "unexpected ['x']"),
    ("wrong shape", "sae_weights.safetensors", lambda d: _edit_weights(d, lambda t: t.update(W_enc=t["W_enc"].t().contiguous())),
     "W_enc"),
    ("non-finite", "sae_weights.safetensors", lambda d: _edit_weights(d, _nan), "non-finite"),
    ("bad sparsity", "sparsity.safetensors", lambda d: save_file({"sparsity": torch.ones(D_SAE)}, str(d / "sparsity.safetensors")),
     "above 0"),
]


@pytest.mark.parametrize("file,damage,words", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_damaged_or_foreign_folder_is_refused_naming_the_file(tmp_path, file, damage, words):
    save_saelens(make_sae("topk"), tmp_path, torch.zeros(D_SAE))
    damage(tmp_path)
    with pytest.raises(PipelineError) as e:
        load_saelens(tmp_path)
        load_saelens_sparsity(tmp_path)   # reached only when the weights were fine
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / file) in msg and words in msg and "re-run train_sae.py" in msg, msg


def test_jumprelu_threshold_must_be_positive(tmp_path):
    save_saelens(make_sae("jumprelu"), tmp_path)
    _edit_weights(tmp_path, lambda t: t["threshold"].__setitem__(0, 0.0))
    with pytest.raises(PipelineError, match="threshold must be > 0"):
        load_saelens(tmp_path)
