"""DP two-tower: the two-tower model (:mod:`avrec.models.neural.two_tower`) trained with
user-level differential privacy by DP-SGD, the per-sample gradients, clipping and noise done by
Opacus (``GradSampleModule`` + ``DPOptimizer``), the budget by the avrec accountant.

- **One example is one user.** Each step draws its users by Poisson sampling (each user in the
  step with probability ``q = batch_size / n_users``, from secret randomness, as the
  subsampling amplification assumes); a drawn user's example is at most
  ``max_items_per_user`` of their items, a share (``target_share``) held out as targets and
  the rest pooled by the user tower, scored against the targets and ``negatives`` catalog items
  drawn for the step (a multinomial likelihood over those candidates, averaged over the
  user's targets). The gradient of that one loss -- everything the user lends the step -- is
  clipped to L2 norm ``max_grad_norm``; the clipped sum gets Gaussian noise of standard
  deviation ``sigma * max_grad_norm``.
- **Everything trained from interactions goes through DP-SGD**: the item tower's projection
  and logit bias of the content vectors, the attention and the user map. The content vectors
  (pretrained text, genres) are public. With ``item_ids`` (the default) every catalog item
  gets an ID embedding and ID logit bias, trained by the same noisy gradient (which items had
  interactions is not public, so no "warm" flag comes from the data).
- **Fixed training**: ``epochs`` passes in expectation (``steps = round(epochs / q)``), no
  validation split or early stopping (both would read the data outside the accounting); the
  kept weights are the moving average of the noisy iterates (post-processing, free).
- **Accounting**: ``sigma`` is the smallest noise multiplier for which the Poisson-subsampled
  Gaussian repeated ``steps`` times is ``(epsilon, delta)``-DP
  (:func:`avrec.models.private.accountant.dpsgd_noise_multiplier`, RDP by default); the
  record also holds Opacus's own RDP accountant's epsilon for the same run, as a cross-check.

``epsilon=None`` trains the same way (Poisson sampling, clipping) without noise: the
non-private reference of the same training setup.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from avrec.encoders.text import TEXT_DIM
from avrec.models.base import TrainData
from avrec.models.neural.towers import content_inputs, content_recipe, pad, without_media
from avrec.models.neural.two_tower import TwoTower, TwoTowerConfig
from avrec.models.private.accountant import (
    Accountant,
    check_budget,
    default_delta,
    dpsgd_epsilon,
    dpsgd_noise_multiplier,
)
from avrec.models.private.clipping import PrivateConfig, release_record
from avrec.models.private.model import PrivateRecommender


class DPTwoTowerConfig(PrivateConfig, TwoTowerConfig):
    #: the defaults below were chosen on ml-100k msr seed 1 at epsilon 8 (docs/privacy.md)
    #: smaller than the non-private default: the noise grows with the number of weights
    dim: int = 64
    #: item ID embeddings and ID logit biases for every catalog item, trained under DP-SGD
    #: (per step, Opacus holds a batch x items x dim per-user gradient of the table); off:
    #: items are their content vectors through the trained projection only
    item_ids: bool = True
    #: passes over the users in expectation; steps = round(epochs * n_users / batch_size)
    epochs: int = Field(default=10, ge=1)
    #: the expected number of users per step (Poisson sampling rate batch_size / n_users);
    #: larger batches divide the same noise among more users
    batch_size: int = Field(default=256, ge=1)
    #: the L2 bound of one user's gradient per step
    max_grad_norm: float = Field(default=1.0, gt=0)
    lr: float = 1e-3
    #: at most this many of a user's items make their example (a fresh random draw per step)
    max_items_per_user: int = Field(default=64, ge=2)
    #: catalog items drawn per step as the negatives every example is scored against
    negatives: int = Field(default=256, ge=1)
    #: "auto" is refused: its probe trains on the data outside the accounting
    media: Literal["auto", "on", "off"] = "off"
    accountant: Accountant = "rdp"

    @model_validator(mode="after")
    def _only_dp_sgd(self) -> Self:
        """Refuse the two-tower's parts that would read the data outside DP-SGD."""
        for bad, why in (
            (self.media == "auto", 'media "auto" (its probe reads the data); use "on" or "off"'),
            (self.user_attributes, "user_attributes (their encoding is fitted on the users)"),
            (self.finetune_text_layers > 0, "finetune_text_layers (the text fine-tuning)"),
        ):
            if bad:
                raise ValueError(f"dp-two-tower: {why} is not trained under DP-SGD")
        return self


class DPTwoTower(PrivateRecommender, TwoTower):
    name = "dp-two-tower"
    Config = DPTwoTowerConfig
    config: DPTwoTowerConfig

    def _train(self, data: TrainData) -> None:
        c = self.config
        content = content_inputs(data, c.encoder)
        self.recipe = content_recipe(data, content)
        self.attributes, self.user_attrs = None, None
        self.media_used = bool(int(self.recipe["recipe_media_width"])) and c.media == "on"
        self.media_probe = None
        if not self.media_used:
            content = without_media(content, self.recipe)
        n_users = data.n_users
        q = min(1.0, c.batch_size / max(n_users, 1))
        steps = max(1, round(c.epochs / q))
        sigma, delta = self._noise_multiplier(n_users, q, steps)
        self.net = self._build(content, np.full(len(content), c.item_ids))
        if not c.item_ids:  # unused (every item is "cold"): neither trained nor noised
            for p in (*self.net.items.ids.parameters(), *self.net.items.id_bias.parameters()):
                p.requires_grad_(False)
        self._dp_sgd(data, q, steps, sigma)
        self.history_log = []
        self.text_tuner = None
        text = data.item_features.get("text")
        self.text_dim = int(text.shape[1]) if text is not None and text.shape[1] else TEXT_DIM
        self._cache()
        self.privacy_ = self._record(n_users, q, steps, sigma, delta)

    def _noise_multiplier(self, n_users: int, q: float, steps: int) -> tuple[float, float | None]:
        c = self.config
        if c.epsilon is None:
            return 0.0, None
        delta = c.delta if c.delta is not None else default_delta(n_users)
        check_budget(c.epsilon, delta, n_users)
        with _quiet_absl():
            return dpsgd_noise_multiplier(c.epsilon, delta, q, steps, c.accountant), delta

    def _dp_sgd(self, data: TrainData, q: float, steps: int, sigma: float) -> None:
        """``steps`` DP-SGD steps on ``self.net``; leaves the averaged weights in it."""
        import torch
        from opacus.optimizers import DPOptimizer

        from avrec.models.neural.towers import WeightAverage

        c = self.config
        m = (data.matrix > 0).tocsr()
        rows = [m.indices[m.indptr[u] : m.indptr[u + 1]] for u in range(m.shape[0])]
        n_items = m.shape[1]
        model = per_user_module(self.net, c.temperature)
        model.train()
        params = [p for p in self.net.parameters() if p.requires_grad]
        noise = torch.Generator()
        if c.noise_seed is None:
            noise.seed()  # fresh entropy: a release
        else:
            noise.manual_seed(c.noise_seed)
        optimizer = DPOptimizer(
            torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
            noise_multiplier=sigma,
            max_grad_norm=c.max_grad_norm,
            expected_batch_size=c.batch_size,
            loss_reduction="mean",
            generator=noise,
        )
        # who is in a step is secret (subsampling amplification assumes it); the draws
        # inside an example and the negatives may be public: they do not depend on the data
        sampler = np.random.default_rng(None if c.noise_seed is None else [c.noise_seed, 1])
        rng = np.random.default_rng(c.seed)
        average = WeightAverage(self.net, c.weight_average)
        with warnings.catch_warnings():
            # torch warns that the hooks fire on outputs only: the inputs are indices, as meant
            warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
            for _ in range(steps):
                drawn = np.flatnonzero(sampler.random(len(rows)) < q)
                batch = [u for u in drawn if len(rows[u]) >= 2]  # others: a zero gradient
                optimizer.zero_grad()
                if batch:
                    hist, cands, valid = _examples([rows[u] for u in batch], n_items, c, rng)
                    logits = model(torch.from_numpy(hist), torch.from_numpy(cands))
                    _user_losses(logits, torch.from_numpy(valid[0]), valid[1]).sum().backward()
                else:  # an empty step still adds its noise
                    for p in params:
                        p.grad_sample = torch.zeros((0, *p.shape))
                optimizer.step()
                average.update(self.net)
        model.remove_hooks()
        average.swap_in(self.net)  # the average is kept; the live weights are dropped

    def _record(
        self, n_users: int, q: float, steps: int, sigma: float, delta: float | None
    ) -> dict[str, Any]:
        import opacus

        c = self.config
        record = release_record(
            c,
            n_users,
            sigma,
            delta,
            c.max_grad_norm,
            "the network's weights after DP-SGD (the moving average of the noisy iterates)",
            {
                "max_grad_norm": c.max_grad_norm,
                "unit": "one user's example per step (their items, at most "
                f"{c.max_items_per_user}), its gradient clipped as a whole",
                "max_items_per_user": c.max_items_per_user,
            },
        )
        with _quiet_absl():
            spent = dpsgd_epsilon(sigma, q, steps, delta, c.accountant) if delta else None
        record.update(
            {
                "epsilon_spent": spent,
                "epsilon_spent_opacus_rdp": _opacus_epsilon(sigma, q, steps, delta),
                "mechanism": (
                    f"dp-sgd: Poisson-subsampled Gaussian, per-user clipping (opacus "
                    f"{opacus.__version__}), {c.accountant.upper()} accounting (dp-accounting)"
                    if delta is not None
                    else "none: dp-sgd's sampling and clipping without noise, not private"
                ),
                "sampling_rate": q,
                "steps": steps,
                "epochs": c.epochs,
                "expected_batch_size": c.batch_size,
                "accountant": c.accountant,
                "trained": "item tower (content projection, content logit bias"
                + (", item ID embeddings and biases" if c.item_ids else "")
                + "), user tower (attention, map)",
            }
        )
        return record

    def load_state_arrays(self, state, path) -> None:
        super().load_state_arrays(state, path)
        self.load_privacy(path)


def _examples(
    rows: list[np.ndarray], n_items: int, c: DPTwoTowerConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, int]]:
    """Each user's example: (histories ``[B, L]`` padded with -1, candidates ``[B, T + K]``
    (the user's targets, padded, then the step's ``K`` negatives), (which candidates count
    ``[B, T + K]``, ``T``)). A negative that is one of the user's own items does not count."""
    negatives = rng.choice(n_items, min(c.negatives, n_items), replace=False)
    hists, targets = [], []
    for r in rows:
        if len(r) > c.max_items_per_user:
            r = rng.choice(r, c.max_items_per_user, replace=False)
        n_t = min(max(1, round(c.target_share * len(r))), len(r) - 1)
        pick = np.zeros(len(r), bool)
        pick[rng.choice(len(r), n_t, replace=False)] = True
        targets.append(r[pick])
        hists.append(r[~pick])
    width = max(len(t) for t in targets)
    cands = np.zeros((len(rows), width + len(negatives)), np.int64)
    valid = np.zeros(cands.shape, bool)
    for n, (t, r) in enumerate(zip(targets, rows, strict=True)):
        cands[n, : len(t)] = t
        valid[n, : len(t)] = True
        cands[n, width:] = negatives
        valid[n, width:] = ~np.isin(negatives, r)
    return pad(hists, -1), cands, (valid, width)


def _user_losses(logits, valid, n_targets: int):
    """Each user's mean negative log-likelihood of their targets (the first ``n_targets``
    candidates where valid) under a softmax over their valid candidates."""
    import torch

    logp = torch.log_softmax(logits.masked_fill(~valid, -1e9), dim=1)[:, :n_targets]
    is_target = valid[:, :n_targets]
    return -(logp * is_target).sum(dim=1) / is_target.sum(dim=1)


def _scorer_class():
    from torch import nn

    class PerUserScores(nn.Module):
        """Logits ``[B, C]`` of each user's candidates from their history, every tensor with
        the user first, so that Opacus's hooks see one sample per user (the two-tower's
        full-catalog pass shares the item tower's activations across users instead)."""

        def __init__(self, net, temperature: float):
            super().__init__()
            self.net = net
            self.temperature = temperature

        def forward(self, hist, cands):
            users = self.net.users(hist, hist >= 0)
            vectors, bias = self.net.items(cands, with_bias=True)
            return (users[:, None, :] * vectors).sum(-1) / self.temperature + bias

    return PerUserScores


def per_user_module(net, temperature: float):
    """``net`` scoring each user's candidates, wrapped by Opacus so that every parameter gets
    a per-user gradient (``grad_sample``) of a loss that sums the users' own losses."""
    from opacus import GradSampleModule

    # strict=False: the item tower's buffers (content vectors, warm flags) are constant
    # lookup tables, not statistics mixed across a batch (what strict mode guards against)
    return GradSampleModule(_scorer_class()(net, temperature), loss_reduction="sum", strict=False)


def _opacus_epsilon(sigma: float, q: float, steps: int, delta: float | None) -> float | None:
    """Opacus's own RDP accountant's epsilon for the same steps (a cross-check)."""
    if delta is None or sigma <= 0:
        return None
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(sigma, q, steps)]
    return float(acc.get_epsilon(delta))


@contextmanager
def _quiet_absl():
    """dp-accounting's RDP search logs a warning per order it skips (hundreds per search)."""
    log = logging.getLogger("absl")
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)
