"""The known-dictionary benchmark (benchmarks/synthetic.py) and the architectures it ranks."""
import pytest
import torch

from benchmarks.synthetic import SyntheticConfig, dictionary_recovery, make_synthetic, score
from sae.registry import sae_config
from sae.training import train
from tests.helpers import tiny_train_config

TINY = SyntheticConfig(d_in=8, n_features=16, mean_active=2, n_train=2000, n_eval=200, seed=3)


def test_same_seed_same_data_other_seed_other_data():
    a, b = make_synthetic(TINY), make_synthetic(TINY)
    assert torch.equal(a["train"], b["train"]) and torch.equal(a["dictionary"], b["dictionary"])
    c = make_synthetic(SyntheticConfig(**{**TINY.__dict__, "seed": 4}))
    assert not torch.equal(a["train"], c["train"])


def test_recovery_is_one_for_the_true_dictionary_and_low_for_a_random_one():
    d = make_synthetic(TINY)["dictionary"]
    shuffled = d[torch.randperm(len(d))] * 3.0                      # order and norm do not matter
    same = dictionary_recovery(d, shuffled)
    assert same["recovered"] == 1.0 and abs(same["mmcs"] - 1.0) < 1e-5
    random = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert dictionary_recovery(d, random)["recovered"] < 0.5


@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_batchtopk_keeps_batch_times_k_in_training_stores_a_threshold_and_moves_towards_the_dictionary(arch):
    data = make_synthetic(TINY)
    settings = {"k": 2, **({"prefixes": (8, 32)} if arch == "matryoshka" else {})}
    l0s = []
    sae, _ = train(sae_config(arch, d_in=8, d_sae=32, **settings), data["train"],
                   tiny_train_config(steps=300, batch_size=64, n_eval=1, dead_window=500, resample_at=(), lr=5e-3),
                   on_step=lambda step, total, stats: l0s.append(stats["l0"]))
    assert all(l0 <= 2 + 1e-9 for l0 in l0s)                        # at most batch * k kept, k on average
    assert float(sae.threshold) > 0                                 # the inference threshold, in the state dict
    assert "threshold" in sae.state_dict()
    out = score(sae, data)
    untrained = dictionary_recovery(data["dictionary"], torch.randn(32, 8, generator=torch.Generator().manual_seed(1)))
    assert out["fvu"] < 0.5 and 1 <= out["l0"] <= 4
    assert out["mmcs"] > untrained["mmcs"] + 0.1 and out["recovered"] > untrained["recovered"]


def test_bad_matryoshka_prefixes_are_refused():
    for bad in ((8, 4, 32), (8, 64), (0, 32), (8, 16)):
        with pytest.raises(ValueError, match="prefixes"):
            sae_config("matryoshka", d_in=8, d_sae=32, prefixes=bad)
    assert sae_config("matryoshka", d_in=8, d_sae=2048).prefixes == (64, 256, 1024, 2048)


@pytest.mark.parametrize("arch", ["topk", "relu"])
def test_an_sae_does_not_start_at_the_true_dictionary(arch):
    """The data has its own seed stream: with the data and the SAE both at seed 0, torch's generator
    must not hand the SAE the true dictionary as its initial decoder (it did: every architecture
    'recovered' 100% of it after one step)."""
    cfg = SyntheticConfig(d_in=32, n_features=64, mean_active=4, n_train=2000, n_eval=500, seed=0)
    data = make_synthetic(cfg)
    sae, _ = train(sae_config(arch, d_in=32, d_sae=128, **({"k": 4} if arch == "topk" else {})), data["train"],
                   tiny_train_config(steps=1, lr=1e-9, n_eval=1, resample_at=(), seed=0))
    assert score(sae, data)["recovered"] < 0.1
