"""P(engage | person, ad, context): a logistic model over the signals of ``ads.scoring``.

Fitted by Newton's method (iteratively reweighted least squares) with a small L2 penalty: six
features and an intercept need no more, and the fit is deterministic. Saved as JSON, with the
names of the features it reads: a file saved before a signal existed reads the signals it
names and gives the others no weight (files from before the visual signal still load).

Where the examples come from: :func:`trailer_examples` turns time-ordered histories into
"trailer ad" steps (the context is the item just watched; an ad is engaged with when the person
watches the item it promotes later), the same construction as ``benchmarks/bench_ads.py``; fit
it on training data only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avrec.ads.scoring import FEATURES
from avrec.errors import AvrecError


class EngagementFileError(AvrecError):
    """An engagement model file that cannot be read."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


@dataclass
class EngagementModel:
    """Logistic regression on the named ``features`` (a subset of :data:`FEATURES`)."""

    features: tuple[str, ...] = FEATURES
    l2: float = 1e-3
    coef_: np.ndarray | None = None
    intercept_: float = 0.0
    #: what the fit saw: rows, positives, iterations
    fit_info_: dict = field(default_factory=dict)

    def _columns(self) -> list[int]:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {list(FEATURES)}")
        return [FEATURES.index(f) for f in self.features]

    def fit(self, x: np.ndarray, y: np.ndarray, iterations: int = 50) -> EngagementModel:
        """``x``: ``[n, len(FEATURES)]`` (every signal; the model picks its own), ``y``: 0/1."""
        a = np.asarray(x, dtype=np.float64)[:, self._columns()]
        y = np.asarray(y, dtype=np.float64)
        if len(a) == 0 or y.min() == y.max():
            raise ValueError("engagement needs examples of both outcomes")
        design = np.hstack([a, np.ones((len(a), 1))])
        w = np.zeros(design.shape[1])
        w[-1] = np.log(y.mean() / (1 - y.mean()))
        penalty = self.l2 * len(a) * np.eye(len(w))
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        done = iterations
        for step in range(iterations):
            p = _sigmoid(design @ w)
            grad = design.T @ (p - y) + penalty @ w
            hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
            delta = np.linalg.solve(hess, grad)
            w -= delta
            if np.abs(delta).max() < 1e-8:
                done = step + 1
                break
        self.coef_, self.intercept_ = w[:-1], float(w[-1])
        self.fit_info_ = {"rows": len(a), "positives": int(y.sum()), "iterations": done}
        return self

    def logit(self, x: np.ndarray) -> np.ndarray:
        """The linear score for ``x`` ``[..., len(FEATURES)]``."""
        if self.coef_ is None:
            raise RuntimeError("the engagement model is not fitted")
        return np.asarray(x, dtype=np.float64)[..., self._columns()] @ self.coef_ + self.intercept_

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(engage) for ``x`` ``[..., len(FEATURES)]``."""
        return _sigmoid(self.logit(x))

    def terms(self, x: np.ndarray) -> dict[str, float]:
        """One feature row's contribution per feature to the logit (for explanations)."""
        if self.coef_ is None:
            raise RuntimeError("the engagement model is not fitted")
        row = np.asarray(x, dtype=np.float64)[self._columns()]
        return {f: float(c * v) for f, c, v in zip(self.features, self.coef_, row, strict=True)}

    def to_dict(self) -> dict:
        if self.coef_ is None:
            raise RuntimeError("the engagement model is not fitted")
        return {
            "features": list(self.features),
            "coef": [float(c) for c in self.coef_],
            "intercept": self.intercept_,
            "l2": self.l2,
            "fit": self.fit_info_,
        }

    @classmethod
    def from_dict(cls, doc: dict) -> EngagementModel:
        model = cls(features=tuple(doc["features"]), l2=float(doc.get("l2", 1e-3)))
        model._columns()
        coef = np.asarray(doc["coef"], dtype=np.float64)
        if coef.shape != (len(model.features),) or not np.isfinite(coef).all():
            raise ValueError("coef must hold one finite number per feature")
        model.coef_, model.intercept_ = coef, float(doc["intercept"])
        model.fit_info_ = dict(doc.get("fit", {}))
        return model

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> EngagementModel:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise EngagementFileError(f"{path}: no such engagement model file") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise EngagementFileError(f"{path}: not an engagement model ({exc})") from None


#: the person × context model learned on ml-100k's training part by benchmarks/bench_ads.py
#: (docs/benchmarks.md, "Video ads"), used where no engagement file is given. It is the fit
#: without the visual signal (its weight 0 here): with posters as the ads' images the visual
#: signal changed HR@5 by +0.002 (-0.000 to +0.005), and without it text-only catalogs score as
#: before. ``avrec ads fit`` learns a visual weight for a catalog whose looks matter.
DEFAULT = {
    "features": ["person", "context", "content", "interaction"],
    "coef": [0.9188, 0.3248, 0.0932, -0.0598],
    "intercept": -4.5664,
    "l2": 1e-3,
}


def default_engagement() -> EngagementModel:
    return EngagementModel.from_dict(DEFAULT)


def trailer_examples(
    histories: Sequence[Sequence[str]],
    promoted: Sequence[str],
    first_step: Sequence[int],
    max_steps: int,
    seed: int = 0,
    keep_empty: bool = False,
) -> list[tuple[int, int, list[int]]]:
    """Trailer-ad steps over time-ordered ``histories`` (item ids, oldest first): for each
    history ``u``, up to ``max_steps`` positions ``t >= first_step[u]`` (evenly spaced, the
    same for a given seed), each as ``(u, t, labels)``: for every promoted item, 1 when it comes
    after ``t``, 0 when it never appears, -1 (not eligible: already watched) when at or before
    ``t``. Steps with no positive are left out unless ``keep_empty``."""
    rng = np.random.default_rng(seed)
    where = {item: n for n, item in enumerate(promoted)}
    out = []
    for u, hist in enumerate(histories):
        positions = np.arange(first_step[u], len(hist) - 1)
        if len(positions) == 0:
            continue
        if len(positions) > max_steps:
            positions = np.sort(rng.choice(positions, max_steps, replace=False))
        first_seen: dict[str, int] = {}
        for t, item in enumerate(hist):
            if item in where and item not in first_seen:
                first_seen[item] = t
        for step in positions:
            t = int(step)
            labels = [
                -1 if first_seen.get(p, len(hist)) <= t else int(p in first_seen) for p in promoted
            ]
            if keep_empty or 1 in labels:
                out.append((u, t, labels))
    return out
