"""Encoder registry: name -> class, instantiated lazily once per process."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Literal, overload

from avrec.encoders.base import Encoder

if TYPE_CHECKING:
    from avrec.encoders.audio import AudioEncoder
    from avrec.encoders.image import EfficientNetEncoder

_ENCODERS = {
    "text-en": "avrec.encoders.text:MiniLMEncoder",
    "text-multi": "avrec.encoders.text:E5Encoder",
    "text-fast": "avrec.encoders.text:WordLlamaEncoder",
    "image": "avrec.encoders.image:EfficientNetEncoder",
    "audio": "avrec.encoders.audio:YAMNetEncoder",
    "video": "avrec.encoders.video:VideoEncoder",
}
_instances: dict[str, Encoder] = {}
_lock = threading.Lock()


def register(name: str, target: str) -> None:
    _ENCODERS[name] = target


def available_encoders() -> list[str]:
    return sorted(_ENCODERS)


@overload
def get_encoder(name: Literal["image"]) -> EfficientNetEncoder: ...


@overload
def get_encoder(name: Literal["audio"]) -> AudioEncoder: ...


@overload
def get_encoder(name: str) -> Encoder: ...


def get_encoder(name: str) -> Encoder:
    with _lock:
        if name not in _instances:
            try:
                target = _ENCODERS[name]
            except KeyError:
                raise KeyError(
                    f"unknown encoder {name!r}; available: {', '.join(available_encoders())}"
                ) from None
            module, _, attr = target.partition(":")
            _instances[name] = getattr(importlib.import_module(module), attr)()
        return _instances[name]
