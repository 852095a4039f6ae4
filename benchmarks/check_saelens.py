"""Check, by hand, that SAELens itself loads the SAEs this project writes and encodes identically.

The project does not depend on sae-lens (it pulls ~95 packages); install it beside, with torch pinned:

    python3 -m venv /tmp/saelens_venv
    /tmp/saelens_venv/bin/pip install sae-lens -c <(echo torch==2.13.0)
    /tmp/saelens_venv/bin/python benchmarks/check_saelens.py [--run-dir runs/default]

For every architecture (a random SAE written with sae.saelens.save_saelens) and every SAE of the
run: `sae_lens.SAE.load_from_disk(folder)` against this project's SAE on the same activations;
prints the largest differences of encode and decode (0.0 is identical).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this venv has sae-lens, not the project

from sae_lens import SAE as SAELensSAE  # noqa: E402

from common.paths import RunPaths  # noqa: E402
from mlp.activations import load_activations  # noqa: E402
from sae.registry import ARCHITECTURES, build_sae, sae_config  # noqa: E402
from sae.saelens import save_saelens  # noqa: E402
from sae.sae_definition import load_sae  # noqa: E402


def compare(name: str, folder: Path, ours, h: torch.Tensor) -> None:
    theirs = SAELensSAE.load_from_disk(str(folder), device="cpu")
    with torch.no_grad():
        f_t, f_o = theirs.encode(h), ours.eval().encode(h)
        d = float((theirs.decode(f_t) - ours.decode(f_o)).abs().max())
    print(f"{name:<22} SAELens {type(theirs).__name__:<14} encode max |diff| {float((f_t - f_o).abs().max()):.3g}  "
          f"same active set {bool(torch.equal(f_t > 0, f_o > 0))}  decode max |diff| {d:.3g}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default="runs/default")
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    h = torch.rand(500, 32, generator=g)
    for arch in sorted(ARCHITECTURES):
        settings = {"k": 4} if "k" in sae_config(arch).to_dict() else {}
        sae = build_sae(sae_config(arch, d_in=32, d_sae=64, **settings), generator=g)
        with torch.no_grad():
            for q in sae.parameters():
                q.add_(0.1 * torch.randn(q.shape, generator=g))
            if "threshold" in dict(sae.named_buffers()):
                sae.threshold.fill_(0.3)                              # as a trained BatchTopK's
        folder = Path(tempfile.mkdtemp())
        save_saelens(sae.eval(), folder)
        compare(f"random {arch}", folder, sae, h)
    run = RunPaths(args.run_dir)
    if run.activations.exists():
        acts = load_activations(run.activations)["activations"][-2000:]
        for name in run.sae_names():
            paths = run.for_sae(name)
            if paths.sae_saelens_dir.exists():
                compare(f"run {name}", paths.sae_saelens_dir, load_sae(paths.sae), acts)


if __name__ == "__main__":
    main()
