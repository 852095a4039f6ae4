"""Causal edits inside the spliced forward pass, and the interchange test, on hand-made MLPs and SAEs."""
import pandas as pd
import pytest
import torch

from analysis.causal import ablate, ablation_effects, clamp, effects_table
from analysis.concepts import cell_index, concept_set
from analysis.explain import explain_units
from analysis.interchange import depends_on, interchange_suite, interchange_test, resample_variable, uses_any
from dataset.task import Task, ground_truth, sample_inputs
from mlp.mlp_definition import MLPConfig, PointerMLP
from sae.base import SAEConfig
from sae.registry import build_sae, sae_config
from sae.splice import spliced_forward


@pytest.fixture
def pair():
    torch.manual_seed(0)
    mlp = PointerMLP(MLPConfig(d_mlp=16, d_hidden=8)).eval()
    sae = build_sae(sae_config("relu", d_in=8, d_sae=12)).eval()
    return mlp, sae


def test_edit_none_is_the_spliced_model_and_error_term_restores_the_mlp(pair):
    mlp, sae = pair
    x = sample_inputs(64, seed=1)
    with torch.no_grad():
        spliced = mlp.head(sae.decode(sae.encode(mlp.hidden(x)))).squeeze(-1)
        assert torch.allclose(spliced_forward(mlp, sae, x), spliced)
        assert torch.allclose(spliced_forward(mlp, sae, x, with_error=True), mlp(x), atol=1e-5)


def test_ablation_effects_match_editing_each_feature(pair):
    mlp, sae = pair
    x = sample_inputs(64, seed=2)
    with torch.no_grad():
        f = sae.encode(mlp.hidden(x))
    eff = ablation_effects(mlp, sae, f)                                  # [64, 12]
    base = spliced_forward(mlp, sae, x)
    for i in range(sae.cfg.d_sae):
        moved = spliced_forward(mlp, sae, x, ablate(i)) - base
        assert torch.allclose(moved, eff[:, i], atol=1e-5)
        # the same change with the error term added back
        moved_err = spliced_forward(mlp, sae, x, ablate(i), with_error=True) - spliced_forward(mlp, sae, x, with_error=True)
        assert torch.allclose(moved_err, eff[:, i], atol=1e-5)
    assert (eff[f == 0] == 0).all()                                      # an inactive feature has no effect


def test_clamp_moves_prediction_by_output_weight(pair):
    mlp, sae = pair
    x = sample_inputs(16, seed=3)
    with torch.no_grad():
        w = (sae.W_dec @ mlp.head.weight[0])                             # [d_sae]
        f = sae.encode(mlp.hidden(x))
    moved = spliced_forward(mlp, sae, x, clamp({3: 5.0})) - spliced_forward(mlp, sae, x)
    assert torch.allclose(moved, (5.0 - f[:, 3]) * w[3], atol=1e-5)


def test_effects_table_against_a_per_input_computation(pair):
    """Mean zero-ablation effect where each feature's explanation holds / fails / the feature fires,
    computed input by input here."""
    mlp, sae = pair
    x = sample_inputs(3000, seed=4)
    with torch.no_grad():
        f = sae.encode(mlp.hidden(x))                                    # [n, d_sae]
    ex = explain_units(f, x)
    table = effects_table(mlp, sae, f, ex, x)
    eff = ablation_effects(mlp, sae, f).double()                         # [n, d_sae]
    gt, cs = ground_truth(x), concept_set(Task())
    cells = cell_index(gt)
    checked = 0
    for u in range(sae.cfg.d_sae):
        col = int(ex.truth_col[u])
        if col < 0:
            continue
        holds = cs.concept_truth(col, gt, cells)
        if 0 < int(holds.sum()) < len(x):
            assert table.effect_where_true[u] == pytest.approx(float(eff[holds, u].mean()), rel=1e-6, abs=1e-9)
            assert table.effect_where_false[u] == pytest.approx(float(eff[~holds, u].mean()), rel=1e-6, abs=1e-9)
            checked += 1
        fires = f[:, u] > 0
        assert table.effect_where_active[u] == pytest.approx(float(eff[fires, u].mean()), rel=1e-6, abs=1e-9)
    assert checked >= 3


class _IdentityCodeSAE(torch.nn.Module):
    """A stand-in SAE whose features are the hidden units themselves (W_enc = W_dec = I)."""

    def __init__(self, d):
        super().__init__()
        self.cfg = SAEConfig(architecture="relu", d_in=d, d_sae=d)
        self.W_dec = torch.nn.Parameter(torch.eye(d))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))

    def encode(self, h):
        return torch.relu(h)

    def decode(self, f):
        return f @ self.W_dec + self.b_dec


class _OracleMLP(torch.nn.Module):
    """hidden = [relu(a - b), relu(b - a), p1 = 0, 1]: head reads |a - b| from the first two units."""

    def __init__(self):
        super().__init__()
        self.cfg = MLPConfig(d_hidden=4)
        self.task = Task(self.cfg.slots)
        self.head = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
            self.head.bias.zero_()

    def hidden(self, x):
        gt = ground_truth(x)
        d = gt["a-b"].float()
        return torch.stack([d.clamp_min(0), (-d).clamp_min(0), (gt["p1"] == 0).float(), torch.ones(len(x))], 1)

    def forward(self, x):
        return self.head(self.hidden(x)).squeeze(-1)


def test_interchange_on_a_constructed_case():
    mlp, sae = _OracleMLP(), _IdentityCodeSAE(4)
    g = torch.Generator().manual_seed(0)
    x = sample_inputs(500, seed=4)
    x_src = resample_variable(x, "a", g)
    assert (ground_truth(x_src)["a"] != ground_truth(x)["a"]).all()
    assert torch.equal(ground_truth(x_src)["b"], ground_truth(x)["b"])
    # the two a - b units carry everything about a: patching them moves every prediction
    res = interchange_test(mlp, sae, [0, 1], x, x_src)
    assert res["n"] > 300 and res["success"] == 1.0 and res["unpatched"] == 0.0 and res["base_target"] == 0.0
    assert res["n_spliced_right"] == res["n"] and res["success_spliced_right"] == 1.0   # the oracle is always right
    # the pointer unit carries nothing about a: patching it moves none
    assert interchange_test(mlp, sae, [2], x, x_src)["success"] == 0.0
    # half of the code: only inputs whose sign of a - b is carried by unit 0 move
    half = interchange_test(mlp, sae, [0], x, x_src)
    assert 0.0 < half["success"] < 1.0


def test_resample_pointer_keeps_digits():
    g = torch.Generator().manual_seed(0)
    x = sample_inputs(200, seed=6)
    xs = resample_variable(x, "p2", g)
    assert (xs[:, 9] != x[:, 9]).all() and torch.equal(xs[:, :9], x[:, :9])
    xb = resample_variable(x, "b", g)
    assert torch.equal(ground_truth(xb)["a"], ground_truth(x)["a"]) and (ground_truth(xb)["b"] != ground_truth(x)["b"]).all()


def test_interchange_groups_come_from_the_variables_column():
    assert uses_any("a;p1", depends_on(Task())["a"]) and uses_any("a-b", depends_on(Task())["p2"])
    assert not uses_any("b;p2", depends_on(Task())["a"]) and not uses_any("", depends_on(Task())["a"])
    assert uses_any("c1[2]", depends_on(Task())["a"]) and not uses_any("c2[2]", depends_on(Task())["a"])
    # on the oracle, units 0 and 1 carry a - b: a table saying so makes the "a" group move every pair,
    # and the same table with their variables blanked leaves the group empty (nothing moves)
    mlp, sae = _OracleMLP(), _IdentityCodeSAE(4)
    table = pd.DataFrame({"unit": [0, 1, 2, 3], "status": ["alive"] * 4, "variables": ["a-b", "a-b", "p1", ""]})
    res = interchange_suite(mlp, sae, table, seed=0, n_pairs=300)["interchange"]
    assert res["a"]["n_features"] == 2 and res["a"]["success"] == 1.0 and res["p2"]["n_features"] == 2
    assert res["p1"]["n_features"] == 3
    blank = interchange_suite(mlp, sae, table.assign(variables=""), seed=0, n_pairs=300)["interchange"]
    assert blank["a"]["n_features"] == 0 and blank["a"]["success"] == 0.0
