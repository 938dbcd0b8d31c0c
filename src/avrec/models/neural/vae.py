"""Mult-VAE (Liang et al., "Variational Autoencoders for Collaborative Filtering", WWW 2018).

A user's history (binary, L2-normalised, dropped out while training) goes through a one-layer
encoder to a Gaussian latent (tanh), and a linear decoder gives a multinomial over the catalog;
trained with the multinomial log-likelihood plus ``beta`` times the KL term. Trained with torch;
scoring is plain numpy (``logits``), so serving needs no torch. As a collaborative model it
cannot place items without training interactions (their logits are pushed down uniformly).

The score of item ``i`` is not a sum over the history, so :func:`contributions` gives the
first-order attribution (gradient x input) of each history item to each logit.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from avrec.models.base import ModelConfig, Recommender, TrainData
from avrec.models.neural.towers import torch_threads
from avrec.models.timecap import TimeCap

log = logging.getLogger(__name__)


class VAEConfig(ModelConfig):
    hidden: int = 600
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    dropout: float = 0.5
    beta: float = 0.2
    #: optional cap: stop after the epoch during which this many seconds of training passed
    #: (the weights as they are then), recorded in the fitted model; None: no cap, training
    #: runs all ``epochs`` (the same model on any machine). The 100 epochs took 15 s on
    #: ml-100k and 64 s on ml-latest-small (2-core machine), under the 300 s budget of before
    time_budget_s: float | None = None
    #: at most this many training steps (batches) in all: the epochs are cut to
    #: ``max_steps // steps per epoch`` (at least 1) when the users make an epoch long, since
    #: a step costs batch x items x hidden units whatever the user count. ml-100k (943 users,
    #: 800 steps) and ml-latest-small (610 users, 500) run all their epochs; None: no cap
    max_steps: int | None = Field(default=1000, ge=1)


PARAMS = ("enc_w", "enc_b", "dec_w", "dec_b")


def train_multvae(
    x: sp.csr_matrix,
    config: VAEConfig,
    capped: list[str] | None = None,
    start: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Weights ``enc_w [items, hidden]``, ``enc_b``, ``dec_w [hidden, items]``, ``dec_b`` of a
    Mult-VAE fitted to the users x items matrix ``x`` (values > 0 are interactions). When
    ``config.time_budget_s`` stops training early, a note is appended to ``capped``.
    ``start``: weights to continue from (a warm start; the variance half of the encoder,
    not kept, starts as a fit's does).

    The encoder reads each batch as a sparse matrix (a history is a few dozen of thousands of
    items), and training runs on one torch thread: on a shared 2-core machine two threads were
    three times slower (measured), and the decoder's dense matmuls dominate anyway."""
    import torch
    from torch import nn

    with torch_threads(1):
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        xb = (x > 0).astype(np.float32).tocsr()
        n_items, h = xb.shape[1], config.hidden
        bound = 1.0 / np.sqrt(n_items)
        enc_w = nn.Parameter(torch.empty(n_items, 2 * h).uniform_(-bound, bound))
        enc_b = nn.Parameter(torch.empty(2 * h).uniform_(-bound, bound))
        dec = nn.Linear(h, n_items)
        if start is not None:
            with torch.no_grad():
                enc_w[:, :h] = torch.from_numpy(np.asarray(start["enc_w"], np.float32))
                enc_b[:h] = torch.from_numpy(np.asarray(start["enc_b"], np.float32))
                dec.weight.copy_(torch.from_numpy(np.asarray(start["dec_w"], np.float32).T))
                dec.bias.copy_(torch.from_numpy(np.asarray(start["dec_b"], np.float32)))
        # fused: one kernel per step over all parameters (1.75-2x faster training here than
        # the per-tensor loop, same algorithm; results differ by float rounding only)
        opt = torch.optim.Adam([enc_w, enc_b, *dec.parameters()], lr=config.lr, fused=True)
        rows = np.flatnonzero(np.diff(xb.indptr) > 0)
        keep = 1.0 - config.dropout
        cap = TimeCap(config.time_budget_s, "vae")
        epochs = planned_epochs(len(rows), config)
        if epochs < config.epochs:
            log.info("vae: %d epochs of %d (max_steps %d)", epochs, config.epochs, config.max_steps)
        for epoch in range(epochs):
            perm = rng.permutation(rows)
            for b in range(0, len(perm), config.batch_size):
                sub = xb[perm[b : b + config.batch_size]].tocoo()
                counts = np.bincount(sub.row, minlength=sub.shape[0])
                norm = 1.0 / np.sqrt(counts[sub.row])
                mask = rng.random(sub.nnz) < keep  # input dropout
                vals = (norm * mask / keep).astype(np.float32)
                inp = torch.sparse_coo_tensor(
                    torch.from_numpy(np.vstack([sub.row, sub.col]).astype(np.int64)),
                    vals,
                    sub.shape,
                    check_invariants=False,
                )
                hid = torch.sparse.mm(inp, enc_w) + enc_b
                mu, logvar = hid.chunk(2, dim=1)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                logp = torch.log_softmax(dec(torch.tanh(z)), dim=1)
                nll = (
                    -logp[torch.from_numpy(sub.row).long(), torch.from_numpy(sub.col).long()].sum()
                    / sub.shape[0]
                )
                kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
                loss = nll + config.beta * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
            if cap.stop(epoch, epochs, False, capped):
                break
    return {
        "enc_w": enc_w.detach().numpy()[:, :h].copy(),  # the mean half of the encoder
        "enc_b": enc_b.detach().numpy()[:h].copy(),
        "dec_w": dec.weight.detach().numpy().T.copy(),
        "dec_b": dec.bias.detach().numpy().copy(),
    }


def planned_epochs(n_users: int, config: VAEConfig) -> int:
    """The epochs a fit on ``n_users`` users with interactions runs: ``config.epochs``, cut
    so that the steps stay within ``config.max_steps``."""
    if config.max_steps is None:
        return config.epochs
    per_epoch = max(1, -(-n_users // config.batch_size))
    return max(1, min(config.epochs, config.max_steps // per_epoch))


def encoder_state(
    params: dict[str, np.ndarray], histories: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation of the latent mean and each row's 1 / ||x||."""
    x = (histories > 0).astype(np.float32).tocsr()
    norm = np.sqrt(np.asarray(x.sum(axis=1)).ravel())
    inv = np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), 0.0).astype(np.float32)
    pre = np.asarray(sp.diags(inv) @ x @ params["enc_w"], np.float32) + params["enc_b"]
    return pre, inv


def logits(params: dict[str, np.ndarray], histories: sp.csr_matrix) -> np.ndarray:
    """``[n, items]`` decoder logits for each history (the latent mean, no sampling)."""
    pre, _ = encoder_state(params, histories)
    return decode(params, pre)


def decode(params: dict[str, np.ndarray], pre: np.ndarray) -> np.ndarray:
    """Decoder logits from the latent mean's pre-activation (:func:`encoder_state`)."""
    return np.tanh(pre) @ params["dec_w"] + params["dec_b"]


def attributions(
    params: dict[str, np.ndarray], history: sp.csr_matrix, items: np.ndarray
) -> np.ndarray:
    """``[len(items), n_history]``: gradient x input of each history item (in the order of
    ``history.indices``) on each item's logit, for one history row."""
    pre, inv = encoder_state(params, history[:1])
    return attributions_at(params, pre[0], float(inv[0]), history.indices, items)


def attributions_at(
    params: dict[str, np.ndarray],
    pre: np.ndarray,
    inv: float,
    hist_idx: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """:func:`attributions` from one row's :func:`encoder_state` (``pre``, ``inv``) and
    history items."""
    slope = 1.0 - np.tanh(pre) ** 2  # d tanh
    # d logit_i / d x_j = sum_k dec_w[k, i] * slope_k * enc_w[j, k] * inv
    # (normalisation held fixed)
    return (params["dec_w"][:, items].T * slope) @ params["enc_w"][hist_idx].T * inv


class MultVAE(Recommender):
    name = "vae"
    Config = VAEConfig
    config: VAEConfig

    def _fit(self, data: TrainData) -> None:
        self.params = train_multvae(data.matrix, self.config, self.time_capped_)

    def score(self, users, histories, queries=None) -> np.ndarray:
        return logits(self.params, histories)

    def contributions(
        self, history: sp.csr_matrix, items: np.ndarray, user: int = -1
    ) -> np.ndarray:
        return attributions(self.params, history, np.asarray(items))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.params)

    def load_state_arrays(self, state, path) -> None:
        self.params = {k: state[k] for k in PARAMS}


def grow_items(params: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """VAE weights for ``n`` more catalog items: no input weight, and marked not warm."""
    out = dict(params)
    out["enc_w"] = np.vstack([params["enc_w"], np.zeros((n, params["enc_w"].shape[1]), np.float32)])
    out["dec_w"] = np.hstack([params["dec_w"], np.zeros((params["dec_w"].shape[0], n), np.float32)])
    out["dec_b"] = np.concatenate([params["dec_b"], np.full(n, params["dec_b"].min(), np.float32)])
    out["warm"] = np.concatenate([params["warm"], np.zeros(n, bool)])
    return out
