"""User attributes (age, gender, occupation, zip, ...) as a small vector per user.

Categorical columns become one-hot columns, one per value held by at least ``min_count``
users (rarer values get none); numeric columns are standardised (missing -> 0, the mean);
an ``age`` column also gets age-group one-hot columns, and a zip/postcode column is reduced to
its first character (a region) before the one-hot. The fitted encoding (column names, value
vocabulary, means and deviations) round-trips through :meth:`UserAttributes.state` as plain
arrays, so a saved model encodes users exactly as the trained one did. Users without
attributes (or unknown to the table) get a zero vector.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ZIP_COLUMNS = ("zip", "zipcode", "zip_code", "postcode", "postal_code")
AGE_BUCKETS = (18, 25, 35, 45, 50, 56)  # the MovieLens-1M age groups


def age_group(value: float) -> str:
    """``"<18"``, ``"18-24"``, ..., ``"56+"``; ``""`` for a missing age."""
    if not np.isfinite(value):
        return ""
    lower = [b for b in AGE_BUCKETS if b <= value]
    if not lower:
        return f"<{AGE_BUCKETS[0]}"
    n = AGE_BUCKETS.index(lower[-1])
    return f"{lower[-1]}+" if n == len(AGE_BUCKETS) - 1 else f"{lower[-1]}-{AGE_BUCKETS[n + 1] - 1}"


def as_numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce")


def is_numeric(column: pd.Series) -> bool:
    """Numeric when nearly every present value parses as a number."""
    present = column.dropna()
    present = present[present.astype(str).str.strip() != ""]
    return len(present) > 0 and as_numbers(present).notna().mean() >= 0.95


def categorical_values(users: pd.DataFrame, column: str) -> pd.Series:
    """The category each user has in ``column`` (derived for ``age_group`` and zips)."""
    if column == "age_group":
        return as_numbers(users["age"]).map(lambda v: age_group(float(v)))
    values = users[column].astype("string").str.strip().str.lower().fillna("")
    if column.lower() in ZIP_COLUMNS:
        values = values.str[:1]
    return values.astype(object)


class UserAttributes:
    """Fitted attribute encoding: ``fit(users)`` then ``transform(users) -> float32 [n, d]``."""

    def __init__(self, min_count: int = 5):
        self.min_count = min_count
        self.categories: list[str] = []  # "column=value", one per one-hot column
        self.numeric: list[str] = []
        self.means = np.zeros(0, np.float32)
        self.stds = np.ones(0, np.float32)

    @property
    def dim(self) -> int:
        return len(self.categories) + len(self.numeric)

    def fit(self, users: pd.DataFrame) -> UserAttributes:
        columns = [c for c in users.columns if c != "user_id"]
        numeric = [c for c in columns if c.lower() not in ZIP_COLUMNS and is_numeric(users[c])]
        categorical = [c for c in columns if c not in numeric]
        if "age" in numeric:
            categorical.append("age_group")
        self.categories = []
        for column in categorical:
            counts = categorical_values(users, column).value_counts()
            keep = sorted(v for v, n in counts.items() if v != "" and n >= self.min_count)
            self.categories += [f"{column}={v}" for v in keep]
        self.numeric = numeric
        values = (
            np.column_stack([as_numbers(users[c]).to_numpy(float) for c in numeric])
            if numeric
            else np.zeros((len(users), 0))
        )
        self.means = (
            np.nan_to_num(np.nanmean(values, axis=0)).astype(np.float32)
            if len(users)
            else np.zeros(len(numeric), np.float32)
        )
        stds = np.nan_to_num(np.nanstd(values, axis=0)) if len(users) else np.ones(len(numeric))
        self.stds = np.where(stds > 0, stds, 1.0).astype(np.float32)
        return self

    def transform(self, users: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(users), self.dim), dtype=np.float32)
        columns: dict[str, dict[str, int]] = {}
        for n, key in enumerate(self.categories):
            column, value = key.split("=", 1)
            columns.setdefault(column, {})[value] = n
        for column, index in columns.items():
            if column != "age_group" and column not in users.columns:
                continue
            if column == "age_group" and "age" not in users.columns:
                continue
            cols = categorical_values(users, column).map(index)
            rows = np.flatnonzero(cols.notna().to_numpy())
            out[rows, cols.iloc[rows].to_numpy(int)] = 1.0
        for n, column in enumerate(self.numeric):
            if column in users.columns:
                v = (as_numbers(users[column]).to_numpy(float) - self.means[n]) / self.stds[n]
                out[:, len(self.categories) + n] = np.nan_to_num(v)
        return out

    def user_matrix(self, users: pd.DataFrame | None, user_ids: np.ndarray) -> np.ndarray:
        """``[len(user_ids), dim]`` rows in ``user_ids`` order; zeros for users not in ``users``."""
        out = np.zeros((len(user_ids), self.dim), dtype=np.float32)
        if users is None or not self.dim:
            return out
        table = users.assign(user_id=users["user_id"].astype(str)).drop_duplicates("user_id")
        pos = pd.Index(table["user_id"]).get_indexer([str(u) for u in user_ids])
        found = pos >= 0
        if found.any():
            out[found] = self.transform(table.iloc[pos[found]].reset_index(drop=True))
        return out

    def state(self, prefix: str = "attr_") -> dict[str, np.ndarray]:
        return {
            f"{prefix}categories": np.array(self.categories, dtype=str),
            f"{prefix}numeric": np.array(self.numeric, dtype=str),
            f"{prefix}means": self.means,
            f"{prefix}stds": self.stds,
            f"{prefix}min_count": np.array(self.min_count),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], prefix: str = "attr_") -> UserAttributes:
        out = cls(int(state[f"{prefix}min_count"]))
        out.categories = [str(v) for v in state[f"{prefix}categories"]]
        out.numeric = [str(v) for v in state[f"{prefix}numeric"]]
        out.means = np.asarray(state[f"{prefix}means"], np.float32)
        out.stds = np.asarray(state[f"{prefix}stds"], np.float32)
        return out
