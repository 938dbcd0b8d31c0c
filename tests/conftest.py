"""Shared fixtures: paths to the shared real data (skip where absent) and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AVREC_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Property tests draw the same examples on every run ("repeatable"), so a test run's outcome
# depends on the code alone and CI cannot fail on an unlucky draw; HYPOTHESIS_PROFILE=explore
# draws fresh random examples (run it while working on the code under test: failures found
# that way become explicit regression tests).
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data; the test is skipped, with the reason, where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available here: {path} does not exist")
    return path


@pytest.fixture
def avrec_home(tmp_path, monkeypatch) -> Path:
    """An isolated AVREC_HOME with the default SQLite database inside it."""
    home = tmp_path / "avrec-home"
    monkeypatch.setenv("AVREC_HOME", str(home))
    monkeypatch.delenv("AVREC_DATABASE_URL", raising=False)
    return home


def piano_action_items(
    n_items: int, genres: tuple[str, str] = ("Music|Ambient", "Action|Thriller")
) -> pd.DataFrame:
    """The synthetic catalog the model tests share: odd items are calm piano pieces (``genres[0]``),
    even items loud action (``genres[1]``), IDs ``i0``, ``i1``, ..."""
    return pd.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(n_items)],
            "title": [
                f"{'Calm piano' if n % 2 else 'Loud action'} piece {n}" for n in range(n_items)
            ],
            "genres": [genres[0] if n % 2 else genres[1] for n in range(n_items)],
        }
    )


@pytest.fixture
def synthetic_dataset():
    """A small catalog with two clear taste groups (even/odd items), fixed seed."""
    from avrec.data import Dataset

    rng = np.random.default_rng(0)
    n_items, n_users = 40, 60
    items = piano_action_items(n_items)
    items["kind"] = ["music" if n % 2 else "movie" for n in range(n_items)]
    rows = []
    for u in range(n_users):
        group = u % 2
        liked = [i for i in range(n_items) if i % 2 == group]
        for t, i in enumerate(rng.choice(liked, size=8, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(3, 6)), 1_000_000 + 100 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset(items, inter, name="synthetic")


def _new_postgres_database(base_url: str) -> str:
    import uuid

    import psycopg

    name = f"avrec_t_{uuid.uuid4().hex[:12]}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL on each backend. PostgreSQL comes from
    $AVREC_TEST_POSTGRES_URL (started by .ci/run / `make test`); without it the PostgreSQL
    variant is skipped, except under CI where it must run."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    base = os.environ.get("AVREC_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("AVREC_TEST_POSTGRES_URL is not set under CI: PostgreSQL tests must run")
        pytest.skip("AVREC_TEST_POSTGRES_URL not set: no PostgreSQL server for this run")
    return _new_postgres_database(base)
