"""reports/probe.html: the MLP and the SAE run in the browser and agree with the Python forward pass.

Tiny random models (every SAE architecture, with non-zero biases) are written into the page, which is
opened offline in headless Chromium (see tests/viz/test_browser.py). `window.probeModel` must match
PyTorch on 100 inputs; the visible controls (type an input, ablate, clamp, add a feature by id) must
show the numbers Python computes, each edit's contribution being (f_new - f) * (W_dec[u] . w_head);
a bad input shows a message and no prediction. Any console error, page error or network request fails.
"""
import pandas as pd
import pytest
import torch

from common.io import PipelineError
from dataset.task import REFERENCE_INPUTS, sample_inputs, target
from mlp.mlp_definition import MLPConfig, PointerMLP
from sae.registry import build_sae, sae_config
from tests.viz.test_browser import browser, open_page  # noqa: F401  (the Chromium fixture)
from viz.probe_page import probe_html, write_probe_page

TOL = 1e-4
D_HIDDEN, D_SAE = 48, 40


def tiny_models(architecture: str):
    g = torch.Generator().manual_seed(1)
    mlp = PointerMLP(MLPConfig(d_mlp=32, d_hidden=D_HIDDEN)).eval()
    settings = {"k": 6} if architecture == "topk" else {}
    sae = build_sae(sae_config(architecture, d_in=D_HIDDEN, d_sae=D_SAE, **settings), generator=g).eval()
    with torch.no_grad():   # non-zero biases and thresholds, so every term of the forward pass is exercised
        sae.b_enc.copy_(0.05 * torch.randn(D_SAE, generator=g))
        sae.b_dec.copy_(0.05 * torch.randn(D_HIDDEN, generator=g))
        if architecture == "jumprelu":
            sae.log_threshold.copy_(torch.log(0.02 + 0.05 * torch.rand(D_SAE, generator=g)))
    return mlp, sae


def features_table() -> pd.DataFrame:
    rows = [{"unit": u, "explanation": f"p1 = {u % 4} & a >= {u % 10}", "score": 0.5 + u / 100, "status": "alive"}
            for u in range(D_SAE)]
    rows[3].update(score=float("nan"), status="dead")
    rows[5].update(explanation="</script><b>not markup</b>")   # must show as text, not end the script
    return pd.DataFrame(rows)


@torch.no_grad()
def reference(mlp, sae, x: torch.Tensor):
    """(mlp [n], spliced [n], f [n, d_sae], head_dot [d_sae]) by PyTorch."""
    h = mlp.hidden(x)                                             # [n, d_hidden]
    f = sae.encode(h)                                             # [n, d_sae]
    spliced = mlp.head(sae.decode(f)).squeeze(-1)                 # [n]
    head_dot = sae.W_dec @ mlp.head.weight[0]                     # [d_sae]
    return mlp(x), spliced, f, head_dot


@torch.no_grad()
def spliced_with(mlp, sae, f_row: torch.Tensor, changes: dict) -> float:
    f = f_row.clone()
    for u, v in changes.items():
        f[u] = v
    return float(mlp.head(sae.decode(f[None])).squeeze())


def value(page, selector: str) -> float:
    return float(page.locator(selector).get_attribute("data-value"))


def assert_close(got, want, what):
    assert abs(got - want) <= TOL, f"{what}: page {got}, python {want}"


@pytest.fixture
def page_of(browser, tmp_path):  # noqa: F811
    opened = []

    def _open(mlp, sae, name="probe"):
        path = write_probe_page(tmp_path / f"{name}.html", mlp, sae, features_table(), REFERENCE_INPUTS,
                                nav=[("index.html", "Overview")])
        context, page, errors, page_errors, blocked = open_page(browser, path.as_uri(), tmp_path / f"{name}.png")
        opened.append((context, errors, page_errors, blocked))
        page.wait_for_function("() => typeof window.probeModel === 'function'")
        return page
    yield _open
    problems = []
    for context, errors, page_errors, blocked in opened:
        context.close()
        for kind, items in (("console error", errors), ("page error", page_errors), ("network request", blocked)):
            problems += [f"{kind}: {t}" for t in items]
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.parametrize("architecture", ["relu", "topk", "jumprelu"])
def test_page_forward_matches_python(page_of, architecture):
    mlp, sae = tiny_models(architecture)
    page = page_of(mlp, sae)
    x = sample_inputs(100, seed=7)
    y, spliced, f, _ = reference(mlp, sae, x)
    got = page.evaluate("xs => xs.map(x => window.probeModel(x))", x.tolist())
    assert len(got) == 100
    worst = 0.0
    for i, r in enumerate(got):
        assert "error" not in r, r
        worst = max(worst, abs(r["mlp"] - float(y[i])), abs(r["spliced"] - float(spliced[i])),
                    max(abs(a - b) for a, b in zip(r["features"], f[i].tolist())))
        assert [a > 0 for a in r["features"]] == (f[i] > 0).tolist(), f"input {i}: active set differs"
    assert worst <= TOL, f"largest page-vs-python difference {worst:.2e}"
    if architecture == "topk":
        assert all(sum(a > 0 for a in r["features"]) <= sae.cfg.k for r in got)
    assert page.evaluate("window.probeModel([1, 2, 3])")["error"]


@pytest.mark.browser
@pytest.mark.parametrize("architecture", ["relu", "topk", "jumprelu"])
def test_controls_show_pythons_numbers(page_of, architecture, tmp_path):
    mlp, sae = tiny_models(architecture)
    page = page_of(mlp, sae)
    x = torch.tensor([[3, 1, 4, 1, 2, 5, 9, 2, 6, 3]])
    y, spliced, f, head_dot = reference(mlp, sae, x)
    f0 = f[0]
    page.fill("#x-input", "3, 1, 4, 1, 2,  5 9 2 6 3")
    assert page.locator("#msg").inner_text() == ""
    assert value(page, "#out-target") == int(target(x)[0])
    assert_close(value(page, "#out-mlp"), float(y[0]), "MLP prediction")
    assert_close(value(page, "#out-spliced"), float(spliced[0]), "spliced prediction")
    assert_close(value(page, "#out-edited"), float(spliced[0]), "edited prediction with no edits")
    assert value(page, "#out-edit-total") == 0

    rows = page.locator("#feats tbody tr")
    shown = [int(rows.nth(i).get_attribute("data-unit")) for i in range(rows.count())]
    active = [int(u) for u in torch.nonzero(f0 > 0).flatten()]
    assert sorted(shown) == active, "the table lists exactly the active features"
    assert [float(f0[u]) for u in shown] == sorted((float(f0[u]) for u in shown), reverse=True)
    for u in shown:
        row = f'#feats tr[data-unit="{u}"]'
        assert_close(value(page, f"{row} td.act"), float(f0[u]), f"activation of feature {u}")
        assert_close(value(page, f"{row} td.contrib"), float(f0[u] * head_dot[u]), f"contribution of feature {u}")
    assert page.locator("#feats b").count() == 0, "an explanation was inserted as markup"

    # ablate the strongest feature, clamp the second, add an inactive one by id and clamp it
    assert len(shown) >= 2, "the tiny SAE should have at least two active features on this input"
    u, v = shown[0], shown[1]
    w = next(i for i in range(D_SAE) if f0[i] == 0)
    page.check(f'#feats tr[data-unit="{u}"] input.ablate')
    page.fill(f'#feats tr[data-unit="{v}"] input.clamp', "2.5")
    page.fill("#add-id", str(w))
    page.click("#add-btn")
    page.fill(f'#feats tr[data-unit="{w}"] input.clamp', "1.25")
    want = {u: (0 - float(f0[u])) * float(head_dot[u]), v: (2.5 - float(f0[v])) * float(head_dot[v]),
            w: 1.25 * float(head_dot[w])}
    for unit, effect in want.items():
        assert_close(value(page, f'#feats tr[data-unit="{unit}"] td.edit-effect'), effect, f"edit of feature {unit}")
    edited = spliced_with(mlp, sae, f0, {u: 0.0, v: 2.5, w: 1.25})
    assert_close(value(page, "#out-edited"), edited, "edited spliced prediction")
    assert_close(value(page, "#out-edit-total"), sum(want.values()), "total of the edits")
    assert_close(edited - float(spliced[0]), sum(want.values()), "linearity of the head")
    assert page.locator("#feats tbody tr.edited").count() == 3

    # edits that change nothing contribute nothing; reset removes them all
    page.uncheck(f'#feats tr[data-unit="{u}"] input.ablate')
    assert page.locator(f'#feats tr[data-unit="{u}"] td.edit-effect').get_attribute("data-value") is None
    page.click("#reset-btn")
    assert page.locator("#feats tbody tr.edited").count() == 0
    assert_close(value(page, "#out-edited"), float(spliced[0]), "edited prediction after reset")
    page.fill("#add-id", str(D_SAE))
    page.click("#add-btn")
    assert str(D_SAE - 1) in page.locator("#add-msg").inner_text()

    # a bad input: a message, and no number in any output
    for bad, says in (("1 2 3", "expected 10 integers"), ("8 9 5 1 7 2 9 4 7 1", "p1"),
                      ("8 9 5 1 3 2 9 4 7 4", "p2"), ("8 9 x 1 3 2 9 4 7 1", "integer"),
                      ("8 9 5 1 3 2 9 4 10 1", "0-9"), ("8 9 5 1 3 2 9 4 1.5 1", "integer")):
        page.fill("#x-input", bad)
        assert says in page.locator("#msg").inner_text(), (bad, page.locator("#msg").inner_text())
        for out in ("#out-mlp", "#out-spliced", "#out-edited", "#out-target"):
            assert page.locator(out).get_attribute("data-value") is None, f"{out} shows a number for {bad!r}"
            assert not any(c.isdigit() for c in page.locator(out).inner_text())
        assert page.locator("#feats tbody tr").count() == 0

    # a reference input restores a prediction
    refs = page.locator("#refs button")
    assert refs.count() == len(REFERENCE_INPUTS)
    refs.nth(1).click()
    x_ref = torch.tensor([REFERENCE_INPUTS[1]])
    assert page.input_value("#x-input").split() == [str(d) for d in REFERENCE_INPUTS[1]]
    assert_close(value(page, "#out-mlp"), float(mlp(x_ref).detach()[0]), "MLP prediction of a reference input")
    assert "+ raises the prediction" in page.inner_text("body")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=str(tmp_path / f"probe_{architecture}.png"), full_page=True)


def test_page_refuses_mismatched_models_and_tables():
    mlp, sae = tiny_models("relu")
    other = build_sae(sae_config("relu", d_in=D_HIDDEN + 1, d_sae=8))
    with pytest.raises(PipelineError, match="d_in"):
        probe_html(mlp, other, features_table(), REFERENCE_INPUTS)
    with pytest.raises(PipelineError, match="explanation"):
        probe_html(mlp, sae, features_table().drop(columns=["explanation"]), REFERENCE_INPUTS)
    text = probe_html(mlp, sae, features_table(), REFERENCE_INPUTS)
    assert text.count("</script>") == 2 and "http" not in text
