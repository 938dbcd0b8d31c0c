"""Privacy accounting for the Gaussian mechanism, on Google's ``dp-accounting`` library.

Two settings, each in both directions (``(sigma, delta) -> epsilon`` and, by bisection,
``(epsilon, delta) -> sigma``):

- one release of the Gaussian mechanism (what the private models here do: one noisy statistic
  per fit): exact, by the analytic Gaussian mechanism (Balle & Wang 2018,
  ``dp_accounting.get_epsilon_gaussian``);
- the Poisson-subsampled Gaussian repeated ``steps`` times (DP-SGD): by the RDP accountant
  (Mironov 2017) or the tighter privacy-loss-distribution (PLD) accountant.

``sigma`` is always the *noise multiplier*: the noise's standard deviation divided by the
statistic's L2 sensitivity (how far one user can move it), so the functions do not depend on
the statistic. Neighbouring datasets differ by adding or removing one user.

:func:`default_delta` is the delta used when none is given: ``min(1e-5, 1 / (10 n_users))``.
Delta is the probability that the epsilon guarantee fails outright, so it must be well below
``1 / n_users`` (a mechanism that publishes one random user's data whole is
``(0, 1/n_users)``-DP); 1e-5 is the common choice for datasets of up to 10,000 users and the
``1 / (10 n)`` rule keeps it below ``1 / n`` for larger ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from avrec.errors import AvrecError

Accountant = Literal["rdp", "pld"]
#: the PLD accountant's discretisation of the privacy loss (pessimistic: rounding only adds
#: to epsilon); the library's default 1e-4 takes a minute for a few hundred steps
PLD_INTERVAL = 1e-3
#: noise multipliers searched by the bisections
SIGMA_RANGE = (1e-3, 1e4)


class PrivacyBudgetError(AvrecError, ValueError):
    """A privacy budget that cannot be met or makes no sense (epsilon <= 0, delta outside
    ``(0, 1 / n_users)``, ...)."""


def default_delta(n_users: int) -> float:
    """``min(1e-5, 1 / (10 n_users))``: below ``1 / n_users`` for any number of users."""
    return min(1e-5, 1.0 / (10.0 * max(int(n_users), 1)))


def check_budget(epsilon: float, delta: float, n_users: int | None = None) -> None:
    """Raise :class:`PrivacyBudgetError` unless ``epsilon > 0`` and ``0 < delta < 1``, and,
    where ``n_users`` is given, ``delta < 1 / n_users``."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise PrivacyBudgetError(f"privacy epsilon must be a positive number, got {epsilon}")
    if not 0 < delta < 1:
        raise PrivacyBudgetError(f"privacy delta must be in (0, 1), got {delta}")
    if n_users is not None and delta >= 1.0 / max(n_users, 1):
        raise PrivacyBudgetError(
            f"privacy delta {delta:g} is not below 1/n_users = 1/{n_users} "
            "(such a delta allows publishing a user's data whole); use a smaller one"
        )


def gaussian_epsilon(sigma: float, delta: float) -> float:
    """Epsilon of one Gaussian release with noise multiplier ``sigma`` (exact)."""
    from dp_accounting import get_epsilon_gaussian

    if sigma <= 0:
        return math.inf
    return float(get_epsilon_gaussian(sigma, delta))


def gaussian_noise_multiplier(epsilon: float, delta: float) -> float:
    """The smallest noise multiplier whose single Gaussian release is ``(epsilon, delta)``-DP."""
    check_budget(epsilon, delta)
    return _bisect(lambda s: gaussian_epsilon(s, delta), epsilon)


def dpsgd_epsilon(
    sigma: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    accountant: Accountant = "rdp",
) -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps (each user in a step's batch with
    probability ``sampling_rate``, the batch's clipped sum noised with multiplier ``sigma``)."""
    import dp_accounting as dpa
    from dp_accounting import pld, rdp

    if not 0 < sampling_rate <= 1:
        raise PrivacyBudgetError(f"sampling rate must be in (0, 1], got {sampling_rate}")
    if steps < 1:
        raise PrivacyBudgetError(f"steps must be at least 1, got {steps}")
    if sigma <= 0:
        return math.inf
    event = dpa.SelfComposedDpEvent(
        dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(sigma)), int(steps)
    )
    acc: dpa.PrivacyAccountant
    if accountant == "rdp":
        acc = rdp.RdpAccountant()
    elif accountant == "pld":
        acc = pld.PLDAccountant(value_discretization_interval=PLD_INTERVAL)
    else:
        raise PrivacyBudgetError(f"unknown accountant {accountant!r} (rdp or pld)")
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def dpsgd_noise_multiplier(
    epsilon: float,
    delta: float,
    sampling_rate: float,
    steps: int,
    accountant: Accountant = "rdp",
) -> float:
    """The smallest noise multiplier for which :func:`dpsgd_epsilon` is at most ``epsilon``."""
    check_budget(epsilon, delta)
    rdp_sigma = _bisect(lambda s: dpsgd_epsilon(s, sampling_rate, steps, delta), epsilon, 1e-4)
    if accountant == "rdp":
        return rdp_sigma
    # PLD is tighter than RDP, so its sigma is at most RDP's; its cost grows as sigma shrinks,
    # so the search starts near RDP's answer, not at the bottom of SIGMA_RANGE
    return _bisect(
        lambda s: dpsgd_epsilon(s, sampling_rate, steps, delta, accountant),
        epsilon,
        1e-4,
        (max(rdp_sigma / 4, 0.2), rdp_sigma),
    )


def _bisect(
    epsilon_of: Callable[[float], float],
    target: float,
    rtol: float = 1e-8,
    bracket: tuple[float, float] = SIGMA_RANGE,
) -> float:
    """The smallest sigma in ``bracket`` with ``epsilon_of(sigma) <= target``
    (``epsilon_of`` decreases in sigma), to a relative tolerance ``rtol``, rounded up so the
    returned sigma meets the target; bisection on log sigma."""
    lo, hi = bracket
    if epsilon_of(hi) > target:
        raise PrivacyBudgetError(
            f"epsilon {target:g} needs a noise multiplier above {hi:g}; use a larger epsilon"
        )
    if epsilon_of(lo) <= target:
        return lo
    while hi / lo > 1 + rtol:
        mid = math.sqrt(lo * hi)
        if epsilon_of(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi
