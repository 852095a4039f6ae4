"""The SAE in SAELens's on-disk layout, written and read with `safetensors` alone (no sae-lens).

A folder holding (file names as in SAELens's `sae_lens/constants.py`):

    cfg.json                  SAEConfig.to_dict(): the fields below + "architecture" + "metadata"
    sae_weights.safetensors   W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]
                              (+ threshold [d_sae] for jumprelu)
    sparsity.safetensors      "sparsity": log10 feature density [d_sae] (only when given)

so `sae_lens.SAE.load_from_disk(folder)` rebuilds the same SAE. The config fields follow SAELens
6.x (`sae_lens/saes/sae.py` SAEConfig: d_in, d_sae, dtype, device, apply_b_dec_to_input,
normalize_activations, reshape_activations, metadata; `topk_sae.py` TopKSAEConfig: k,
rescale_acts_by_decoder_norm; `jumprelu_sae.py` JumpReLUSAEConfig: none of its own), checked
against SAELens 6.54: its tensors have this project's names and layouts, and it subtracts b_dec
before encoding (apply_b_dec_to_input), as this project does. A cfg without
`metadata.sae_lens_version` would make SAELens run its pre-6 conversion, so one is always written.

Each architecture says what it is called in SAELens and what it adds (its SAELENS_ARCHITECTURE and
`saelens_extras`, in its own module): relu -> "standard", topk -> "topk" (k;
rescale_acts_by_decoder_norm false), jumprelu -> "jumprelu" (a threshold tensor = exp(log_threshold)),
gated -> "gated" (b_enc is its b_gate; r_mag, b_mag);
encode and decode are identical on both sides. An architecture without a SAELens name is refused.
The project's own config (training coefficients SAELens has no field for) travels in
`metadata.sae_ground_truth`, so a round trip gives back the same SAEConfig.

Folders SAELens itself wrote load too, with two folds that keep encode and decode equal:
apply_b_dec_to_input false (SAELens encodes h @ W_enc + b_enc) becomes b_enc + b_dec @ W_enc, and a
TopK with rescale_acts_by_decoder_norm true becomes a plain TopK with the decoder norms folded into
the encoder (`sae.topk.fold_decoder_norms`). The tensors' names and shapes, and whether the SAE fits
in memory, are checked from the safetensors header before any tensor is read.
"""
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from common.io import PipelineError, atomic_group, read_json
from common.validate import shown
from sae.base import ARCHITECTURES, SAE, memory_problem
from sae.registry import SAE_REMEDY, build_sae, config_fields, sae_config

SAE_CFG_FILENAME = "cfg.json"
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
SPARSITY_FILENAME = "sparsity.safetensors"
SPARSITY_TENSOR = "sparsity"
# the SAELens release whose on-disk format was checked against this module
SAE_LENS_VERSION = "6.54.0"
METADATA_KEY = "sae_ground_truth"   # the project's SAEConfig inside cfg["metadata"]

# SAELens base-config fields (SAEConfig in sae_lens/saes/sae.py)
BASE_FIELDS = ("d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations",
               "reshape_activations", "metadata", "architecture")
_DTYPES = {"float32", "float64", "float16", "bfloat16",
           "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16"}


def saelens_config(sae: SAE) -> dict:
    """The cfg.json SAELens's `SAEConfig.to_dict()` would write for this SAE."""
    if sae.SAELENS_ARCHITECTURE is None:
        raise PipelineError(f"architecture {sae.cfg.architecture!r} has no SAELens equivalent (SAELens can load "
                            f"{', '.join(_from_saelens())}); keep it in this project's sae_model.pth format")
    cfg = {
        "d_in": sae.cfg.d_in,
        "d_sae": sae.cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,        # pre = (h - b_dec) @ W_enc + b_enc, as here
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAE_LENS_VERSION,
            "sae_lens_training_version": SAE_LENS_VERSION,
            "model_name": "sae-ground-truth pointer-difference MLP",
            "hook_name": "hook_hidden",
            METADATA_KEY: sae.cfg.to_dict(),
        },
        "architecture": sae.SAELENS_ARCHITECTURE,
    }
    return {**cfg, **sae.saelens_extras()[0]}


def _from_saelens() -> dict:
    """SAELens architecture name -> this project's SAE class."""
    return {cls.SAELENS_ARCHITECTURE: cls for cls in ARCHITECTURES.values() if cls.SAELENS_ARCHITECTURE and cls.SAELENS_READS}


def saelens_writers(sae: SAE, density_log10: torch.Tensor | None = None, record: dict | None = None) -> dict:
    """{file name: function writing that file at a given path} of `sae` in SAELens's layout, everything
    checked before any is called; `density_log10` [d_sae] (log10 of each feature's firing rate, as
    `sae.metrics` gives it) goes to sparsity.safetensors, `record` (the SAE's provenance) to
    cfg.json's metadata."""
    cfg = saelens_config(sae)
    if record is not None:
        cfg["metadata"]["provenance"] = record
    state = {(sae.SAELENS_B_ENC if name == "b_enc" else name): sae.state_dict()[name].detach().cpu().float().contiguous()
             for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    state.update({k: v.detach().cpu().float().contiguous() for k, v in sae.saelens_extras()[1].items()})
    writers = {SAE_WEIGHTS_FILENAME: lambda path: save_file(state, str(path))}
    if density_log10 is not None:
        density = torch.as_tensor(density_log10).detach().cpu().float().reshape(-1).contiguous()
        if density.shape != (sae.cfg.d_sae,):
            raise ValueError(f"density_log10 has {density.numel()} values for d_sae = {sae.cfg.d_sae}")
        writers[SPARSITY_FILENAME] = lambda path: save_file({SPARSITY_TENSOR: density}, str(path))
    text = json.dumps(cfg, indent=2)
    writers[SAE_CFG_FILENAME] = lambda path: Path(path).write_text(text, encoding="utf-8")
    return writers


def save_saelens(sae: SAE, folder, density_log10: torch.Tensor | None = None, record: dict | None = None) -> None:
    """Write `sae` into `folder` in SAELens's layout, all files or none (see `saelens_writers`)."""
    writers = saelens_writers(sae, density_log10, record)
    with atomic_group([Path(folder) / name for name in writers]) as temps:
        for write, tmp in zip(writers.values(), temps):
            write(tmp)


def _bad(path: Path, what: str) -> PipelineError:
    return PipelineError(f"{path}: {what}; {SAE_REMEDY}")


def _read_cfg(folder: Path) -> dict:
    path = folder / SAE_CFG_FILENAME
    if not folder.is_dir():
        raise PipelineError(f"{folder}: no such folder (expected a SAELens SAE folder with {SAE_CFG_FILENAME}); {SAE_REMEDY}")
    if not path.is_file():
        raise _bad(path, "missing (a SAELens SAE folder holds cfg.json and sae_weights.safetensors)")
    cfg, problem = read_json(path)
    if problem:
        raise _bad(path, problem)
    if not isinstance(cfg, dict):
        raise _bad(path, f"expected a JSON object, got {type(cfg).__name__}")
    missing = [k for k in ("d_in", "d_sae", "architecture") if k not in cfg]
    if missing:
        raise _bad(path, f"missing fields {missing}")
    if not isinstance(cfg["architecture"], str):
        raise _bad(path, f"architecture = {shown(cfg['architecture'])}: expected a name like 'topk'")
    return cfg


def _project_class(path: Path, cfg: dict) -> type:
    arch = cfg["architecture"]
    classes = _from_saelens()
    if arch not in classes:
        raise _bad(path, f"SAELens architecture {arch!r} has no equivalent here (expected one of {', '.join(classes)})")
    return classes[arch]


def _check_cfg(path: Path, cfg: dict) -> dict:
    """The project's config settings stored in the cfg's metadata; refuses what this project's SAE
    cannot compute."""
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (d_in, d_sae)):
        raise _bad(path, f"d_in = {d_in!r}, d_sae = {d_sae!r}: expected positive integers")
    if not isinstance(cfg.get("dtype", "float32"), str) or cfg.get("dtype", "float32") not in _DTYPES:
        raise _bad(path, f"dtype {cfg.get('dtype')!r}: expected a float type")
    if not isinstance(cfg.get("apply_b_dec_to_input", True), bool):
        raise _bad(path, f"apply_b_dec_to_input = {cfg['apply_b_dec_to_input']!r}: expected true or false")
    for key in ("normalize_activations", "reshape_activations"):
        if cfg.get(key, "none") != "none":
            raise _bad(path, f"{key} = {cfg[key]!r}: only 'none' is supported")
    metadata = cfg.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _bad(path, "metadata: expected a JSON object")
    own = metadata.get(METADATA_KEY) or {}
    if not isinstance(own, dict):
        raise _bad(path, f"metadata.{METADATA_KEY}: expected this project's SAE config")
    return own


MAX_HEADER_BYTES = 100 * 2**20   # safetensors' own limit on the JSON header


def _header_shapes(path: Path) -> dict:
    """{tensor name: shape} from a safetensors file's header alone (8 bytes of length, then JSON): the
    sizes are checked before a single tensor is read."""
    if not path.is_file():
        raise _bad(path, "missing")
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {n}")
            header = json.loads(f.read(n).decode("utf-8"))
        return {name: tuple(int(v) for v in entry["shape"]) for name, entry in header.items() if name != "__metadata__"}
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
        raise _bad(path, f"not a readable safetensors file (header: {type(e).__name__})") from None


def _read_tensors(path: Path) -> dict:
    if not path.is_file():
        raise _bad(path, "missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        msg = " ".join(str(e).split())[:120]
        raise _bad(path, f"not a readable safetensors file ({type(e).__name__}: {msg})") from None


def _check_names_and_shapes(path: Path, shapes: dict, expected: dict) -> None:
    """The tensors' names and shapes (`shapes`, from the header or the loaded tensors) against `expected`."""
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        detail = "; ".join(s for s in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if s)
        raise _bad(path, f"expected the tensors {sorted(expected)} ({detail})")
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise _bad(path, f"{name} is {list(shapes[name])}, expected float {list(shape)}")


def _checked(path: Path, tensors: dict, expected: dict) -> dict:
    _check_names_and_shapes(path, {k: tuple(v.shape) for k, v in tensors.items()}, expected)
    out = {}
    for name, shape in expected.items():
        t = tensors[name]
        if not t.is_floating_point():
            raise _bad(path, f"{name} is {t.dtype} {list(t.shape)}, expected float {list(shape)}")
        t = t.float()
        if not torch.isfinite(t).all():
            raise _bad(path, f"{name} holds non-finite values")
        out[name] = t
    return out


def load_saelens(folder, device="cpu") -> SAE:
    """Rebuild this project's SAE (eval mode) from a SAELens folder, ours or SAELens's own."""
    folder = Path(folder)
    cfg_path, weights_path = folder / SAE_CFG_FILENAME, folder / SAE_WEIGHTS_FILENAME
    raw = _read_cfg(folder)
    cls = _project_class(cfg_path, raw)
    own = _check_cfg(cfg_path, raw)
    d_in, d_sae = raw["d_in"], raw["d_sae"]
    expected = {"W_enc": (d_in, d_sae), cls.SAELENS_B_ENC: (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,),
                **cls.saelens_extra_tensor_shapes(d_sae)}
    _check_names_and_shapes(weights_path, _header_shapes(weights_path), expected)   # before any tensor is read
    too_big = memory_problem(d_in, d_sae)
    if too_big:
        raise _bad(cfg_path, too_big)
    state = _checked(weights_path, _read_tensors(weights_path), expected)
    state["b_enc"] = state.pop(cls.SAELENS_B_ENC)
    if raw.get("apply_b_dec_to_input", True) is False:
        # SAELens encodes h @ W_enc + b_enc; this project (h - b_dec) @ W_enc + b_enc': the same with
        # b_enc' = b_enc + b_dec @ W_enc
        state["b_enc"] = state["b_enc"] + state["b_dec"] @ state["W_enc"]
    architecture = cls.config_class.__dataclass_fields__["architecture"].default
    try:
        settings, extra_state = cls.from_saelens_extras(raw, state)
    except KeyError as e:
        raise _bad(cfg_path, f"a {raw['architecture']} config without {e}") from None
    except ValueError as e:
        raise _bad(weights_path if "threshold" in str(e) or "W_dec" in str(e) else cfg_path, str(e)) from None
    known = config_fields(architecture)
    if own.get("architecture", architecture) != architecture:
        own = {}                    # written from another architecture of ours (batchtopk as jumprelu)
    if set(own) - set(known) - {"architecture"}:
        raise _bad(cfg_path, f"metadata.{METADATA_KEY}: expected this project's SAE config")
    values = {**{k: v for k, v in own.items() if k != "architecture"}, "d_in": d_in, "d_sae": d_sae, **settings}
    try:
        sae = build_sae(sae_config(architecture, **values))
    except (TypeError, ValueError) as e:
        raise _bad(cfg_path, " ".join(str(e).split())[:200]) from None
    for name in list(state):
        if name not in sae.state_dict():
            state.pop(name)
    sae.load_state_dict({**state, **extra_state})
    return sae.to(device).eval()


def load_saelens_sparsity(folder) -> torch.Tensor | None:
    """log10 feature density [d_sae] from sparsity.safetensors, or None when the folder has none."""
    folder = Path(folder)
    path = folder / SPARSITY_FILENAME
    if not path.exists():
        return None
    raw = _read_cfg(folder)
    _check_cfg(folder / SAE_CFG_FILENAME, raw)
    d_sae = raw["d_sae"]
    density = _checked(path, _read_tensors(path), {SPARSITY_TENSOR: (d_sae,)})[SPARSITY_TENSOR]
    if (density > 0).any():
        raise _bad(path, "log10 densities above 0 (a feature cannot fire on more than every input)")
    return density

