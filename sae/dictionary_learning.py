"""An SAE saved by dictionary_learning (saprmarks/dictionary_learning), read into this project's SAE.

Its training loop (`dictionary_learning/training.py`) writes a folder holding

    config.json   {"trainer": trainer.config, "buffer": ...}: trainer.config names the module
                  ("dict_class"), "activation_dim" (d_in), "dict_size" (d_sae), "k" where it has one,
                  and where the activations came from ("lm_name", "layer", "submodule_name")
    ae.pt         the module's state_dict (torch.save), with any activation normalisation already
                  folded into the biases (`scale_biases(norm_factor)` before the final save)

Each dict_class (`dictionary_learning/dictionary.py`, `trainers/top_k.py`, `batch_top_k.py`,
`matryoshka_batch_top_k.py`) maps onto one architecture of this project, its encode and decode
equal to the library's (its `utils.load_dictionary`, which is how a user loads one):

    AutoEncoder             relu; encode relu(encoder(x - bias)), decoder.weight [d_in, d_sae];
                            load_dictionary rescales it to unit-norm decoder columns
                            (`normalize_decoder`), so this reader does the same
    AutoEncoderNew          relu; encode relu(encoder(x)), decode decoder(f) (decoder has the bias)
    AutoEncoderTopK         topk; relu then the k largest (the same set as top-k then relu)
    BatchTopKSAE            batchtopk; inference relu(pre) * (relu(pre) > threshold), one threshold
    MatryoshkaBatchTopKSAE  matryoshka; prefixes = the cumulative group_sizes; inference as BatchTopK
    JumpReluAutoEncoder     jumprelu; relu(pre * (pre > threshold)), pre = x @ W_enc + b_enc (no b_dec
                            before the encoder: folded into b_enc)
    GatedAutoEncoder        gated; gate_bias is b_enc, mag_bias b_mag, decoder_bias b_dec (the same maps)

Where the library computes x @ W + b_enc without subtracting b_dec, b_enc' = b_enc + b_dec @ W_enc
gives this project's (x - b_dec) @ W + b_enc' the same value.
"""
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from common.io import PipelineError, read_json, safe_torch_load
from sae.base import SAE, memory_problem
from sae.registry import build_sae, sae_config

CONFIG_FILENAME = "config.json"
WEIGHTS_FILENAME = "ae.pt"
REMEDY = "re-save it with dictionary_learning (a folder its training loop wrote: config.json + ae.pt)"


def _bad(path: Path, what: str) -> PipelineError:
    return PipelineError(f"{path}: {what}; {REMEDY}")


@dataclass(frozen=True)
class DictClass:
    """One dictionary_learning module: its state_dict's tensors (name -> shape from d_in, d_sae), the
    architecture it becomes here, and how its tensors become this project's state_dict."""
    architecture: str
    shapes: Callable[[int, int], dict]
    convert: Callable[[dict], dict]          # float tensors -> {W_enc, b_enc, W_dec, b_dec, ...}
    has_k: bool = False


def _fold_b_dec(W_enc, b_enc, b_dec) -> torch.Tensor:
    """b_enc' with (x - b_dec) @ W_enc + b_enc' == x @ W_enc + b_enc."""
    return b_enc + b_dec @ W_enc


def _unit_decoder(W_enc, b_enc, W_dec) -> tuple:
    """AutoEncoder.normalize_decoder: decoder rows to unit norm, the encoder rows and biases scaled up by
    the same norms, so the reconstruction is unchanged and each feature carries its row's norm."""
    n = W_dec.norm(dim=1)                                             # [d_sae]
    if not bool((n > 0).all()):
        raise ValueError(f"decoder.weight column {int((n <= 0).nonzero()[0])} has norm 0: "
                         "load_dictionary's normalize_decoder divides by it")
    return W_enc * n, b_enc * n, W_dec / n[:, None]


def _autoencoder(t):
    W_enc, b_enc, W_dec = _unit_decoder(t["encoder.weight"].T, t["encoder.bias"], t["decoder.weight"].T)
    return {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": t["bias"]}


def _autoencoder_new(t):
    W_enc, b_dec = t["encoder.weight"].T, t["decoder.bias"]
    return {"W_enc": W_enc, "b_enc": _fold_b_dec(W_enc, t["encoder.bias"], b_dec), "W_dec": t["decoder.weight"].T,
            "b_dec": b_dec}


def _topk(t):
    return {"W_enc": t["encoder.weight"].T, "b_enc": t["encoder.bias"], "W_dec": t["decoder.weight"].T, "b_dec": t["b_dec"]}


def _batchtopk(t):
    # a threshold never set by training (-1) makes the library's inference relu(pre): threshold 0 here
    return {**_topk(t), "threshold": t["threshold"].clamp_min(0.0)}


def _matryoshka(t):
    return {"W_enc": t["W_enc"], "b_enc": t["b_enc"], "W_dec": t["W_dec"], "b_dec": t["b_dec"],
            "threshold": t["threshold"].clamp_min(0.0)}


def _jumprelu(t):
    if not bool((t["threshold"] > 0).all()):
        raise ValueError("threshold must be > 0 everywhere (this project's JumpReLU learns log_threshold)")
    return {"W_enc": t["W_enc"], "b_enc": _fold_b_dec(t["W_enc"], t["b_enc"], t["b_dec"]), "W_dec": t["W_dec"],
            "b_dec": t["b_dec"], "log_threshold": t["threshold"].log()}


def _gated(t):
    return {"W_enc": t["encoder.weight"].T, "b_enc": t["gate_bias"], "r_mag": t["r_mag"], "b_mag": t["mag_bias"],
            "W_dec": t["decoder.weight"].T, "b_dec": t["decoder_bias"]}


_LINEAR = lambda d_in, d_sae: {"encoder.weight": (d_sae, d_in), "encoder.bias": (d_sae,), "decoder.weight": (d_in, d_sae)}
_TOPK = lambda d_in, d_sae: {**_LINEAR(d_in, d_sae), "b_dec": (d_in,), "k": (), "threshold": ()}
_PLAIN = lambda d_in, d_sae: {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}

DICT_CLASSES = {
    "AutoEncoder": DictClass("relu", lambda d_in, d_sae: {**_LINEAR(d_in, d_sae), "bias": (d_in,)}, _autoencoder),
    "AutoEncoderNew": DictClass("relu", lambda d_in, d_sae: {**_LINEAR(d_in, d_sae), "decoder.bias": (d_in,)},
                                _autoencoder_new),
    "AutoEncoderTopK": DictClass("topk", _TOPK, _topk, has_k=True),
    "BatchTopKSAE": DictClass("batchtopk", _TOPK, _batchtopk, has_k=True),
    "MatryoshkaBatchTopKSAE": DictClass("matryoshka", lambda d_in, d_sae: {**_PLAIN(d_in, d_sae), "k": (), "threshold": ()},
                                        _matryoshka, has_k=True),   # + group_sizes [n_groups], checked apart
    "GatedAutoEncoder": DictClass("gated", lambda d_in, d_sae: {"encoder.weight": (d_sae, d_in), "decoder.weight": (d_in, d_sae),
                                                                "decoder_bias": (d_in,), "r_mag": (d_sae,),
                                                                "gate_bias": (d_sae,), "mag_bias": (d_sae,)}, _gated),
    "JumpReluAutoEncoder": DictClass("jumprelu", lambda d_in, d_sae: {**_PLAIN(d_in, d_sae), "threshold": (d_sae,)},
                                     _jumprelu),
}


def is_dictionary_learning_folder(folder) -> bool:
    folder = Path(folder)
    return (folder / WEIGHTS_FILENAME).exists() or (folder / CONFIG_FILENAME).exists()


def read_config(folder: Path) -> dict:
    """trainer.config of the folder's config.json, checked: dict_class known, sizes positive integers."""
    path = folder / CONFIG_FILENAME
    if not path.is_file():
        raise _bad(path, "missing (a dictionary_learning folder holds config.json and ae.pt)")
    raw, problem = read_json(path)
    if problem:
        raise _bad(path, problem)
    trainer = raw.get("trainer") if isinstance(raw, dict) else None
    if not isinstance(trainer, dict):
        raise _bad(path, 'expected a JSON object with a "trainer" object (as dictionary_learning\'s training loop writes)')
    missing = [k for k in ("dict_class", "activation_dim", "dict_size") if k not in trainer]
    if missing:
        raise _bad(path, f"trainer: missing fields {missing}")
    dict_class = trainer["dict_class"]
    if dict_class not in DICT_CLASSES:
        raise _bad(path, f"dict_class {str(dict_class)[:80]!r} has no equivalent here (expected one of {', '.join(DICT_CLASSES)})")
    d_in, d_sae = trainer["activation_dim"], trainer["dict_size"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (d_in, d_sae)):
        raise _bad(path, f"activation_dim = {d_in!r}, dict_size = {d_sae!r}: expected positive integers")
    if DICT_CLASSES[dict_class].has_k:
        k = trainer.get("k")
        if not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= d_sae):
            raise _bad(path, f"trainer.k = {k!r}: expected an integer 1..dict_size ({d_sae})")
    return trainer


def _check_stored_size(path: Path, shapes: dict) -> None:
    """Refuse an ae.pt whose stored tensors are far larger than config.json's sizes allow, from the zip's
    directory alone (torch.save writes a zip; its members' sizes are known before any is read): a file
    claiming a small SAE must not make this process read gigabytes."""
    if not path.is_file():
        raise _bad(path, "missing")
    limit = 8 * sum(max(1, torch.Size(s).numel()) for s in shapes.values()) + 2**20   # float64 at most, + 1 MiB
    try:
        with zipfile.ZipFile(path) as z:
            stored = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError):
        return                          # not a zip: safe_torch_load says what is wrong
    if stored > limit:
        raise _bad(path, f"holds {stored:,} bytes, more than the SAE config.json describes can take ({limit:,})")


def load_dictionary_learning(folder) -> tuple[SAE, dict]:
    """(this project's SAE in eval mode, the folder's trainer config) from a dictionary_learning folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: no such folder (expected a dictionary_learning folder with {CONFIG_FILENAME} "
                            f"and {WEIGHTS_FILENAME})")
    trainer = read_config(folder)
    cfg_path, path = folder / CONFIG_FILENAME, folder / WEIGHTS_FILENAME
    kind = DICT_CLASSES[trainer["dict_class"]]
    d_in, d_sae = trainer["activation_dim"], trainer["dict_size"]
    too_big = memory_problem(d_in, d_sae)                             # from config.json, before ae.pt is read
    if too_big:
        raise _bad(cfg_path, too_big)
    _check_stored_size(path, kind.shapes(d_in, d_sae))
    state = safe_torch_load(path, "dictionary_learning state dict (ae.pt)", REMEDY, map_location="cpu")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        hint = " (a training backup: it holds the optimizer too; use the ae.pt written when training ended)" \
            if isinstance(state, dict) and "ae" in state else ""
        raise _bad(path, f"expected a state_dict of tensors{hint}")
    expected = kind.shapes(d_in, d_sae)
    if trainer["dict_class"] == "MatryoshkaBatchTopKSAE":
        expected["group_sizes"] = tuple(state["group_sizes"].shape) if "group_sizes" in state else ()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        detail = "; ".join(s for s in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if s)
        raise _bad(path, f"a {trainer['dict_class']} holds the tensors {sorted(expected)} ({detail})")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise _bad(path, f"{name} is {list(state[name].shape)}, expected {list(shape)} (config.json: activation_dim "
                             f"{d_in}, dict_size {d_sae})")
    floats = {}
    for name, t in state.items():
        if name in ("k", "group_sizes"):
            continue
        if not t.is_floating_point():
            raise _bad(path, f"{name} is {t.dtype}, expected a float tensor")
        if not bool(torch.isfinite(t).all()):
            raise _bad(path, f"{name} holds non-finite values")
        floats[name] = t.detach().float()
    settings = {}
    if kind.has_k:
        k_file = int(state["k"])
        if k_file != trainer["k"]:
            raise _bad(path, f"k = {k_file} but config.json says k = {trainer['k']}")
        settings["k"] = k_file
    if "group_sizes" in expected:
        sizes = [int(v) for v in state["group_sizes"].reshape(-1).tolist()]
        if not sizes or any(v < 1 for v in sizes) or sum(sizes) != d_sae:
            raise _bad(path, f"group_sizes {sizes[:8]}: expected positive sizes summing to dict_size ({d_sae})")
        settings["prefixes"] = tuple(torch.tensor(sizes).cumsum(0).tolist())
    try:
        converted = kind.convert(floats)
        sae = build_sae(sae_config(kind.architecture, d_in=d_in, d_sae=d_sae, **settings))
    except ValueError as e:
        raise _bad(path, " ".join(str(e).split())[:200]) from None
    with torch.no_grad():
        for name, value in converted.items():
            getattr(sae, name).copy_(value)
    return sae.eval(), trainer
