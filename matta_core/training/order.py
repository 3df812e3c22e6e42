"""The order training batches are drawn in, the same for every model family and every resume."""

from __future__ import annotations

import numpy as np
import torch


class BatchOrder:
    """Which rows each step uses: a permutation per epoch, seeded by (seed, epoch), read as one endless stream.

    Step `s` takes positions `[s * batch_size, (s + 1) * batch_size)` of the concatenated epoch permutations, so the
    last partial batch of an epoch is WRAPPED (completed with the first rows of the next epoch's order) rather than
    dropped: every row is used equally often and every step has a full batch. Because the order depends only on
    (seed, epoch, row count), a resumed run recomputes step `s`'s rows without any saved state.
    """

    def __init__(self, num_rows: int, batch_size: int, seed: int) -> None:
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.seed = seed
        self._cached: tuple[int, torch.Tensor] | None = None

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != epoch:
            # A fresh generator per epoch, keyed by (seed, epoch): no generator state to carry across a resume.
            rng = np.random.default_rng([self.seed, epoch])
            self._cached = (epoch, torch.from_numpy(rng.permutation(self.num_rows)))
        return self._cached[1]

    def rows(self, step: int) -> torch.Tensor:
        """The row indices of step `step` (0-based)."""
        start, end = step * self.batch_size, (step + 1) * self.batch_size
        parts = []
        while start < end:
            epoch, offset = divmod(start, self.num_rows)
            take = min(end - start, self.num_rows - offset)
            parts.append(self.epoch_permutation(epoch)[offset:offset + take])
            start += take
        return torch.cat(parts) if len(parts) > 1 else parts[0]
