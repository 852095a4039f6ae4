"""The reports in a real browser: Debian's Chromium driven by Playwright, offline.

Every page of a tiny run's reports is opened from a file:// URL. The test fails on any console
error, uncaught page error, request that is not file:// (the reports must work with no network:
such requests are blocked and reported), a plotly div without its drawn SVG, or a page with fewer
plots than the reports stage says it wrote. A full-page screenshot of each page is saved in the
test's temporary folder (path printed) for a person to look at.

Needs /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it) and the playwright
Python package; skipped with the reason otherwise, except under CI (CI=true), where a missing
browser is a failure: CI must prove the reports open.
"""
import os
import shutil
from pathlib import Path

import pytest

import feature_splitting
from common.paths import RunPaths
from tests.helpers import OTHER_SLOTS, add_labelled_matryoshka
from tests.viz.test_feature_reports import shared_reports_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} not found under CI: .ci/run (./workflow.sh test) should have installed it")
        pytest.skip(f"{CHROMIUM} not found: install it with `apt-get install -y chromium` to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def reports(tiny_run, tmp_path_factory):
    return shared_reports_run(tiny_run, tmp_path_factory)


@pytest.fixture(scope="module")
def reports_other_slots(tiny_run_other_slots, tmp_path_factory):
    """The reports of the tiny run on a task of another L (tests.helpers.OTHER_SLOTS)."""
    return shared_reports_run(tiny_run_other_slots, tmp_path_factory, "shared_reports_run_other_slots")


def open_page(browser, url: str, shot: Path, width: int = 1400):
    """Load `url`; return (console errors, page errors, blocked requests, page)."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors, page_errors, blocked = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))

    local = ("file://", "data:", "blob:", "about:")
    page.on("request", lambda r: blocked.append(r.url) if not r.url.startswith(local) else None)

    def route(r):   # abort anything remote, so a page that needs the network shows it
        if r.request.url.startswith(local):
            r.continue_()
        else:
            r.abort()
    context.route("**/*", route)
    page.goto(url, wait_until="load")
    return context, page, errors, page_errors, blocked


def check_plots(page, expected: int) -> None:
    """Wait until every plotly div has drawn its SVG; exactly `expected` plots on the page."""
    page.wait_for_function(
        "() => { const d = [...document.querySelectorAll('.plotly-graph-div')];"
        " return d.length > 0 && d.every(x => x.querySelector('svg.main-svg')); }", timeout=30000)
    divs = page.query_selector_all(".plotly-graph-div")
    missing = [d.get_attribute("id") for d in divs if d.query_selector("svg.main-svg") is None]
    assert not missing, f"plots without their SVG: {missing}"
    assert len(divs) == expected, f"expected {expected} plots, found {len(divs)}"


def test_every_report_opens_offline_without_errors(browser, reports, tmp_path):
    check_every_report(browser, reports, tmp_path)


def test_every_report_of_a_task_of_other_slots_opens_offline(browser, reports_other_slots, tmp_path):
    """The same pages at L = 3: grids by pointer value, the Sankey's combinations, the probe's input."""
    from mlp.mlp_definition import load_mlp
    assert load_mlp(reports_other_slots[0].mlp).task.slots == OTHER_SLOTS
    check_every_report(browser, reports_other_slots, tmp_path)


def check_every_report(browser, reports, tmp_path) -> None:
    from mlp.mlp_definition import load_mlp
    paths, stats = reports
    task = load_mlp(paths.mlp).task
    # plots each page must show: index (monosemanticity bars, score histogram), map (features, neurons,
    # p1-p2 x a, p1-p2 x b), distributions
    # (1 density histogram, 2 activation grids), Sankey, training (MLP curves; SAE curves when its file
    # has a history), probe (no plotly: its own forward pass and tables)
    from sae.sae_definition import sae_metrics_of
    pages = {paths.index_html.name: 2, paths.heatmap_html.name: 4, paths.distributions_html.name: 3,
             paths.sankey_html.name: 1, paths.training_html.name: 1 + bool(sae_metrics_of(paths.sae).get("history")),
             paths.probe_html.name: 0}
    assert stats["plots"] == pages
    pages[paths.compare_html.name] = 1                  # written beside them: every SAE of the run compared
    problems = []
    for name, n_plots in sorted(pages.items()):
        shot = tmp_path / f"{Path(name).stem}.png"
        context, page, errors, page_errors, blocked = open_page(browser, (paths.reports_dir / name).as_uri(), shot)
        try:
            if n_plots:
                check_plots(page, n_plots)
            if name == paths.index_html.name:
                check_dashboard(page, stats)
            if name == paths.sankey_html.name:
                check_sankey_filters(page)
            if name == paths.probe_html.name:
                check_probe(page, task)
            if name == paths.compare_html.name:
                rows = page.locator("table.compare tbody tr")
                assert rows.count() == 2 and rows.first.inner_text().startswith("default")
                assert rows.last.inner_text().startswith("neurons")
                assert "full absorption" in page.locator("table.compare thead").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
        for kind, items in (("console error", errors), ("page error", page_errors), ("network request", blocked)):
            problems += [f"{name}: {kind}: {t}" for t in items]
    print(f"\nscreenshots in {tmp_path}")
    assert not problems, "\n".join(problems)


def test_the_splitting_page_opens_offline_without_errors(browser, reports, tmp_path):
    """feature_splitting.py's page on a copy of the reports run with a Matryoshka SAE added."""
    paths = RunPaths(shutil.copytree(reports[0].root, tmp_path / "run"))
    add_labelled_matryoshka(paths)
    feature_splitting.main(feature_splitting.parse_args(["--run-dir", str(paths.root), "--quiet"]))
    context, page, errors, page_errors, blocked = open_page(browser, paths.splitting_html.as_uri(), tmp_path / "s.png")
    try:
        check_plots(page, 1)                                            # one set of links: the prefixes
        assert page.locator("section h2").first.inner_text().startswith("mat: Matryoshka prefixes")
        page.screenshot(path=str(tmp_path / "splitting.png"), full_page=True)
    finally:
        context.close()
    assert not (errors or page_errors or blocked), (errors, page_errors, blocked)


def check_dashboard(page, stats) -> None:
    """Cards are drawn, the search filters them, and every report is linked."""
    n_cards = stats["alive_feature_cards"]
    shown = page.locator("#cards .card").count()
    assert shown == min(n_cards, 48), f"{shown} cards drawn for {n_cards} alive features"
    first_id = page.locator("#cards .card").first.get_attribute("data-id")
    page.fill("#q", first_id)   # an id alone finds that feature first
    page.wait_for_timeout(100)
    assert page.locator("#cards .card").count() >= 1
    assert first_id in page.locator("#cards .card").first.inner_text()
    # a card with an explanation says what fills its hole (absorbed by ...)
    assert page.locator("#cards .card", has_text="absorbed by: silent on").count() >= 1
    page.fill("#q", "no feature is explained by this")
    page.wait_for_timeout(100)
    assert page.locator("#cards .card").count() == 0
    page.fill("#q", "")
    for target in ("compare.html", "logic_circuit_map.html", "circuit_bell_curves.html", "uhd_bold_sankey.html", "probe.html",
                   "training.html", "circuit_trace_detailed.xlsx", "features.csv"):
        assert page.locator(f'a[href="{target}"]').count() >= 1, f"index.html does not link {target}"


def check_probe(page, task) -> None:
    """The probe page ran the models on its first reference input: a prediction is shown, and the page
    refuses an input of the wrong length for its task."""
    page.wait_for_function("() => typeof window.probeModel === 'function'", timeout=10000)
    out = page.evaluate(f"() => window.probeModel({list(task.reference_inputs[0])})")
    assert isinstance(out["mlp"], (int, float)) and isinstance(out["spliced"], (int, float))
    assert page.input_value("#x-input").split() == [str(v) for v in task.reference_inputs[0]]
    assert f"p1 0-{task.slots - 1}" in page.locator("#x-help").inner_text()
    page.fill("#x-input", " ".join(["1"] * (task.n_inputs - 1)))
    page.wait_for_timeout(100)
    assert f"expected {task.n_inputs} integers" in page.locator("#msg").inner_text()


def check_sankey_filters(page) -> None:
    """Picking a pointer combination and a target redraws the flow without errors."""
    before = page.locator("#sel-info").inner_text()
    page.select_option("#sel-combo", "5")
    page.select_option("#sel-target", "3")
    page.wait_for_timeout(200)
    after = page.locator("#sel-info").inner_text()
    assert after and after != before, f"selection did not update the Sankey ({before!r} -> {after!r})"
    page.select_option("#sel-combo", "all")
    page.select_option("#sel-target", "all")
    page.wait_for_function("() => document.querySelector('#sankey svg.main-svg') !== null")


def test_the_across_slots_page_opens_offline_without_errors(browser, reports, reports_other_slots, tmp_path):
    """benchmarks/bench_slots.py's chart page (one offline page, plotly inline) on the two tiny runs and
    hand-made seed rows at L = OTHER_SLOTS."""
    from benchmarks import bench_slots
    from tests.benchmarks.test_bench_slots import grid_rows, write_grid
    grid = write_grid(tmp_path / "grid.csv", grid_rows())
    page_path = tmp_path / "across_slots.html"
    bench_slots.main(bench_slots.parse_args([str(reports[0].root), str(reports_other_slots[0].root), "--grid",
                                             str(grid), "--html", str(page_path)]))
    context, page, errors, page_errors, blocked = open_page(browser, page_path.as_uri(), tmp_path / "a.png")
    try:
        check_plots(page, 1)
        legend = page.locator("#across-slots .legend").text_content()
        assert "neurons (512)" in legend and "TopK 2048" in legend
        assert page.locator("table.metrics tr").count() == 1 + 4      # header, L = 4's SAE, TopK 32, 256 and 2048 at L = 3
        page.screenshot(path=str(tmp_path / "across_slots.png"), full_page=True)
    finally:
        context.close()
    assert not (errors or page_errors or blocked), (errors, page_errors, blocked)
