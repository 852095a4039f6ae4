"""make_screenshots.py on the tiny run's reports: one small PNG per page, no console error."""
import pytest

import make_screenshots
from tests.viz.test_browser import CHROMIUM
from tests.viz.test_feature_reports import shared_reports_run

pytestmark = pytest.mark.browser
PNG = b"\x89PNG\r\n\x1a\n"


def test_one_small_png_per_page(tiny_run, tmp_path_factory, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    pytest.importorskip("playwright.sync_api")
    paths, _ = shared_reports_run(tiny_run, tmp_path_factory)
    out = tmp_path / "shots"
    problems = make_screenshots.main(make_screenshots.parse_args(["--run-dir", str(paths.root), "--out", str(out), "--quiet"]))
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name, _, _ in make_screenshots.SHOTS)
    for p in out.iterdir():
        data = p.read_bytes()
        assert data[:8] == PNG and 5_000 < len(data) < 250_000, (p.name, len(data))
    assert not any(problems.values()), problems


def test_a_run_without_reports_is_refused(tmp_path):
    with pytest.raises(make_screenshots.PipelineError, match="run feature_reports.py"):
        make_screenshots.main(make_screenshots.parse_args(["--run-dir", str(tmp_path), "--out", str(tmp_path / "o")]))


def test_one_standalone_page(tmp_path):
    """--page: the one PNG of a page that lives outside a run (here the sweep's frontier page)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    pytest.importorskip("playwright.sync_api")
    from viz.frontier import frontier_html
    page = tmp_path / "frontier.html"
    page.write_text(frontier_html([{"lr": 0.001, "l0": 10.0, "fvu": 0.05, "dead_share": 0.1, "spliced_exact_match": 0.9},
                                   {"lr": 0.003, "l0": 12.0, "fvu": 0.03, "dead_share": 0.2, "spliced_exact_match": 0.95}],
                                  "lr", "a sweep"))
    out = tmp_path / "shots"
    problems = make_screenshots.main(make_screenshots.parse_args(["--page", str(page), "--out", str(out), "--quiet"]))
    assert [p.name for p in out.iterdir()] == ["frontier.png"]
    assert (out / "frontier.png").read_bytes()[:8] == PNG and not any(problems.values()), problems
    with pytest.raises(make_screenshots.PipelineError, match="--page .*nope.html: no such file"):
        make_screenshots.main(make_screenshots.parse_args(["--page", str(tmp_path / "nope.html"), "--out", str(out)]))
