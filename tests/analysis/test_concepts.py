"""The concept grammar: names, deduplication, and truth against the task's own ground truth."""
import torch

from analysis.concepts import CORE_CONCEPTS, N_CELLS, cell_ground_truth, cell_index, concept_set
from dataset.task import ground_truth, sample_inputs


def test_truth_matrix_matches_direct_evaluation():
    cs = concept_set()
    x = sample_inputs(3000, seed=11)
    gt = ground_truth(x)
    T = cs.truth(x)                                                      # [n, C]
    assert T.shape == (3000, len(cs)) and T.dtype == torch.bool
    checks = {
        "p1 = 2": gt["p1"] == 2,
        "p1 = 2 & a >= 5": (gt["p1"] == 2) & (gt["a"] >= 5),
        "a >= 5 & p1 = 2": (gt["p1"] == 2) & (gt["a"] >= 5),            # either order of the conditions
        "target = 0": gt["target"] == 0,                                # stored as its alias a - b = 0
        "a - b >= 1": gt["a"] > gt["b"],
        "b <= 3 & target >= 6": (gt["b"] <= 3) & (gt["target"] >= 6),
        "c2[1] = 7": x[:, 6] == 7,
        "c1[3] >= 4": x[:, 3] >= 4,
    }
    for name, expected in checks.items():
        assert torch.equal(T[:, cs.column(name)], expected), name


def test_grammar_is_deduplicated_and_never_empty():
    cs = concept_set()
    cols = cs.cell_truth.T.numpy()
    assert len({c.tobytes() for c in cols}) == cs.n_cell                # no two identical cell concepts
    assert cs.cell_truth.any(0).all()                                   # no always-false concept
    assert not cs.cell_truth.all(0).any()                               # no always-true concept
    assert len(set(cs.names)) == len(cs.names)
    assert 1000 < len(cs) < 20000                                       # thousands, not millions
    assert cs.names[cs.column("a >= 9")] == "a = 9"                     # the simpler spelling is kept


def test_core_concepts_and_cells():
    cs = concept_set()
    assert len(CORE_CONCEPTS) == 38
    for name in CORE_CONCEPTS:
        cs.column(name)                                                 # all exist
    cg = cell_ground_truth()
    assert torch.equal(cell_index(cg), torch.arange(N_CELLS))
    x = sample_inputs(500, seed=3)
    gt = ground_truth(x)
    c = cell_index(gt)
    for var in ("p1", "p2", "a", "b", "a-b", "target"):
        assert torch.equal(cg[var][c], gt[var])
