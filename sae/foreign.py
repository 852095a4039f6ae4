"""An SAE trained by another library, read into this project's SAE with a record of where it came from.

`read_foreign(folder)` recognises the folder's layout and hands it to its reader:

    cfg.json + sae_weights.safetensors   SAELens (sae/saelens.py): standard, topk (either
                                         rescale_acts_by_decoder_norm), jumprelu (also what SAELens's
                                         BatchTopK and Matryoshka BatchTopK save as), gated
    config.json + ae.pt                  dictionary_learning (sae/dictionary_learning.py)

and returns (SAE in eval mode, origin). The origin says which library wrote the folder (and its
version when the folder says it), the architecture there and here, how the weights were converted
(folds that keep encode and decode equal), the hook the folder says it was trained on, and the
SHA-256 of each file read, so a joined SAE can be traced to the exact files.
"""
from pathlib import Path

from common.io import PipelineError
from common.provenance import sha256_file
from sae import dictionary_learning as dl
from sae import saelens
from sae.base import SAE
from sae.registry import SAE_REMEDY

FOREIGN_REMEDY = "fix the folder or save it again from its library"
# SAELens configs that are training checkpoints, not inference SAEs: save_inference_model writes them as jumprelu
_SAELENS_TRAINING_ONLY = {"batchtopk", "matryoshka_batchtopk"}


def _hashes(folder: Path, names) -> dict:
    return {name: sha256_file(folder / name) for name in names if (folder / name).is_file()}


def _read_saelens(folder: Path) -> tuple[SAE, dict]:
    raw = saelens._read_cfg(folder)
    arch = raw["architecture"]
    if arch in _SAELENS_TRAINING_ONLY:
        raise PipelineError(f"{folder / saelens.SAE_CFG_FILENAME}: architecture {arch!r} is SAELens's training "
                            "checkpoint; save the SAE with save_inference_model (it writes it as 'jumprelu') and join that")
    sae = saelens.load_saelens(folder)
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    conversion = []
    if raw.get("apply_b_dec_to_input", True) is False:
        conversion.append("b_dec @ W_enc folded into b_enc (apply_b_dec_to_input false)")
    if arch == "topk" and raw.get("rescale_acts_by_decoder_norm") is True:
        conversion.append("decoder norms folded into W_enc, b_enc (rescale_acts_by_decoder_norm true)")
    written_here = saelens.METADATA_KEY in metadata
    return sae, {
        "library": "sae_lens", "version": metadata.get("sae_lens_version"),
        "training_version": metadata.get("sae_lens_training_version"),
        "architecture": arch, "hook": metadata.get("hook_name"), "model": metadata.get("model_name"),
        "written_by": "this project (sae/saelens.py)" if written_here else "SAELens",
        "files": _hashes(folder, [saelens.SAE_CFG_FILENAME, saelens.SAE_WEIGHTS_FILENAME]),
        "conversion": "; ".join(conversion) or "none (same tensors)",
    }


def _read_dictionary_learning(folder: Path) -> tuple[SAE, dict]:
    sae, trainer = dl.load_dictionary_learning(folder)
    kind = trainer["dict_class"]
    conversion = {"AutoEncoder": "decoder columns to unit norm, encoder scaled to match (load_dictionary's normalize_decoder)",
                  "AutoEncoderNew": "decoder.bias @ W_enc folded into b_enc (no b_dec before the encoder)",
                  "JumpReluAutoEncoder": "b_dec @ W_enc folded into b_enc (apply_b_dec_to_input false); log of threshold",
                  "BatchTopKSAE": "threshold < 0 (never set) read as 0", "MatryoshkaBatchTopKSAE": "group_sizes -> prefixes"}
    return sae, {
        "library": "dictionary_learning", "version": trainer.get("version"), "architecture": kind,
        "trainer": trainer.get("trainer_class"), "hook": trainer.get("submodule_name"),
        "model": trainer.get("lm_name"), "layer": trainer.get("layer"), "written_by": "dictionary_learning",
        "files": _hashes(folder, [dl.CONFIG_FILENAME, dl.WEIGHTS_FILENAME]),
        "conversion": conversion.get(kind, "none (same maps)"),
    }


def read_foreign(folder) -> tuple[SAE, dict]:
    """(this project's SAE, origin dict) from a SAELens or dictionary_learning folder; anything else, or a
    folder its reader refuses, -> PipelineError (one line naming the file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: no such folder (expected a SAELens folder with {saelens.SAE_CFG_FILENAME} + "
                            f"{saelens.SAE_WEIGHTS_FILENAME}, or a dictionary_learning one with {dl.CONFIG_FILENAME} + "
                            f"{dl.WEIGHTS_FILENAME})")
    if (folder / saelens.SAE_CFG_FILENAME).exists() or (folder / saelens.SAE_WEIGHTS_FILENAME).exists():
        reader = _read_saelens
    elif dl.is_dictionary_learning_folder(folder):
        reader = _read_dictionary_learning
    else:
        raise PipelineError(f"{folder}: neither a SAELens folder ({saelens.SAE_CFG_FILENAME} + "
                            f"{saelens.SAE_WEIGHTS_FILENAME}) nor a dictionary_learning one ({dl.CONFIG_FILENAME} + "
                            f"{dl.WEIGHTS_FILENAME})")
    try:
        sae, origin = reader(folder)
    except PipelineError as e:            # the readers name train_sae.py, which re-makes the project's own SAEs
        msg = str(e)
        for remedy in (SAE_REMEDY, dl.REMEDY):
            msg = msg.removesuffix(f"; {remedy}")
        raise PipelineError(f"{msg}; {FOREIGN_REMEDY}") from None
    origin = {"folder": str(folder.resolve()), **origin, "imported_as": sae.cfg.architecture}
    return sae, origin
