"""OrtSAE's orthogonality penalty against a hand-written one."""
import pytest
import torch

from sae.ortsae import orthogonality_penalty
from sae.registry import build_sae
from tests.helpers import tiny_sae, tiny_sae_config


def _by_hand(W: torch.Tensor, groups) -> float:
    """mean over rows of the squared largest cosine with another row of its group, written as loops."""
    total = 0.0
    for g in groups:
        for i in g:
            total += max(float(torch.nn.functional.cosine_similarity(W[i], W[j], dim=0)) for j in g if j != i) ** 2
    return total / W.shape[0]


def test_the_loss_is_topk_loss_plus_the_hand_written_penalty():
    sae = tiny_sae("ortsae", d_in=16, d_sae=12, ortho_coeff=0.7)
    topk = build_sae(tiny_sae_config("topk", d_in=16, d_sae=12))
    topk.load_state_dict(sae.state_dict())
    h = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    var, dead = h.var(0).sum(), torch.zeros(12, dtype=torch.bool)
    loss, _, parts = sae.loss(h, var, dead)
    base, _, _ = topk.loss(h, var, dead)
    penalty = _by_hand(sae.W_dec.detach(), [list(range(12))])
    assert parts["ortho"] == pytest.approx(penalty, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(base.detach()) + 0.7 * penalty, rel=1e-5)


def test_chunks_compare_rows_only_within_their_chunk():
    W = torch.randn(10, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(5)
    got = float(orthogonality_penalty(W, chunks=3))       # 3 chunks of 3; the 10th row in none
    torch.manual_seed(5)
    order = torch.randperm(10).tolist()
    assert got == pytest.approx(_by_hand(W, [order[0:3], order[3:6], order[6:9]]), rel=1e-5)
    # orthogonal rows cost nothing; a repeated row costs 1 for each copy
    assert float(orthogonality_penalty(torch.eye(6))) == 0
    assert float(orthogonality_penalty(torch.cat([torch.eye(4), torch.eye(4)[:1]]))) == pytest.approx(2 / 5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="ortho_chunks"):
        tiny_sae_config("ortsae", d_sae=8, ortho_chunks=5)
    with pytest.raises(ValueError, match="ortho_coeff"):
        tiny_sae_config("ortsae", d_sae=8, ortho_coeff=-1.0)
