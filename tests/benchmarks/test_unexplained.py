"""benchmarks/unexplained.py sorts hand-built units with known kinds."""
import numpy as np
import pandas as pd
import torch

from analysis.concepts import explanation_truth
from benchmarks.unexplained import KINDS, classify, two_sided
from dataset.task import ground_truth, sample_inputs

N = 6000
X_CHOOSE, X = sample_inputs(N, seed=11), sample_inputs(N, seed=12)


def _acts(x, rules):
    """[n, U] activations: unit u is 1 where rules[u](ground truth) holds, else 0."""
    gt = ground_truth(x)
    return torch.stack([rule(gt).float() for rule in rules], dim=1)


def _classify(rules, explanations):
    """classify() on units built by `rules`, labelled with `explanations` (scored here on the analysis inputs)."""
    f_c, f = _acts(X_CHOOSE, rules), _acts(X, rules)
    truth = explanation_truth(explanations, X)
    score = [float(two_sided(f[:, u] > 0, truth[:, u:u + 1])[0]) for u in range(len(rules))]
    table = pd.DataFrame({"status": "alive", "score": score, "explanation": explanations,
                          "concept_explanation": explanations, "split_explanation": explanations, "corr": np.nan})
    return classify(f_c, X_CHOOSE, f, X, table).set_index("unit")


def test_union_of_a_pointer_and_a_digit_is_a_mixture():
    # (p1 = 2 OR c1[0] = 3 scores 0.87 against p1 = 2 alone: explained; a wider digit condition is not)
    out = _classify([lambda g: (g["p1"] == 2) | (g["c1[0]"] >= 6)], ["p1 = 2"])
    assert out.loc[0, "score"] < 0.8 and out.loc[0, "kind"] == "mixture with digits"
    assert out.loc[0, "found"] == "p1 = 2 OR c1[0] >= 6" and out.loc[0, "found_score"] > 0.99


def test_pointer_unit_with_a_hole_that_child_units_fill_is_an_absorption_hole():
    # p1 = 2 silent where p2 is 1 or 2 (recall 0.5, score ~0.67); two pair units fire there
    parent = lambda g: (g["p1"] == 2) & (g["p2"] != 1) & (g["p2"] != 2)
    kids = [lambda g: (g["p1"] == 2) & (g["p2"] == 1), lambda g: (g["p1"] == 2) & (g["p2"] == 2)]
    out = _classify([parent, *kids], ["p1 = 2", "p1 = 2 & p2 = 1", "p1 = 2 & p2 = 2"])
    assert list(out.index) == [0]                      # the pair units are explained: not classified
    assert out.loc[0, "score"] < 0.8 and out.loc[0, "kind"] == "absorption hole"
    listed = out.loc[0, "found"].split("filled by ")[1].split()         # "unit:share of the hole" each
    assert sorted(int(v.split(":")[0]) for v in listed) == [1, 2]
    assert abs(sum(float(v.split(":")[1]) for v in listed) - 1) < 0.02  # the two halves of the hole
    assert out.loc[0, "found_score"] > 0.99
    # the same hole with no unit firing in it is not absorption
    alone = _classify([parent], ["p1 = 2"])
    assert alone.loc[0, "kind"] != "absorption hole" and not alone.loc[0, "meets absorption hole"]


def test_noise_unit_is_polysemantic():
    g = torch.Generator().manual_seed(0)
    noise_c, noise = torch.rand(N, generator=g) < 0.2, torch.rand(N, generator=g) < 0.2
    table = pd.DataFrame({"status": ["alive"], "score": [0.3], "explanation": ["a >= 5"],
                          "concept_explanation": ["a >= 5"], "split_explanation": ["a >= 5"], "corr": [np.nan]})
    out = classify(noise_c.float()[:, None], X_CHOOSE, noise.float()[:, None], X, table)
    assert out.loc[0, "kind"] == KINDS[-1] and not out.filter(like="meets").to_numpy().any()


def test_explained_and_dead_units_are_not_classified():
    table = pd.DataFrame({"status": ["alive", "dead"], "score": [0.9, np.nan], "explanation": ["p1 = 2", ""],
                          "concept_explanation": ["p1 = 2", ""], "split_explanation": ["p1 = 2", ""],
                          "corr": [np.nan, np.nan]})
    f_c, f = _acts(X_CHOOSE, [lambda g: g["p1"] == 2] * 2), _acts(X, [lambda g: g["p1"] == 2] * 2)
    f_c[:, 1], f[:, 1] = 0, 0
    assert classify(f_c, X_CHOOSE, f, X, table).empty
