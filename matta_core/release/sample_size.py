"""Sample size per arm for an A/B test on a conversion-type (proportion) metric: two-proportion z-test.

    n = ( z_{1-α/2} · sqrt(2 · p̄ · (1 - p̄)) + z_{1-β} · sqrt(p1 (1 - p1) + p2 (1 - p2)) )² / (p2 - p1)²

with p1 the baseline rate, p2 = p1 + MDE (absolute), p̄ = (p1 + p2) / 2, power = 1 - β, two-sided α; rounded up.
The first term is the spread under H0 (both arms at the pooled rate), the second under H1. Normal quantiles
come from `statistics.NormalDist`, so no scipy is needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

FORMULA = ("n = (z_{1-a/2} * sqrt(2 * pbar * (1 - pbar)) + z_{1-b} * sqrt(p1 * (1 - p1) + p2 * (1 - p2)))^2 "
           "/ (p2 - p1)^2, pbar = (p1 + p2) / 2")


@dataclass(frozen=True)
class SampleSize:
    """The inputs, the quantiles used and the result, so a reader can redo the arithmetic."""

    baseline_rate: float
    minimum_detectable_effect: float
    alpha: float
    power: float
    target_rate: float
    z_alpha: float
    z_beta: float
    per_arm: int
    total: int
    test: str = "two-sided two-proportion z-test"
    formula: str = FORMULA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def two_proportion_sample_size(
    baseline_rate: float, minimum_detectable_effect: float, alpha: float = 0.05, power: float = 0.8
) -> SampleSize:
    """Rows per arm to detect an absolute change `minimum_detectable_effect` from `baseline_rate` (see module)."""
    p1, mde = float(baseline_rate), float(minimum_detectable_effect)
    p2 = p1 + mde
    if not 0.0 < p1 < 1.0:
        raise ValueError(f"baseline_rate must be in (0, 1), got {p1}")
    if mde == 0.0 or not 0.0 < p2 < 1.0:
        raise ValueError(f"minimum_detectable_effect must be non-zero with baseline_rate + effect in (0, 1); got "
                         f"{p1} + {mde} = {p2}")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")
    normal = NormalDist()
    z_alpha = normal.inv_cdf(1.0 - alpha / 2.0)
    z_beta = normal.inv_cdf(power)
    pbar = (p1 + p2) / 2.0
    root = z_alpha * math.sqrt(2.0 * pbar * (1.0 - pbar)) + z_beta * math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2))
    n = math.ceil(root**2 / (p2 - p1) ** 2)
    return SampleSize(p1, mde, alpha, power, p2, z_alpha, z_beta, n, 2 * n)
