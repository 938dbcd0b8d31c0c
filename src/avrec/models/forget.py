"""Removing users from a saved model folder, without retraining and without loading the model.

A model folder (see :mod:`avrec.models.base`) holds per-user state in two places: the user
vocabulary (``users.json``) and the rows of some arrays in ``state.npz``: the training matrix
and its recency ranks (CSR, users x items), and per-model arrays such as ALS/BPR user factors,
bias and rating models' user biases, factors and residuals, two-tower user attributes, and in
the hybrid's parts (``parts/<name>/state.npz``) the backbone's rating weights and the cold
ranker's activity years. :func:`forget_users` rewrites both
without the users' rows; every other user keeps their relative order, so the model scores
everyone else exactly as before. Learned item-item state (EASE or kNN weights, the first-items
map, item factors, network weights) is an aggregate over all users and stays until the next
training, except where :func:`unlearn_users` can remove it exactly: EASE's weights and the
hybrid's EASE backbone are updated as if trained without the users (a low-rank update,
models.baselines.ease_update), and what it cannot update is reported as pending a retrain.

The folder is replaced atomically: the new folder is built next to it (unchanged files are
hard links) and swapped in with two renames, so a reader sees the old or the new model,
never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from avrec.data.npz import Streamed, write_npz
from avrec.models.base import MANIFEST, STATE
from avrec.models.capabilities import NotUpdatable, Unlearned, Unlearns

USERS = "users.json"
#: arrays with one row per training user
USER_ROWS = ("state__user_factors", "state__user_bias", "state__user_f", "state__user_attrs")
#: CSR matrices with one row per training user: prefix -> key of the shape (None: derived)
USER_CSR = {"train": "train_shape", "recency": "train_shape", "state__res": None}
#: the same in the state of a model's parts (``parts/<name>/state.npz``, models.hybrid)
PART_USER_ROWS = ("signal_user_year",)
PART_USER_CSR = {"rf": "rf_shape"}
#: saved arrays of at least this many bytes are mapped from the file where a model unlearns
#: from them (Recommender.unlearns_mapped)
MAP_FROM = 1 << 20


class UnknownUserArray(RuntimeError):
    """A saved array looks per-user but is not known to be one: refuse rather than leave it."""


def model_folders(root: Path) -> list[Path]:
    """``root`` and every saved model nested inside it (e.g. a ranker's parts)."""
    return sorted({p.parent for p in root.rglob(MANIFEST)})


def holds_users(root: Path, user_ids: Iterable[str]) -> bool:
    wanted = set(user_ids)
    return any(
        wanted & set(json.loads((f / USERS).read_text()))
        for f in model_folders(root)
        if (f / USERS).is_file()
    )


def _rewrite_state(
    folder: Path,
    keep: np.ndarray,
    n_users: int,
    replace: Mapping[str, Mapping[str, np.ndarray | Streamed]] | None = None,
) -> None:
    """The folder's ``state.npz`` and its parts' (``parts/*/state.npz``) without the rows of
    the users ``keep`` leaves out (``replace``: arrays to set, by state file relative to the
    folder and key; see :class:`avrec.models.capabilities.Unlearned`)."""
    replace = replace or {}
    with np.load(folder / STATE, allow_pickle=False) as z:
        n_items = int(z["train_shape"][1]) if "train_shape" in z.files else -1
    _rewrite_arrays(
        folder / STATE, keep, n_users, n_items, USER_ROWS, USER_CSR, replace.get(STATE, {})
    )
    for part in sorted(folder.glob(f"parts/*/{STATE}")):
        if not (part.parent / MANIFEST).is_file():  # a nested model is handled on its own
            rel = part.relative_to(folder).as_posix()
            _rewrite_arrays(
                part, keep, n_users, n_items, PART_USER_ROWS, PART_USER_CSR, replace.get(rel, {})
            )


def _rewrite_arrays(
    path: Path,
    keep: np.ndarray,
    n_users: int,
    n_items: int,
    user_rows: tuple[str, ...],
    user_csr: Mapping[str, str | None],
    replace: Mapping[str, np.ndarray | Streamed],
) -> None:
    with np.load(path, allow_pickle=False) as z:  # what ``replace`` sets is not read
        arrays = {k: z[k] for k in z.files if k not in replace}
        missing = set(z.files) - set(arrays)
    out = {**arrays, **replace}
    for prefix, shape_key in user_csr.items():
        if f"{prefix}_indptr" not in arrays:
            continue
        data, indices, indptr = (arrays[f"{prefix}_{p}"] for p in ("data", "indices", "indptr"))
        shape = tuple(arrays[shape_key]) if shape_key else (n_users, n_items)
        if len(indptr) != n_users + 1:
            raise UnknownUserArray(f"{path}: {prefix} has {len(indptr) - 1} rows, not {n_users}")
        m = sp.csr_matrix((data, indices, indptr), shape=shape)[keep]
        out[f"{prefix}_data"] = m.data.astype(data.dtype, copy=False)
        out[f"{prefix}_indices"] = m.indices.astype(indices.dtype, copy=False)
        out[f"{prefix}_indptr"] = m.indptr.astype(indptr.dtype, copy=False)
        if shape_key:
            out[shape_key] = np.array(m.shape, dtype=arrays[shape_key].dtype)
    for key in user_rows:
        if key in arrays:
            if arrays[key].shape[0] != n_users:
                raise UnknownUserArray(
                    f"{path}: {key} has {arrays[key].shape[0]} rows, not {n_users}"
                )
            out[key] = arrays[key][keep]
    handled = set(user_rows) | set(replace)
    handled |= {f"{p}_{s}" for p in user_csr for s in ("data", "indices", "indptr")}
    if n_users != n_items:  # where the sizes differ, an unlisted users-long array is caught
        odd = [
            k for k, v in arrays.items() if k not in handled and v.ndim and v.shape[0] == n_users
        ]
        if odd:
            raise UnknownUserArray(
                f"{path}: arrays {', '.join(odd)} have one row per user but "
                "are not known to avrec.models.forget; retrain instead"
            )
    if not missing and out.keys() == arrays.keys() and all(out[k] is arrays[k] for k in out):
        return  # nothing per-user here: the hard link stays
    path.unlink()  # a new file: never write through a link into the live folder
    write_npz(path, out)  # streamed arrays (an update of large weights) computed as written
    _fsync(path)


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a folder tree as hard links (a plain copy where links are not possible)."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


def unlearned(root: Path, user_ids: set[str]) -> Unlearned:
    """What the model saved at ``root`` learns without ``user_ids``, for models that
    can say (:class:`Unlearns`); for the others, the whole model is pending a retrain."""
    from avrec.models.base import Recommender
    from avrec.models.names import get_model_class

    klass = get_model_class(json.loads((root / MANIFEST).read_text())["model"])
    if klass.unlearns_mapped:  # the large arrays read as the update needs them, no catalog
        model = Recommender.load(root, map_from=MAP_FROM, read_catalog=False)
    else:
        model = Recommender.load(root)
    rows = np.flatnonzero(np.isin(model.fitted_parts()[0].ids, list(user_ids)))
    if not len(rows):
        return Unlearned({})
    if not isinstance(model, Unlearns):
        return Unlearned({}, [f"the model ({model.name}): learned from everyone at once"])
    try:
        return model.unlearn(rows)
    except NotUpdatable as exc:
        return Unlearned({}, [f"the model ({model.name}): {exc}"])


def forget_users(root: str | Path, user_ids: Iterable[str]) -> int:
    """Remove ``user_ids`` from the model saved at ``root`` (and models nested in it);
    returns how many user rows were removed (0: the folder is left untouched)."""
    return _forget(Path(root), set(user_ids), unlearn=False)[0]


def unlearn_users(root: str | Path, user_ids: Iterable[str]) -> tuple[int, Unlearned]:
    """:func:`forget_users`, and the learned state of the model at ``root`` updated as if it
    were trained without them (:func:`unlearned`) in the same atomic swap; returns the rows
    removed and what changed, with what still holds the users (``pending``)."""
    return _forget(Path(root), set(user_ids), unlearn=True)


def _forget(root: Path, wanted: set[str], unlearn: bool) -> tuple[int, Unlearned]:
    if not holds_users(root, wanted):
        return 0, Unlearned({})
    change = unlearned(root, wanted) if unlearn else Unlearned({})
    tmp = root.with_name(f".{root.name}.forget-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _link_tree(root, tmp)
    removed = 0
    try:
        for folder in model_folders(tmp):
            if not (folder / USERS).is_file():
                continue
            ids = json.loads((folder / USERS).read_text())
            keep = np.array([u not in wanted for u in ids], dtype=bool)
            if keep.all():
                continue
            _rewrite_state(folder, keep, len(ids), change.arrays if folder == tmp else None)
            (folder / USERS).unlink()  # a new file: never write through a link into the live folder
            (folder / USERS).write_text(
                json.dumps([u for u, k in zip(ids, keep, strict=True) if k])
            )
            _fsync(folder / STATE, folder / USERS)
            removed += int((~keep).sum())
        os.rename(root, old)
        os.rename(tmp, root)
    except BaseException:
        if not root.exists() and old.exists():  # failed between the two renames: put it back
            os.rename(old, root)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return removed, change


def _fsync(*paths: Path) -> None:
    for path in paths:
        with open(path, "rb") as f:
            os.fsync(f.fileno())
