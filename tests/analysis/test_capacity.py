"""analysis.capacity: the layer's dimensionality and the share of it the (p1, p2, a, b) cell explains."""
import pytest
import torch

from analysis.capacity import layer_capacity
from dataset.task import ground_truth, sample_inputs


def test_a_layer_made_of_the_cell_in_three_directions():
    x = sample_inputs(20000, seed=5)
    gt = ground_truth(x)
    g = torch.Generator().manual_seed(0)
    D = torch.randn(3, 40, generator=g)
    z = torch.stack([gt["a"].float(), gt["b"].float(), (gt["p1"] == 2).float()], dim=1)   # functions of the cell
    out = layer_capacity(z @ D, x)
    assert out["hidden_pcs_for_99"] <= 3 and out["hidden_variance_explained_by_cell"] == pytest.approx(1.0, abs=1e-6)


def test_noise_outside_the_cell_is_not_credited_to_it():
    x = sample_inputs(20000, seed=6)
    gt = ground_truth(x)
    g = torch.Generator().manual_seed(1)
    cell_part = gt["a"].float()[:, None] * torch.ones(1, 8)                  # variance 8 * var(a) = 8 * 8.25
    noise = torch.randn(20000, 8, generator=g) * (8.25 ** 0.5)                # the same variance, not the cell's
    out = layer_capacity(cell_part + noise, x)
    assert out["hidden_variance_explained_by_cell"] == pytest.approx(0.5 + 0.5 * 1600 / 20000, abs=0.03)
    assert out["hidden_pcs_for_99"] >= 8                                      # the noise fills every direction
