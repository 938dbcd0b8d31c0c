"""Simulated requests for learning the request blend (models.hybrid.requestrank): a request
an item answers, built from that item's own catalog text, asked by someone who has the item in
their training data (the item is then hidden from their history).

Phrases mimic what people tag films with: a genre, a tag of the catalog, or a content word or
pair of words of the description; never the title or the names the description mentions, which
would give the answer away.
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

from avrec.data.dataset import split_multi
from avrec.models.base import TrainData

#: words too common to ask for anything
_STOP = frozenset(
    re.findall(
        r"\w+",
        """
        a about above after again against all also among an and any are around as at away back be
        became because become becomes been before being between both but by can could did do does
        down during each even ever every few for from further get gets getting had has have having
        he her here hers herself him himself his how however i if in into is it its itself just
        later life like made make makes man many may me men more most much must my new no nor not
        now of off old on once one only or other our out over own same she should so some soon
        still such take takes than that the their them then there these they this those through
        time to too two under until up upon very was way we were what when where which while who
        whom whose why will with woman women world would year years yet you young your
        """,
    )
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def item_phrases(row: dict) -> tuple[list[str], list[str], list[str]]:
    """(genres, tags, description phrases) of one catalog row, lower-cased: content words of the
    description and pairs of adjacent ones, leaving out stop words, words of the title and
    names (words the description only writes capitalised)."""
    genres = [g.lower() for g in split_multi(row.get("genres")) if not g.startswith("(")]
    tags = [t.split(":", 1)[-1].strip().lower() for t in split_multi(row.get("tags"))]
    desc = row.get("description")
    title = {w.lower() for w in _WORD.findall(str(row.get("title") or ""))}
    if not isinstance(desc, str) or not desc.strip():
        return genres, [t for t in tags if t], []
    tokens = _WORD.findall(desc)
    # capitalised and never written in lower case in the description: a name
    names = {t.lower() for t in tokens if t[0].isupper()} - {t for t in tokens if t[0].islower()}
    words = [t.lower() for t in tokens]
    ok = [len(w) > 3 and w not in _STOP and w not in title and w not in names for w in words]
    phrases = [w for w, good in zip(words, ok, strict=True) if good]
    phrases += [f"{words[n]} {words[n + 1]}" for n in range(len(words) - 1) if ok[n] and ok[n + 1]]
    return genres, [t for t in tags if t], phrases


def simulated_request(row: dict, rng: np.random.Generator) -> str | None:
    """A request the item answers, from its own text: a tag (half the time, where it has
    some), else a genre or a description phrase; None when it has no text to ask with."""
    genres, tags, phrases = item_phrases(row)
    if tags and (rng.random() < 0.5 or not (genres or phrases)):
        return str(rng.choice(tags))
    if phrases and (not genres or rng.random() < 0.6):
        return str(rng.choice(phrases))
    return str(rng.choice(genres)) if genres else None


def simulate(
    data: TrainData, n_requests: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(users, hidden items, request texts): people in turn (shuffled; each hides distinct
    items), an item of theirs with text to ask with, and its request."""
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(data.matrix > 0)
    eligible = np.flatnonzero(np.diff(x.indptr) >= 2)
    rows = data.items.to_dict("records")
    users: list[int] = []
    items: list[int] = []
    texts: list[str] = []
    order = rng.permutation(eligible)
    rounds = int(np.ceil(n_requests / max(len(order), 1)))
    picks = {int(u): rng.permutation(x.indices[x.indptr[u] : x.indptr[u + 1]]) for u in order}
    for r in range(rounds):
        for u in order:
            if len(users) >= n_requests:
                break
            mine = picks[int(u)]
            if r >= len(mine) - 1:  # keep at least one item in the history
                continue
            text = simulated_request(rows[int(mine[r])], rng)
            if text:
                users.append(int(u))
                items.append(int(mine[r]))
                texts.append(text)
    return np.array(users, np.int64), np.array(items, np.int64), texts
