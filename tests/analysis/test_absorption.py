"""Ground-truth absorption on hand-built units whose answers are known."""
import math

import pytest
import torch

from analysis.absorption import Hierarchy, absorbed_by, absorption, hierarchies_of
from analysis.concepts import explanation_truth
from analysis.controls import random_direction_acts
from dataset.task import Task, ground_truth, sample_inputs

P1_0 = Hierarchy("pointer", "p1 = 0", tuple(f"p1 = 0 & p2 = {j}" for j in range(4)))
SIGN = Hierarchy("sign", "a - b >= 1", tuple(f"a - b = {v}" for v in range(1, 10)))


def _units(x, hole_value=0.0):
    """[n, 3]: 0 the parent p1 = 0 (at `hole_value` on its child p1 = 0 & p2 = 1, 2 elsewhere), 1 the child
    p1 = 0 & p2 = 1, 2 the sign a > b (no hole)."""
    gt = ground_truth(x)
    parent, child = gt["p1"] == 0, (gt["p1"] == 0) & (gt["p2"] == 1)
    u0 = torch.where(child, torch.tensor(hole_value), 2.0) * parent
    return torch.stack([u0, child.float(), (gt["a-b"] >= 1).float()], dim=1)


def _share(x, child):
    gt = ground_truth(x)
    parent = gt["p1"] == 0
    return float(((gt["p2"] == child) & parent).sum() / parent.sum())


@pytest.fixture(scope="module")
def streams():
    return sample_inputs(6000, seed=11), sample_inputs(6000, seed=12)


def test_an_absorbed_child_scores_exactly_its_share_of_the_parent(streams):
    xc, x = streams
    ab = absorption(_units(xc), xc, _units(x), x, hierarchies=(P1_0, SIGN))
    t = ab.table.set_index("child")
    share = _share(x, 1)
    s = ab.summary("features")
    assert s["features_absorption_full_pointer"] == pytest.approx(share, abs=1e-6)
    assert s["features_absorption_partial_pointer"] == pytest.approx(share, abs=1e-6)
    assert s["features_absorption_full_sign"] == 0 and s["features_absorption_partial_sign"] == 0
    assert s["features_absorption_full"] == pytest.approx(share / 2, abs=1e-6)      # mean of the two families
    assert t.at["p1 = 0 & p2 = 1", "full"] == 1 and t.at["p1 = 0 & p2 = 1", "absorbed"]
    assert t.at["p1 = 0 & p2 = 1", "child_units"] == "1" and (t["parent_unit"][:4] == 0).all()
    assert s["features_absorption_absorbed_children"] == 1 and s["features_absorption_parents_represented"] == 2


def test_no_hole_scores_zero(streams):
    xc, x = streams
    units = lambda x: _units(x, hole_value=2.0)
    s = absorption(units(xc), xc, units(x), x, hierarchies=(P1_0, SIGN)).summary("f")
    assert s["f_absorption_full"] == 0 and s["f_absorption_partial"] == 0 and s["f_absorption_absorbed_children"] == 0


def test_a_weak_parent_is_partly_absorbed(streams):
    # the parent fires at half its typical level (1 of 2) on one child, which a child unit carries in full
    xc, x = streams
    units = lambda x: _units(x, hole_value=1.0)
    s = absorption(units(xc), xc, units(x), x, hierarchies=(P1_0,)).summary("f")
    assert s["f_absorption_full"] == 0
    assert s["f_absorption_partial"] == pytest.approx(0.5 * _share(x, 1), abs=1e-6)


def test_neurons_and_random_directions_run_through_the_same_function(streams):
    xc, x = streams
    # the neurons' rule: above a fraction of the unit's max counts as firing, so a faint parent is silent
    units = lambda x: _units(x, hole_value=0.1)
    faint = absorption(units(xc), xc, units(x), x, threshold_fraction=0.2, hierarchies=(P1_0,)).summary("n")
    assert faint["n_absorption_full"] == pytest.approx(_share(x, 1), abs=1e-6)
    assert absorption(units(xc), xc, units(x), x, hierarchies=(P1_0,)).summary("n")["n_absorption_full"] == 0
    # random directions of a layer holding nothing of the task stand for no parent: nothing to measure
    g = torch.Generator().manual_seed(0)
    h_c, h = torch.rand(len(xc), 16, generator=g), torch.rand(len(x), 16, generator=g)
    r_c, r = random_direction_acts(h_c, h, [0.25] * 8, seed=0)
    ab = absorption(r_c, xc, r, x)
    s = ab.summary("random_directions")
    assert len(ab.table) == sum(len(hh.children) for hh in hierarchies_of(Task()))
    assert s["random_directions_absorption_parents_represented"] == 0 and s["random_directions_absorption_full"] is None
    assert ab.table["full"].isna().all()


def test_absorbed_by_names_the_unit_filling_the_hole(streams):
    xc, x = streams
    names = ["p1 = 0", "p1 = 0 & p2 = 1", "a - b >= 1"]
    out = absorbed_by(_units(xc), _units(x), explanation_truth(names, xc), explanation_truth(names, x), ids=[10, 11, 12])
    assert out.at[0, "absorbed_by"] == "11:1.00"
    assert out.at[0, "hole_share"] == pytest.approx(_share(x, 1), abs=1e-6)
    assert out.at[1, "absorbed_by"] == "" and out.at[1, "hole_share"] == 0
    none = absorbed_by(_units(xc), _units(x), torch.zeros(len(xc), 3, dtype=torch.bool), torch.zeros(len(x), 3, dtype=torch.bool))
    assert none["hole_share"].map(math.isnan).all() and (none["absorbed_by"] == "").all()
