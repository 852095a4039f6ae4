"""The MLP's metrics, one implementation for every stage and report."""
import torch

from sae.splice import iter_chunks


def regression_metrics(pred: torch.Tensor, y: torch.Tensor) -> dict:
    """MSE and exact-match (share of samples with round(prediction) == target)."""
    pred, y = pred.detach().float().flatten(), y.detach().float().flatten()
    return {
        "mse": float(((pred - y) ** 2).mean()),
        "exact_match": float((pred.round() == y.round()).float().mean()),
        "n": int(y.numel()),
    }


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
    """The MLP's predictions [n] on inputs x [n, 10], on the CPU."""
    return torch.cat([c.mlp.cpu() for c in iter_chunks(model, None, x, batch_size)])


def evaluate(model, x: torch.Tensor, y: torch.Tensor) -> dict:
    return regression_metrics(predict(model, x), y)
