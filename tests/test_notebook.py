"""notebooks/walkthrough.ipynb runs top to bottom (nbclient, a kernel of this interpreter) on a tiny
run: its "parameters" cell is replaced by tests/helpers.py's TINY sizes. The notebook is stored
without outputs, so what git holds is the code alone."""
import os

import pytest

from tests.conftest import ROOT
from tests.helpers import TINY

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
TINY_PARAMETERS = (f"N_TRAIN, EPOCHS, D_MLP, D_HIDDEN = {TINY['n_train']}, {TINY['epochs']}, {TINY['d_mlp']}, "
                   f"{TINY['d_hidden']}\nD_SAE, K, SAE_STEPS = 32, 4, 40\nN_LABEL_INPUTS = 2048")


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_on_a_tiny_run(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source = TINY_PARAMETERS
    # ipykernel's "python3" kernelspec starts `python`, which jupyter_client replaces by sys.executable:
    # the kernel runs in this interpreter's environment (the project's .venv)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env={**os.environ, "TMPDIR": str(tmp_path)})   # the notebook's run folder goes there
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    last = nb.cells[-1]
    assert any("plotly" in mime for o in last.outputs for mime in o.get("data", {})), "the plot was not drawn"
    nbformat.write(nb, tmp_path / "walkthrough.executed.ipynb")   # for a person to look at
