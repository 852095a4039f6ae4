"""Where an SAE's training activations come from: a harvested tensor in memory, or the frozen MLP
itself, run on fresh task inputs drawn batch by batch (the task is free to sample).

Both give global batches of `batch_size` rows; under torchrun every rank draws the same global
batch and trains on its own disjoint slice of it (`rank_slice`), so N processes at batch B see
exactly the rows one process at batch B sees. Every draw goes through a `torch.Generator` whose
state travels in the training checkpoint, so a resumed run draws what an uninterrupted one would.

- `TensorSource`: the rows of a tensor (the harvested file minus its held-out rows), in a random
  order fixed by the training generator, a new permutation each epoch (the ragged tail dropped).
- `StreamSource`: the MLP's hidden layer on fresh inputs of the task's "sae_stream" seed stream;
  the held-out set is `n_eval` inputs of another stream ("sae_eval"), and any training input equal
  to a held-out one is redrawn, so the two are disjoint. Memory is one batch, whatever the number of
  samples.
"""
import torch

from dataset.task import draw_inputs, input_keys, stream_seed, target


def rank_slice(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's rows of a global batch [B, d]: contiguous, disjoint, B / world of them."""
    per = len(batch) // world
    return batch[rank * per:(rank + 1) * per]


class TensorSource:
    """Training rows of an in-memory tensor data [n_train, d_in]."""

    def __init__(self, data: torch.Tensor, generator: torch.Generator):
        self.data = data
        self.generator = generator
        self.n_train = len(data)
        self.d_in = data.shape[1]
        self.perm = None
        self.pos = 0

    def sample(self, n: int) -> torch.Tensor:
        """n distinct training rows (for b_dec's initialisation)."""
        return self.data[torch.randperm(self.n_train, generator=self.generator)[:n].to(self.data.device)]

    def draw(self, n: int) -> torch.Tensor:
        """n training rows drawn with replacement (decoder init from data, resampling scores)."""
        return self.data[torch.randint(self.n_train, (n,), generator=self.generator).to(self.data.device)]

    def start(self) -> None:
        self.perm, self.pos = torch.randperm(self.n_train, generator=self.generator), 0

    def next_batch(self, batch_size: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """This rank's rows [batch_size / world, d_in] of the next global batch."""
        if self.pos + batch_size > self.n_train:                     # new epoch (drop the ragged tail)
            self.perm, self.pos = torch.randperm(self.n_train, generator=self.generator), 0
        idx = rank_slice(self.perm[self.pos:self.pos + batch_size], rank, world).to(self.data.device)
        self.pos += batch_size
        return self.data[idx]

    @torch.no_grad()
    def variance(self, chunk: int = 65536) -> float:
        """mean ||h - mean(h)||^2 over the training rows, in chunks (no full-size temporary)."""
        h = self.data
        mean = sum(h[i:i + chunk].double().sum(0) for i in range(0, len(h), chunk)) / len(h)
        # in place on the one double copy of each chunk: the same values as (c - mean) ** 2, bit for
        # bit, with one [chunk, d_in] temporary instead of three (it was ~3x the geometric median's time)
        return float(sum(h[i:i + chunk].double().sub_(mean).pow_(2).sum() for i in range(0, len(h), chunk)) / len(h))

    def state_dict(self) -> dict:
        return {"perm": self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], state["pos"]


class StreamSource:
    """The frozen MLP's hidden layer on fresh inputs, drawn as they are needed."""

    VARIANCE_SAMPLE = 65536    # inputs the MSE's normaliser is estimated on (its error: ~0.5%)

    def __init__(self, mlp, seed: int, n_eval: int, device="cpu", chunk: int = 65536):
        self.mlp = mlp.to(device).eval()
        self.device = torch.device(device)
        self.d_in = mlp.cfg.d_hidden
        self.n_train = None                                           # unbounded
        self.chunk = chunk
        self.generator = torch.Generator().manual_seed(stream_seed(seed, "sae_stream"))
        self.eval_inputs = draw_inputs(n_eval, torch.Generator().manual_seed(stream_seed(seed, "sae_eval")))
        self._eval_keys = input_keys(self.eval_inputs).sort().values

    def inputs(self, n: int) -> torch.Tensor:
        """n fresh task inputs [n, 10], none of them in the held-out set."""
        x = draw_inputs(n, self.generator)
        while True:
            keys = input_keys(x)
            pos = torch.searchsorted(self._eval_keys, keys).clamp_max(max(len(self._eval_keys) - 1, 0))
            clash = (self._eval_keys[pos] == keys) if len(self._eval_keys) else torch.zeros(n, dtype=torch.bool)
            if not clash.any():
                return x
            x[clash] = draw_inputs(int(clash.sum()), self.generator)

    @torch.no_grad()
    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mlp.hidden(x[i:i + self.chunk].to(self.device)) for i in range(0, len(x), self.chunk)])

    def sample(self, n: int) -> torch.Tensor:
        return self.hidden(self.inputs(n))

    draw = sample

    def start(self) -> None:
        pass

    def next_batch(self, batch_size: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """This rank's rows [batch_size / world, d_in] of the next global batch: every rank draws the
        same global inputs (cheap) and runs the MLP on its own slice only."""
        return self.hidden(rank_slice(self.inputs(batch_size), rank, world))

    @torch.no_grad()
    def variance(self) -> float:
        """mean ||h - mean(h)||^2, estimated on VARIANCE_SAMPLE inputs of a stream of its own."""
        x = draw_inputs(self.VARIANCE_SAMPLE, torch.Generator().manual_seed(self.generator.initial_seed() + 1))
        h = self.hidden(x).double()
        return float(((h - h.mean(0)) ** 2).sum(1).mean())

    def held_out(self) -> tuple:
        """(activations [n_eval, d_in], inputs [n_eval, 10], targets [n_eval]) of the held-out set."""
        return self.hidden(self.eval_inputs).cpu(), self.eval_inputs, target(self.eval_inputs)

    def state_dict(self) -> dict:
        return {"stream_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["stream_generator"])
