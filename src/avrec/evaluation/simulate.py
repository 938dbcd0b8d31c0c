"""A multi-round simulation of the learning loop, where the truth is known: does retraining on
what the service logged beat keeping the first model?

The world: people with latent tastes and items with latent traits (unit vectors in ``dim``
dimensions) and an appeal bias; the chance that a person likes an item they are shown is
``sigmoid(sharpness * taste . trait + bias + base_logit)``. Before the first round each person
has seen ``history`` random items of the first catalog and liked some of them (the first
training data). Each round, ``new_items`` items arrive (a real catalog grows), tastes drift by
a random step of size ``drift`` (renormalised), and every person (or a ``share`` of them) is
shown ``k`` items by the serving policy (``rerank.exploration``'s epsilon-greedy over the
model's ranking of the items they have not been shown); each shown item is liked with its
probability (a ``like`` event) or not (a ``skip`` event).

Two policies live in copies of the same world with common random numbers (the same people
served, the same uniform draws deciding each (person, item) like in a round):

- ``static`` keeps the model fitted before the first round; people's histories still update
  online (what they liked is the history the model scores from), as in the service;
- ``retrain`` refits the same model at the start of every round on the catalog so far, the first
  interactions and every event logged so far, through the training path of the service
  (``feedback.training.merge_events``: events to signed weights, summed per pair).

The outcome is the likes (hits) per round of each policy. Everything is drawn from ``seed``;
nothing depends on time or machine speed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from avrec.data.dataset import Dataset
from avrec.errors import AvrecError
from avrec.feedback.training import merge_events
from avrec.models.base import Recommender, TrainData
from avrec.rerank.exploration import Policy, serve

POLICIES = ("static", "retrain")
#: the simulated clock: round r's events are stamped ``START + r days``
START = pd.Timestamp("2026-01-01", tz="UTC")
EVENT_COLUMNS = ["id", "user_id", "item_id", "event", "value", "watch_fraction", "created_at"]


class SimulationError(AvrecError, ValueError):
    """A simulated world that cannot be built as configured."""


@dataclass(frozen=True)
class WorldConfig:
    users: int = 300
    initial_items: int = 200
    #: items arriving at the start of each round
    new_items: int = 40
    rounds: int = 10
    dim: int = 8
    #: size of each round's random step of a taste (before renormalising)
    drift: float = 0.1
    sharpness: float = 6.0
    base_logit: float = -2.5
    #: spread of the items' appeal bias
    appeal: float = 0.5
    #: random first-catalog items each person saw before the first round
    history: int = 30
    #: share of the people served each round
    share: float = 1.0
    k: int = 10
    #: epsilon-greedy exploration rate of the serving policy
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        counts = {"users": self.users, "initial_items": self.initial_items, "rounds": self.rounds}
        counts.update(dim=self.dim, k=self.k)
        for name, value in counts.items():
            if value < 1:
                raise SimulationError(f"{name} must be at least 1, not {value}")
        if self.new_items < 0 or self.history < 0:
            raise SimulationError("new_items and history must be >= 0")
        if not 0 < self.share <= 1 or not 0 <= self.epsilon <= 1:
            raise SimulationError(f"share must be in (0, 1] and epsilon in [0, 1]: {self}")

    @property
    def n_items(self) -> int:
        return self.initial_items + self.rounds * self.new_items


@dataclass
class World:
    config: WorldConfig
    tastes: np.ndarray  # [rounds + 1, users, dim]: before the first round, then each round's
    traits: np.ndarray  # [n_items, dim]
    bias: np.ndarray  # [n_items]
    arrival: np.ndarray  # [n_items] the round an item arrives (0: the first catalog)
    first: pd.DataFrame  # the interactions before the first round
    seed: int

    def __post_init__(self) -> None:
        self.user_ids = [f"u{n:05d}" for n in range(self.config.users)]
        self.item_ids = np.array([f"i{n:06d}" for n in range(self.config.n_items)])

    def like_probability(self, rnd: int) -> np.ndarray:
        """``[users, n_items]`` chance that each person likes each item in round ``rnd``."""
        c = self.config
        logit = c.sharpness * self.tastes[rnd] @ self.traits.T + self.bias + c.base_logit
        return 1.0 / (1.0 + np.exp(-logit))

    def catalog(self, rnd: int) -> pd.DataFrame:
        """The items that have arrived by round ``rnd``."""
        ids = self.item_ids[self.arrival <= rnd]
        return pd.DataFrame({"item_id": ids, "title": ids})


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_world(config: WorldConfig, seed: int) -> World:
    c = config
    rng = np.random.default_rng([seed, 0])
    tastes = [_unit(rng.normal(size=(c.users, c.dim)))]
    for _ in range(c.rounds):
        step = rng.normal(scale=c.drift / np.sqrt(c.dim), size=(c.users, c.dim))
        tastes.append(_unit(tastes[-1] + step))
    traits = _unit(rng.normal(size=(c.n_items, c.dim)))
    bias = rng.normal(scale=c.appeal, size=c.n_items)
    later = np.repeat(np.arange(1, c.rounds + 1), c.new_items)
    arrival = np.concatenate([np.zeros(c.initial_items, int), later])
    world = World(c, np.stack(tastes), traits, bias, arrival, pd.DataFrame(), seed)
    # before the first round: random exposures of the first catalog, liked with their chance
    p = world.like_probability(0)[:, : c.initial_items]
    seen = np.argsort(rng.random((c.users, c.initial_items)), axis=1)[:, : c.history]
    liked = rng.random(seen.shape) < np.take_along_axis(p, seen, axis=1)
    users, cols = np.nonzero(liked)
    items = seen[users, cols]
    world.first = pd.DataFrame(
        {
            "user_id": np.array(world.user_ids)[users],
            "item_id": world.item_ids[items],
            "weight": 1.0,
            "timestamp": (START - pd.Timedelta(days=1)).timestamp(),
        }
    )
    return world


@dataclass
class SimResult:
    """Likes per round (``[rounds]``) of each policy in one world."""

    seed: int
    hits: dict[str, np.ndarray]
    shown: dict[str, np.ndarray]
    #: shown items that arrived after the first round, per round
    new_shown: dict[str, np.ndarray]


def _fit(world: World, rnd: int, events: list[pd.DataFrame], model: str, config: dict | None):
    from avrec.models.registry import create_model

    users = pd.DataFrame({"user_id": world.user_ids})
    base = Dataset(world.catalog(rnd), world.first, users, name="simulation")
    log = pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=EVENT_COLUMNS)
    data = merge_events(base, log).dataset
    fitted = create_model(model, {**(config or {}), "seed": world.seed})
    return fitted.fit(TrainData.from_dataset(data))


def _serve_round(
    world: World,
    rnd: int,
    model: Recommender,
    liked: list[list[str]],
    shown: list[set[str]],
    served: np.ndarray,
    rng: np.random.Generator,
) -> list[list[str]]:
    """The ``k`` items shown to each served person: epsilon-greedy over the model's ranking of
    the items that have arrived and that they were not shown before."""
    c = world.config
    catalog = world.item_ids[world.arrival <= rnd].tolist()
    users = [world.user_ids[u] for u in served]
    candidates = [[i for i in catalog if i not in shown[u]] for u in served]
    recs = model.recommend(
        users,
        k=len(catalog),
        histories=[liked[u] for u in served],
        candidates=candidates,
    )
    policy = Policy("epsilon", c.epsilon, pool=len(catalog))
    lists = []
    for items, scores in zip(recs.items, recs.scores, strict=True):
        picked, _ = serve(items, np.asarray(scores), c.k, policy, rng)
        lists.append([items[n] for n in picked])
    return lists


def simulate(
    config: WorldConfig, seed: int, model: str = "ease", model_config: dict | None = None
) -> SimResult:
    """Both policies in the world drawn from ``seed`` (see the module's docstring)."""
    c = config
    world = make_world(c, seed)
    index = {item: n for n, item in enumerate(world.item_ids)}
    static = _fit(world, 0, [], model, model_config)
    state = {
        name: {"liked": [[] for _ in range(c.users)], "shown": [set() for _ in range(c.users)],
               "events": [], "model": static}
        for name in POLICIES
    }  # fmt: skip
    for u, item in zip(world.first["user_id"], world.first["item_id"], strict=True):
        n = int(u[1:])
        for s in state.values():
            s["liked"][n].append(item)
            s["shown"][n].add(item)
    hits = {name: np.zeros(c.rounds, int) for name in POLICIES}
    shown_count = {name: np.zeros(c.rounds, int) for name in POLICIES}
    new_shown = {name: np.zeros(c.rounds, int) for name in POLICIES}
    next_id = 1
    for rnd in range(1, c.rounds + 1):
        draws = np.random.default_rng([seed, 1, rnd])
        n_served = max(1, round(c.share * c.users))
        served = np.sort(draws.choice(c.users, size=n_served, replace=False))
        uniform = draws.random((c.users, c.n_items))  # the same draw for both policies
        p = world.like_probability(rnd)
        stamp = START + pd.Timedelta(days=rnd)
        for name, s in state.items():
            if name == "retrain":
                s["model"] = _fit(world, rnd, s["events"], model, model_config)
            lists = _serve_round(
                world, rnd, s["model"], s["liked"], s["shown"], served,
                np.random.default_rng([seed, 2, rnd]),
            )  # fmt: skip
            rows = []
            for u, items in zip(served, lists, strict=True):
                for item in items:
                    i = index[item]
                    like = bool(uniform[u, i] < p[u, i])
                    s["shown"][u].add(item)
                    if like:
                        s["liked"][u].append(item)
                    rows.append((world.user_ids[u], item, "like" if like else "skip"))
                    hits[name][rnd - 1] += like
                    shown_count[name][rnd - 1] += 1
                    new_shown[name][rnd - 1] += bool(world.arrival[i] > 0)
            frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event"])
            frame.insert(0, "id", np.arange(next_id, next_id + len(frame)))
            next_id += len(frame)
            s["events"].append(frame.assign(value=np.nan, watch_fraction=np.nan, created_at=stamp))
    return SimResult(seed, hits, shown_count, new_shown)


@dataclass
class Comparison:
    """Cumulative likes of ``retrain`` minus ``static`` over independent worlds."""

    config: dict
    model: str
    model_config: dict
    seeds: list[int]
    #: [seeds, rounds] likes per round of each policy
    hits: dict[str, np.ndarray]
    new_shown: dict[str, np.ndarray]
    diff_mean: float
    bootstrap: tuple[float, float]
    t_interval: tuple[float, float]


def compare(
    config: WorldConfig,
    seeds: list[int],
    model: str = "ease",
    model_config: dict | None = None,
    n_bootstrap: int = 10_000,
) -> Comparison:
    """:func:`simulate` in each world; a paired 95% interval (percentile bootstrap over the
    worlds, and Student's t) of the difference in cumulative likes."""
    from scipy import stats

    if len(seeds) < 2:
        raise SimulationError("comparing needs at least 2 worlds (seeds)")
    runs = [simulate(config, s, model, model_config) for s in seeds]
    hits = {name: np.stack([r.hits[name] for r in runs]) for name in POLICIES}
    new = {name: np.stack([r.new_shown[name] for r in runs]) for name in POLICIES}
    diff = (hits["retrain"].sum(axis=1) - hits["static"].sum(axis=1)).astype(float)
    rng = np.random.default_rng(0)
    draws = diff[rng.integers(len(diff), size=(n_bootstrap, len(diff)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    mean = float(diff.mean())
    return Comparison(
        asdict(config), model, dict(model_config or {}), list(seeds), hits, new, mean,
        (float(low), float(high)), (mean - half, mean + half),
    )  # fmt: skip
