"""Screenshots of every report page, as a person first sees it: 1400 x 1000 in headless Chromium.

Reads  <run-dir>/reports/*.html (feature_reports.py) when --run-dir is given; otherwise builds a tiny
       run (data, MLP, activations, SAE, labels, reports: a few minutes on two cores) in a temporary
       folder first. A tiny run's models are too small to learn the task: for the README use the
       default run (`--run-dir runs/default`).
Writes <out>/<page>.png (default docs/screenshots/): the top 1400 x 1000 of each page, rendered at
       a reduced pixel ratio so each file stays small, plus index_cards.png (the feature dashboard's
       first cards) and each page's console errors, if any, on stdout.

    python make_screenshots.py --run-dir runs/default          # the README's pictures
    python make_screenshots.py                                  # a tiny throwaway run
    python make_screenshots.py --page across_slots.html         # one standalone page (a benchmark's chart)
Needs /usr/bin/chromium (apt-get install -y chromium) and the playwright package.
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common.cli import run_main
from common.io import PipelineError
from common.paths import RunPaths

ROOT = Path(__file__).resolve().parent

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 1000}
SCALE = 0.6             # device pixel ratio: 840 x 600 PNGs, small enough to commit, large enough to read
# (file name of the shot, RunPaths property of the page, element scrolled to the top or None)
SHOTS = (("compare", "compare_html", None), ("index", "index_html", None), ("index_cards", "index_html", "#sec-dashboard"),
         ("logic_circuit_map", "heatmap_html", None), ("logic_circuit_map_combo", "heatmap_html", "#sec-combo-a"),
         ("circuit_bell_curves", "distributions_html", None), ("uhd_bold_sankey", "sankey_html", None),
         ("probe", "probe_html", None), ("training", "training_html", None))
# a run small enough to build in minutes (the tests' tiny run, with a small SAE)
TINY_DATA = ["--n-train=2000", "--n-val=200", "--n-test=200"]
TINY_MLP = ["--d-mlp=64", "--d-hidden=64", "--epochs=20", "--batch-size=128"]
TINY_SAE = ["--d-sae=64", "--k=8", "--steps=300", "--batch-size=256", "--n-eval=200", "--checkpoint-every=0", "--warmup-steps=5"]
TINY_INPUTS = ["--n-inputs=4096"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--run-dir", default=None, help="a run whose reports exist (default: build a tiny run in a temp folder)")
    p.add_argument("--out", default="docs/screenshots", help="folder of the PNGs (default: docs/screenshots)")
    p.add_argument("--page", default=None, help="one standalone page instead of a run's reports (e.g. "
                   "benchmarks/bench_slots.py --html's): <out>/<its name>.png")
    p.add_argument("--quiet", action="store_true", help="print only pages with console errors")
    args = p.parse_args(argv)
    if args.page and args.run_dir:
        p.error("--page and --run-dir: give one of them")
    return args


def build_tiny_run(run_dir: Path) -> RunPaths:
    """Every stage into run_dir, with tiny settings, as workflow.sh runs them (a script imports no script)."""
    common = ["--run-dir", str(run_dir), "--quiet", "--device", "cpu"]
    for script, flags in (("dataset/data_generator.py", common[:3] + TINY_DATA), ("train_mlp.py", common + TINY_MLP),
                          ("harvest_activations.py", common), ("train_sae.py", common + TINY_SAE),
                          ("label_features.py", common + TINY_INPUTS), ("feature_reports.py", common + TINY_INPUTS)):
        subprocess.run([sys.executable, str(ROOT / script), *flags], check=True, stdout=subprocess.DEVNULL)
    return RunPaths(run_dir)


def report_shots(paths: RunPaths) -> list:
    """(file name, page, element scrolled to the top or None) of each entry of SHOTS."""
    return [(name, getattr(paths, prop), anchor) for name, prop, anchor in SHOTS]


def take_shots(shots: list, out: Path) -> dict:
    """One PNG per (name, page path, anchor); returns {file: console errors}."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    problems = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            for name, page_path, anchor in shots:
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=SCALE)
                page = context.new_page()
                errors = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(page_path.as_uri(), wait_until="load")
                page.wait_for_timeout(1000)           # plotly draws after load
                if anchor:
                    page.evaluate("sel => document.querySelector(sel).scrollIntoView()", anchor)
                    page.wait_for_timeout(300)
                target = out / f"{name}.png"
                page.screenshot(path=str(target))
                context.close()
                problems[target] = errors
        finally:
            browser.close()
    return problems


def main(args) -> dict:
    out = Path(args.out)
    if args.page and not Path(args.page).is_file():
        raise PipelineError(f"--page {args.page}: no such file")
    if args.run_dir:
        paths = RunPaths(Path(args.run_dir).resolve())
        missing = [getattr(paths, prop) for _, prop, _ in SHOTS if not getattr(paths, prop).exists()]
        if missing:
            raise PipelineError(f"{missing[0]} not found: run feature_reports.py --run-dir {args.run_dir} first")
    if not CHROMIUM.exists():
        raise PipelineError(f"{CHROMIUM} not found: install it with `apt-get install -y chromium`")
    if args.page:
        page = Path(args.page).resolve()
        problems = take_shots([(page.stem, page, None)], out)
    elif args.run_dir:
        problems = take_shots(report_shots(paths), out)
    else:
        with tempfile.TemporaryDirectory(prefix="screenshots_run_") as tmp:
            if not args.quiet:
                print(f"building a tiny run in {tmp} ...")
            problems = take_shots(report_shots(build_tiny_run(Path(tmp) / "run")), out)
    for target, errors in problems.items():
        size = target.stat().st_size
        if args.quiet and not errors:
            continue
        print(f"{target}  {size / 1024:.0f} KB" + (f"  ({len(errors)} console errors: {errors[0]})" if errors else ""))
    return {str(k): v for k, v in problems.items()}


if __name__ == "__main__":
    run_main(main, parse_args())
