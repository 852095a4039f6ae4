"""The concept grammar: names, deduplication, and truth against the task's own ground truth."""
import torch

from analysis.concepts import cell_ground_truth, cell_index, concept_set, core_concepts
from dataset.task import Task, ground_truth, sample_inputs

TASK = Task()   # the default task, L = 4


def test_truth_matrix_matches_direct_evaluation():
    cs = concept_set(TASK)
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
    cs = concept_set(TASK)
    cols = cs.cell_truth.T.numpy()
    assert len({c.tobytes() for c in cols}) == cs.n_cell                # no two identical cell concepts
    assert cs.cell_truth.any(0).all()                                   # no always-false concept
    assert not cs.cell_truth.all(0).any()                               # no always-true concept
    assert len(set(cs.names)) == len(cs.names)
    assert 1000 < len(cs) < 20000                                       # thousands, not millions
    assert cs.names[cs.column("a >= 9")] == "a = 9"                     # the simpler spelling is kept


def test_core_concepts_and_cells():
    cs = concept_set(TASK)
    assert len(core_concepts(TASK)) == 38
    for name in core_concepts(TASK):
        cs.column(name)                                                 # all exist
    cg = cell_ground_truth(TASK)
    assert torch.equal(cell_index(cg, TASK), torch.arange(TASK.n_cells))
    x = sample_inputs(500, seed=3)
    gt = ground_truth(x)
    c = cell_index(gt)
    for var in ("p1", "p2", "a", "b", "a-b", "target"):
        assert torch.equal(cg[var][c], gt[var])


def test_split_aware_grammar_adds_pointer_pair_and_value_concepts():
    two, split = concept_set(TASK), concept_set(TASK, pointer_pairs=True)
    assert split.names[:two.n_cell] == two.names[:two.n_cell]          # the two-condition grammar, then the new ones
    new = split.names[two.n_cell:split.n_cell]
    assert new and all(n.startswith("p1 = ") and " & p2 = " in n and n.count(" & ") == 2 for n in new)
    cg = cell_ground_truth(TASK)
    col = split.column("p1 = 3 & p2 = 1 & a - b <= -1")
    expected = (cg["p1"] == 3) & (cg["p2"] == 1) & (cg["a-b"] <= -1)
    assert torch.equal(split.cell_truth[:, col], expected)
    # concepts with the same truth are kept once, under the first spelling
    assert split.names[split.column("p1 = 3 & p2 = 1 & target = 0")] == "p1 = 3 & p2 = 1 & a - b = 0"
    assert len({c.tobytes() for c in split.cell_truth.T.numpy()}) == split.n_cell
