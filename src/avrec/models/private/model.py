"""The base of every private model: its budget from the config, the record of what its fit
released (``privacy_``), saved in the manifest and read back on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from avrec.models.base import Recommender
from avrec.models.private.clipping import PrivateConfig


class PrivateRecommender(Recommender):
    """A recommender fitted with user-level differential privacy, its budget in its config (a
    :class:`PrivateConfig`); the capability :class:`avrec.models.capabilities.TrainsPrivately`.
    Subclasses set ``privacy_`` in ``_fit`` and call :meth:`load_privacy` when loading."""

    Config: ClassVar[type[PrivateConfig]] = PrivateConfig
    config: PrivateConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        #: what the fit released and spent (None before fit)
        self.privacy_: dict[str, Any] | None = None

    def with_budget(self, epsilon: float, delta: float | None = None) -> Self:
        """A new, unfitted model with these settings and the budget ``(epsilon, delta)``
        (``delta`` None: the default for the number of users)."""
        return type(self)({**self.config.model_dump(), "epsilon": epsilon, "delta": delta})

    def privacy(self) -> dict[str, Any] | None:
        """What the fit released and spent (the manifest's ``privacy``); None before fit."""
        return self.privacy_

    def manifest_extra(self) -> dict[str, Any]:
        return {"privacy": self.privacy_}

    def load_privacy(self, path: Path | str) -> None:
        """Read ``privacy`` back from the saved folder's manifest."""
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        self.privacy_ = manifest.get("privacy")
