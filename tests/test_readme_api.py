"""The README's "## Python API" section runs as written: its ```python blocks, run in order as one
script on a tiny run (its "runs/default" replaced by the run's folder), in a fresh interpreter whose
working directory is outside the repository (so the packages come from the installed project, not
from the current folder), with every warning an error."""
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.viz.test_feature_reports import shared_reports_run

SECTION = "## Python API"


def api_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return re.findall(r"^```python\n(.*?)^```", readme[start:end if end >= 0 else None], re.S | re.M)


def test_section_has_python_blocks_that_import_what_they_use():
    code = "\n".join(api_blocks())
    assert code.count("from ") >= 5 and "runs/default" in code
    imported = set()
    for names in re.findall(r"^from \S+ import (.+)$", code, re.M):
        imported.update(n.strip() for n in names.split(","))
    body = "\n".join(line for line in code.splitlines() if not line.startswith(("from ", "import ")))
    unused = sorted(n for n in imported if not re.search(rf"\b{re.escape(n)}\b", body))
    assert not unused, f"imported in README's {SECTION} but never shown in use: {unused}"


def test_readme_api_runs_outside_the_repository_without_warnings(tiny_run, tmp_path_factory, tmp_path):
    paths, _ = shared_reports_run(tiny_run, tmp_path_factory)
    code = "\n".join(api_blocks())
    assert '"runs/default"' in code
    code = code.replace('"runs/default"', repr(str(paths.root)))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert ROOT not in cwd.parents
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=cwd, capture_output=True, text=True,
                       timeout=300, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "HOME": str(tmp_path)})
    if r.returncode != 0 and "ModuleNotFoundError" in r.stderr:
        pytest.fail(f"the packages are not importable outside the repository (run `pip install -e .`):\n{r.stderr[-2000:]}")
    assert r.returncode == 0, f"README's {SECTION} failed:\n{r.stderr[-4000:]}"
    assert (cwd / "my_inputs.xlsx").exists() and (cwd / "my_sae.pth").exists()   # the example's own files
