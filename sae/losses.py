"""The SAE's loss terms, as pure functions of tensors."""
import torch


def normalized_mse(h: torch.Tensor, h_hat: torch.Tensor, var: float) -> torch.Tensor:
    """Squared error per input [batch, d_in] -> scalar, divided by the data's variance per input: a
    batch FVU, so sparsity coefficients do not depend on the activation scale."""
    return ((h - h_hat) ** 2).sum(1).mean() / var


def residual_fvu(residual: torch.Tensor, r_hat: torch.Tensor) -> torch.Tensor:
    """AuxK's loss: how badly r_hat [batch, d_in] rebuilds the residual [batch, d_in], divided by the
    residual's own variance (OpenAI, Gao et al. 2024)."""
    denom = ((residual - residual.mean(0)) ** 2).sum().clamp_min(1e-12)
    return ((residual - r_hat) ** 2).sum() / denom
