"""Check that SAEs saved by SAELens and dictionary_learning themselves join a run with encode and decode
equal to the library's own, and (with --run-dir) the worked example: train an SAE with SAELens on a
run's activations, join it with import_sae.py, label it, and print the run's comparison.

The project does not depend on either library (they pull ~100 packages); install them beside it, in a
venv of their own with torch pinned (the `saelens` extra of pyproject.toml):

    python3 -m venv /tmp/saelens_venv
    /tmp/saelens_venv/bin/pip install -e '.[saelens]' -c <(echo torch==2.13.0)
    /tmp/saelens_venv/bin/pip uninstall -y torchvision      # pulled in at a version torch 2.13 cannot load
    /tmp/saelens_venv/bin/python benchmarks/check_import.py [--run-dir runs/default --steps 1500]

tests/sae/test_import.py calls `compare_all` when sae_lens is importable (and skips it otherwise).
Prints, for each library architecture, the largest |difference| of encode and of decode (0 is identical).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sae.foreign import read_foreign  # noqa: E402

K = 5


def _perturb_(module, g, scale=0.2):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def _diff(theirs_encode, theirs_decode, ours, h) -> tuple[float, float]:
    """(largest |difference| of encode and decode, the same relative to the largest value compared)."""
    with torch.no_grad():
        f_t, f_o = theirs_encode(h), ours.encode(h)
        assert bool((f_t > 0).any()), "the library's SAE fires on nothing: the check would be empty"
        x_t, x_o = theirs_decode(f_t), ours.decode(f_o)
        d = max(float((f_t - f_o).abs().max()), float((x_t - x_o).abs().max()))
        return d, d / max(float(f_t.abs().max()), float(x_t.abs().max()), 1.0)


def saelens_cases(folder: Path, d_in: int, d_sae: int, g) -> dict:
    """{name: (library SAE, folder)} saved by SAELens 6 itself."""
    from sae_lens import SAE
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.gated_sae import GatedSAE, GatedSAEConfig
    from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
    from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
    from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig
    out = {}

    def save(name, sae, inference=False):
        sae.cfg.metadata.hook_name = "hook_hidden"
        with torch.no_grad():   # decoder rows of norms 0.3 .. 2.3: a fold that forgot them shows
            sae.W_dec.mul_((torch.rand(d_sae, 1, generator=g) * 2 + 0.3) / sae.W_dec.norm(dim=1, keepdim=True))
        (sae.save_inference_model if inference else sae.save_model)(folder / name)
        out[name] = folder / name

    for name, sae in [("saelens standard", StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae))),
                      ("saelens topk rescale false", TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=K))),
                      ("saelens topk rescale true", TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=K,
                                                                          rescale_acts_by_decoder_norm=True))),
                      ("saelens jumprelu", JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=d_sae))),
                      ("saelens gated", GatedSAE(GatedSAEConfig(d_in=d_in, d_sae=d_sae)))]:
        _perturb_(sae, g)
        if hasattr(sae, "threshold"):
            with torch.no_grad():
                sae.threshold.copy_(torch.rand(d_sae, generator=g) * 0.3 + 0.01)
        save(name, sae)
    topk = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=K))      # its training default: rescale true
    _perturb_(topk, g)
    save("saelens topk training defaults, save_inference_model", topk, inference=True)
    btk = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=K))
    _perturb_(btk, g)
    with torch.no_grad():
        btk.topk_threshold.fill_(0.2)
    save("saelens batchtopk, save_inference_model", btk, inference=True)
    return {name: (SAE.load_from_disk(str(path), device="cpu"), path) for name, path in out.items()}


def dictionary_learning_cases(folder: Path, d_in: int, d_sae: int, g) -> dict:
    from dictionary_learning.dictionary import AutoEncoder, AutoEncoderNew, GatedAutoEncoder, JumpReluAutoEncoder
    from dictionary_learning.trainers.batch_top_k import BatchTopKSAE
    from dictionary_learning.trainers.matryoshka_batch_top_k import MatryoshkaBatchTopKSAE
    from dictionary_learning.trainers.top_k import AutoEncoderTopK
    from dictionary_learning.utils import load_dictionary
    groups = [d_sae // 4, d_sae // 4, d_sae - 2 * (d_sae // 4)]
    modules = {"AutoEncoder": AutoEncoder(d_in, d_sae), "AutoEncoderNew": AutoEncoderNew(d_in, d_sae),
               "AutoEncoderTopK": AutoEncoderTopK(d_in, d_sae, K), "BatchTopKSAE": BatchTopKSAE(d_in, d_sae, K),
               "MatryoshkaBatchTopKSAE": MatryoshkaBatchTopKSAE(d_in, d_sae, K, groups),
               "JumpReluAutoEncoder": JumpReluAutoEncoder(d_in, d_sae), "GatedAutoEncoder": GatedAutoEncoder(d_in, d_sae)}
    out = {}
    for name, ae in modules.items():
        _perturb_(ae, g)
        with torch.no_grad():
            if name == "JumpReluAutoEncoder":
                ae.threshold.copy_(torch.rand(d_sae, generator=g) * 0.2 + 0.01)
            elif hasattr(ae, "threshold"):
                ae.threshold.fill_(0.1)
        path = folder / f"dl_{name}"
        path.mkdir(parents=True)
        torch.save({k: v.cpu() for k, v in ae.state_dict().items()}, path / "ae.pt")
        trainer = {"dict_class": name, "trainer_class": "check", "activation_dim": d_in, "dict_size": d_sae,
                   "layer": 2, "lm_name": "mlp", "submodule_name": "hook_hidden"}
        if hasattr(ae, "k"):
            trainer["k"] = K
        (path / "config.json").write_text(json.dumps({"trainer": trainer}))
        out[f"dictionary_learning {name}"] = (load_dictionary(str(path), device="cpu")[0], path)
    return out


def compare_all(folder, d_in: int = 64, d_sae: int = 96, h: torch.Tensor | None = None, seed: int = 0) -> dict:
    """{case: (max |diff|, relative)} of encode and decode between each library's SAE and the imported one."""
    folder = Path(folder)
    g = torch.Generator().manual_seed(seed)
    h = torch.rand(300, d_in, generator=g) * 2 if h is None else h
    cases = saelens_cases(folder, d_in, d_sae, g)
    try:
        cases.update(dictionary_learning_cases(folder, d_in, d_sae, g))
    except ImportError as e:
        print(f"dictionary_learning not importable ({e}); its cases skipped")
    out = {}
    for name, (theirs, path) in cases.items():
        ours, _ = read_foreign(path)
        out[name] = _diff(theirs.encode, theirs.decode, ours, h)
    return out


def train_saelens_topk(train: torch.Tensor, steps: int, folder: Path) -> Path:
    """SAELens's TopK with its training defaults (k 16 here, rescale_acts_by_decoder_norm true, AuxK), trained
    by a plain Adam loop over its own training_forward_pass (SAELens's runner needs a transformer-lens
    model), saved with save_inference_model."""
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=train.shape[1], d_sae=256, k=16))
    sae.cfg.metadata.hook_name = "hook_hidden"
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3)
    since_fired = torch.zeros(256)
    for step in range(steps):
        batch = train[torch.randint(len(train), (512,))]
        out = sae.training_forward_pass(TrainStepInput(sae_in=batch, coefficients={}, n_training_steps=step,
                                                       dead_neuron_mask=since_fired > 5000, is_logging_step=False))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        fired = (out.feature_acts > 0).any(0).float()
        since_fired = (since_fired + len(batch)) * (1 - fired)
        if step % 500 == 0 or step == steps - 1:
            print(f"saelens topk step {step:5d}  loss {float(out.loss.detach()):.4f}", flush=True)
    sae.save_inference_model(folder)
    return folder


def train_dictionary_learning_batchtopk(train: torch.Tensor, steps: int, folder: Path) -> Path:
    """dictionary_learning's BatchTopKTrainer (its recipe: lr from the 1/sqrt(d_sae) rule, AuxK), 256
    latents, k 16, 100 warm-up steps (fewer in a short test run), fed batches of 512 through its own `update`; saved as its training loop saves
    (ae.pt = the state_dict, config.json = {"trainer": trainer.config})."""
    from dictionary_learning.trainers.batch_top_k import BatchTopKTrainer
    trainer = BatchTopKTrainer(steps=steps, activation_dim=train.shape[1], dict_size=256, k=16, layer=2, lm_name="mlp",
                               submodule_name="hook_hidden", warmup_steps=min(100, steps // 10),
                               threshold_start_step=min(100, steps // 10), seed=0,
                               device="cpu")
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        trainer.update(step, train[torch.randint(len(train), (512,), generator=g)])
        if step % 500 == 0 or step == steps - 1:
            print(f"dictionary_learning batchtopk step {step:5d}", flush=True)
    folder.mkdir(parents=True)
    torch.save({k: v.cpu() for k, v in trainer.ae.state_dict().items()}, folder / "ae.pt")
    (folder / "config.json").write_text(json.dumps({"trainer": trainer.config}, indent=4, default=str))
    return folder


WORKED = {"saelens": ("saelens_topk", train_saelens_topk),
          "dictionary_learning": ("dl_batchtopk", train_dictionary_learning_batchtopk)}


def worked_example(run_dir: str, steps: int, libraries: list) -> None:
    """Train an SAE with each library on the run's training activations (the held-out rows stay unseen),
    join it (import_sae.py), label it (label_features.py) and print the run's comparison."""
    import import_sae
    import label_features
    from analysis.compare import comparison, comparison_lines
    from common.paths import RunPaths
    from mlp.activations import load_activations
    from sae.training import TrainConfig, split_activations
    run = RunPaths(run_dir)
    torch.set_num_threads(1)        # this small a model runs ~20x slower with threads fighting over busy cores
    acts = load_activations(run.activations)["activations"].float()
    train_rows, _ = split_activations(acts, TrainConfig().n_eval)
    train = acts[train_rows]
    for library in libraries:
        name, fn = WORKED[library]
        folder = fn(train, steps, Path(tempfile.mkdtemp()) / name)
        import_sae.main(import_sae.parse_args(["--run-dir", run_dir, "--from", str(folder), "--name", name]))
        label_features.main(label_features.parse_args(["--run-dir", run_dir, "--sae", name, "--quiet"]))
    for line in comparison_lines(comparison(run)):
        print("  " + line)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default=None, help="also run the worked example on this run (writes a named SAE into it)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--libraries", default="saelens,dictionary_learning",
                   help="which libraries' SAEs the worked example trains and joins (saelens, dictionary_learning)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (d, rel) in compare_all(tmp, d_in=512, d_sae=256, h=None).items():
            print(f"{name:<56} max |diff| encode/decode {d:.3g} (relative {rel:.2g})")
    if args.run_dir:
        worked_example(args.run_dir, args.steps, [v for v in args.libraries.split(",") if v])


if __name__ == "__main__":
    main()
