"""The SAE spliced into the MLP, and the one chunked pass over inputs every stage uses.

The spliced model is `head(decode(encode(hidden(x))))`: the MLP with its hidden layer replaced by
the SAE's reconstruction. An *edit* `edit(f) -> f` changes the feature activations f [batch, d_sae]
between encode and decode (see `analysis.causal.ablate` / `clamp`). With `with_error=True` the
SAE's (unedited) error term h - decode(encode(h)) is added back, so an unedited call returns the
MLP's own prediction; because the head is linear, an edit moves the prediction by the same amount
either way.

`iter_chunks` is the one loop over inputs in chunks: per chunk the hidden layer, the features and
both predictions, so a caller reduces as it goes and memory stays one chunk. `chunked_pass`
concatenates it for callers that want whole tensors.
"""
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

CHUNK = 8192   # inputs per chunk: [8192, 2048] float32 features are 64 MiB

Edit = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def spliced_forward(mlp, sae, x: torch.Tensor, edit: Edit | None = None, with_error: bool = False) -> torch.Tensor:
    """Prediction [batch] of the spliced MLP on inputs x [batch, 10]."""
    h = mlp.hidden(x)                                                   # [batch, d_in]
    f = sae.encode(h)                                                   # [batch, d_sae]
    f_edit = edit(f.clone()) if edit is not None else f
    h_hat = sae.decode(f_edit)                                          # [batch, d_in]
    if with_error:
        h_hat = h_hat + (h - sae.decode(f))
    return mlp.head(h_hat).squeeze(-1)


@dataclass
class Chunk:
    start: int                  # row of x where this chunk starts
    x: torch.Tensor             # [chunk, 10] on the models' device
    hidden: torch.Tensor        # [chunk, d_hidden]
    features: torch.Tensor | None   # [chunk, d_sae] (None without an SAE)
    spliced: torch.Tensor | None    # [chunk] spliced prediction (None without an SAE)
    mlp: torch.Tensor           # [chunk] the MLP's own prediction


@torch.no_grad()
def iter_chunks(mlp, sae, x: torch.Tensor, chunk: int = CHUNK) -> Iterator[Chunk]:
    """One pass over inputs x [n, 10] in chunks, on the MLP's device; `sae` may be None."""
    device = next(mlp.parameters()).device
    for i in range(0, len(x), chunk):
        xc = x[i:i + chunk].to(device)
        h = mlp.hidden(xc)                                              # [chunk, d_hidden]
        own = mlp.head(h).squeeze(-1)                                   # [chunk]
        f = spliced = None
        if sae is not None:
            f = sae.encode(h)                                           # [chunk, d_sae]
            spliced = mlp.head(sae.decode(f)).squeeze(-1)               # [chunk]
        yield Chunk(i, xc, h, f, spliced, own)


@torch.no_grad()
def chunked_pass(mlp, sae, x: torch.Tensor, chunk: int = CHUNK) -> dict:
    """{"hidden" [n, d_hidden], "features" [n, d_sae], "spliced" [n], "mlp" [n]} on the CPU
    (without an SAE, only "hidden" and "mlp")."""
    parts = {"hidden": [], "features": [], "spliced": [], "mlp": []}
    for c in iter_chunks(mlp, sae, x, chunk):
        for name, value in (("hidden", c.hidden), ("features", c.features), ("spliced", c.spliced), ("mlp", c.mlp)):
            if value is not None:
                parts[name].append(value.cpu())
    empty = {"hidden": (0, mlp.cfg.d_hidden), "mlp": (0,)}
    return {k: torch.cat(v) if v else torch.zeros(empty[k]) for k, v in parts.items() if v or k in empty}
