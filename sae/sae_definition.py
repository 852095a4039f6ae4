"""The SAE's files: `save_sae` writes weights + config (+ metrics, train_config) to a `.pth`, and
`load_sae` rebuilds the SAE from a file alone, in eval mode: this project's `.pth`, or a folder in
SAELens's layout (`sae/saelens.py`), so an SAE trained elsewhere on this MLP's layer can be probed.
"""
import shutil
from pathlib import Path

from common import provenance
from common.io import (PipelineError, atomic_group, atomic_group_with_metrics, atomic_torch_save, require_finite, require_keys,
                       require_state_shapes, safe_torch_load, stored_metrics)
from mlp.mlp_definition import load_mlp
from sae.base import SAE
from sae.metrics import without_density
from sae.registry import SAE_REMEDY, build_sae, config_from_dict
from sae.saelens import load_saelens, saelens_writers

SAELENS_DIR = "saelens"    # the SAELens folder's name beside the .pth (common.paths.RunPaths.sae_saelens_dir)


def _weights(sae: SAE) -> tuple[dict, dict]:
    return sae.cfg.to_dict(), {k: v.detach().cpu() for k, v in sae.state_dict().items()}


def save_sae(sae: SAE, path: Path, metrics: dict | None = None, train_config: dict | None = None,
             made_from: dict | None = None, members: dict | None = None) -> dict:
    """Write weights + config (+ the metrics it reached, how it was trained, and the provenance record:
    its digest, `made_from` and the `members` of its group), atomically; returns the record."""
    config, state = _weights(sae)
    record = provenance.make_record(provenance.weights_digest(config, state), made_from, members)
    atomic_torch_save({"config": config, "state_dict": state, "metrics": metrics or {},
                       "train_config": train_config or {}, provenance.KEY: record}, path)
    return record


def sae_group_files(sae: SAE, path: Path, density_log10=None) -> list[Path]:
    """The files of one SAE, written as one group by `write_sae_group`: its `.pth` at `path` and, for an
    architecture SAELens has, the SAELens folder beside it."""
    if sae.SAELENS_ARCHITECTURE is None:
        return [Path(path)]
    return [Path(path), *(Path(path).parent / SAELENS_DIR / n for n in saelens_writers(sae, density_log10))]


def write_sae_group(sae: SAE, files: list[Path], temps: list[Path], metrics: dict | None = None,
                    train_config: dict | None = None, made_from: dict | None = None, density_log10=None) -> dict:
    """Write the files of `sae_group_files` into their temporaries `temps` (of one `atomic_group`): the
    SAELens files first, then the `.pth`, whose record lists their byte digests (its members, so a
    folder that is not the one written with it is found). Returns the record."""
    members = {}
    if len(files) > 1:
        config, state = _weights(sae)
        record = provenance.make_record(provenance.weights_digest(config, state), made_from)
        writers = saelens_writers(sae, density_log10, record)
        for file, tmp in zip(files[1:], temps[1:]):
            writers[file.name](tmp)
            members[f"{SAELENS_DIR}/{file.name}"] = provenance.file_digest(tmp)
    return save_sae(sae, temps[0], metrics, train_config, made_from, members)


def save_sae_group(sae: SAE, path: Path, metrics: dict | None = None, train_config: dict | None = None,
                   made_from: dict | None = None, density_log10=None) -> dict:
    """The `.pth` and SAELens folder of `sae`, all or none (`write_sae_group`); returns the record."""
    files = sae_group_files(sae, path, density_log10)
    with atomic_group(files) as temps:
        return write_sae_group(sae, files, temps, metrics, train_config, made_from, density_log10)


def adopt_sae(sae: SAE, paths, metrics: dict | None = None) -> dict:
    """Save an SAE made outside train_sae.py (by hand, or `load_sae(saelens_folder)`) as the SAE `paths`
    (a RunPaths) names, with its SAELens folder: its provenance says it was made from the run's MLP
    (by the caller's word; it must read that MLP's hidden layer), so the later stages accept it."""
    mlp = load_mlp(paths.mlp)
    made_from = {"mlp": provenance.entry(paths.mlp, mlp.provenance["digest"], paths.root)}
    return save_sae_group(sae, paths.sae, metrics=metrics, made_from=made_from)


def sae_from_checkpoint(ckpt, path: Path) -> SAE:
    """Rebuild an SAE from a loaded checkpoint dict (as written by `save_sae`, or a training
    checkpoint holding the same keys); a mismatch -> PipelineError naming `path`."""
    require_keys(ckpt, ["config", "state_dict"], path, "SAE checkpoint", SAE_REMEDY)
    try:
        cfg = config_from_dict(ckpt["config"])
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        msg = " ".join(str(e).split())[:200]
        raise PipelineError(f"{path}: not an SAE checkpoint of this project ({msg}); {SAE_REMEDY}") from None
    require_state_shapes(lambda: build_sae(cfg), ckpt["state_dict"], path, "SAE checkpoint", SAE_REMEDY)  # before allocating
    sae = build_sae(cfg)
    sae.load_state_dict(ckpt["state_dict"])
    return sae


def load_sae(path: Path, device="cpu") -> SAE:
    """Rebuild the SAE from its file alone, in eval mode (a folder: SAELens's layout)."""
    if Path(path).is_dir():
        sae = load_saelens(path, device)
        sae.provenance = None          # an SAE from elsewhere: what it was made from is unknown
    else:
        ckpt = safe_torch_load(path, "SAE checkpoint", SAE_REMEDY)
        sae = sae_from_checkpoint(ckpt, path).to(device).eval()
    require_finite(sae.state_dict(), path, "SAE", SAE_REMEDY)   # a diverged or altered SAE must not be probed
    if not Path(path).is_dir():
        sae.provenance = provenance.model_record(ckpt, path, "SAE", SAE_REMEDY)
        problem = provenance.members_problem(Path(path).parent, sae.provenance)
        if problem:                    # its SAELens folder is not the one written with it
            raise PipelineError(f"{path}: its group is not whole ({problem}); {SAE_REMEDY}")
    return sae


def sae_metrics_of(path: Path) -> dict:
    """The metrics stored in an SAE file (empty dict if none)."""
    return stored_metrics(safe_torch_load(path, "SAE checkpoint", SAE_REMEDY))


def write_saes(paths, saes: list, texts: dict | None = None, sections: dict | None = None) -> None:
    """Write every SAE of `saes` ([(its RunPaths, sae, summary, history, made_from)]): its .pth, its
    SAELens folder and its metrics section, with `texts` ({path: text}) and the metrics `sections`, as
    one group: all or nothing (a failure anywhere leaves every old file and section as it was)."""
    texts, sections = dict(texts or {}), dict(sections or {})
    groups = [(member, sae, m, history, made_from, sae_group_files(sae, member.sae, m["density_log10"]))
              for member, sae, m, history, made_from in saes]
    files = [f for *_, group in groups for f in group] + list(texts)
    with atomic_group_with_metrics(files, paths.metrics, sections) as temps:
        temp_of = dict(zip(files, temps))
        for member, sae, m, history, made_from, group in groups:
            section = without_density(m)
            record = write_sae_group(sae, group, [temp_of[f] for f in group], metrics={**section, "history": history},
                                     train_config=m.get("train_config", {}), made_from=made_from,
                                     density_log10=m["density_log10"])
            sections[member.section("sae")] = {**section, provenance.KEY: record}
        for path, text in texts.items():
            temp_of[path].write_text(text, encoding="utf-8")
    for member, sae, *_ in saes:    # a SAELens folder an SAE of another architecture left there is not this one
        if sae.SAELENS_ARCHITECTURE is None and member.sae_saelens_dir.is_dir():
            shutil.rmtree(member.sae_saelens_dir, ignore_errors=True)
