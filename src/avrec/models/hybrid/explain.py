"""The hybrid's scores split by history item, for its explanations.

The collaborative part is linear in the history (EASE weights times each history item's
weight); the VAE's part is split by gradient x input (models.vae.attributions). Each is put in
the units of the blended score: over its own per-user spread, as ``Hybrid.score`` blends them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from avrec.models.arrays import dense_product, weights_block


def contribution_parts(model, histories: sp.csr_matrix, users: np.ndarray) -> dict:
    """What :func:`row_contributions` needs, computed once for a batch of histories of the
    fitted hybrid ``model``. Right after ``model.score`` of the same histories object and
    users (as ``recommend`` explains what it just ranked), the spreads and VAE state that
    scoring kept are reused instead of recomputed."""
    h = model.history_weights(histories, users).tocsr()
    h.sort_indices()
    parts: dict = {"h": h}
    if model.vae_params is None:
        return parts
    memo = model.scored_batch(histories, users)
    if memo is not None:
        parts.update(memo)  # scored just before: reuse, do not recompute
        return parts
    from avrec.models.neural.vae import encoder_state

    collab = dense_product(h, model.weights)
    pre, inv = encoder_state(model.vae_params, histories)
    _, _, sd_v = model.vae_parts(histories, pre)
    parts.update(
        sd_c=np.maximum(collab.std(axis=1), 1e-9),
        sd_v=sd_v[:, 0],
        pre=pre,
        inv=inv,
        a=model.vae_weights(histories)[:, 0],
    )
    return parts


def row_contributions(
    model, parts: dict, n: int, hist_idx: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Row ``n`` of a batch: ``[len(items), len(hist_idx)]`` contributions of its history
    items (in the order of ``hist_idx``, that row's ``indices``)."""
    h = parts["h"]
    cols, vals = h.indices[h.indptr[n] : h.indptr[n + 1]], h.data[h.indptr[n] : h.indptr[n + 1]]
    w = np.zeros(len(hist_idx), np.float32)
    if len(cols):
        pos = np.minimum(np.searchsorted(cols, hist_idx), len(cols) - 1)
        w = np.where(cols[pos] == hist_idx, vals[pos], 0.0)
    ease = (weights_block(model.weights, hist_idx, items) * w[:, None]).T
    if "pre" not in parts:
        return ease
    from avrec.models.neural.vae import attributions_at

    a = float(parts["a"][n])
    vae = attributions_at(
        model.vae_params, parts["pre"][n], float(parts["inv"][n]), hist_idx, items
    )
    warm = model.vae_warm[items]
    sd_c = float(parts["sd_c"][n])
    return np.where(
        warm[:, None], ease / sd_c + a * vae / float(parts["sd_v"][n]), (1.0 + a) * ease / sd_c
    )
