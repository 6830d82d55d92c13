"""Features that work for Korean and English: character and word TF-IDF, Korean
morphemes (kiwipiepy) and, optionally, sentence embeddings, stacked into one sparse matrix."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from annae.nlu.text import has_hangul

# Content morphemes worth keeping (nouns, verbs, adjectives, roots, adverbs, foreign words, numbers).
_KEEP_TAGS = ("NN", "VV", "VA", "XR", "MAG", "SL", "SN", "SH", "NR", "NP", "VX", "MM")


@dataclass(frozen=True)
class FeatureConfig:
    """How texts become features (saved in the model manifest)."""

    encoder: str = "bundled"  # "none" for lexical features only
    char_ngrams: tuple[int, int] = (2, 4)
    word_ngrams: tuple[int, int] = (1, 2)
    morphemes: bool = True
    embedding_weight: float = 1.5
    jamo_ngrams: tuple[int, int] | None = None  # character n-grams over Hangul jamo (NFD)
    korean_encoder: str = "e5"  # multilingual-e5-small for text with Hangul; "none": off

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        data = dict(data)
        for key in ("char_ngrams", "word_ngrams"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    @property
    def uses_encoder(self) -> bool:
        return self.encoder != "none"


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    # no thread pool (one thread per process) and no typo/multi-word dictionaries: they
    # cost seconds at start-up and add nothing measurable on our Korean FAQ data
    return Kiwi(num_workers=-1, load_typo_dict=False, load_multi_dict=False)


def morphemes(text: str) -> list[str]:
    """Korean content morphemes as ``form/TAG`` tokens (empty for text without Hangul)."""
    if not has_hangul(text):
        return []
    return [f"{t.form}/{t.tag}" for t in _kiwi().tokenize(text) if t.tag.startswith(_KEEP_TAGS)]


def _identity(tokens):
    return tokens


def jamo(text: str) -> str:
    """Hangul syllables split into their jamo (NFD), so that a 받침 typo (됬/됐, 업서/없어)
    still shares most character n-grams with the right spelling; other text unchanged."""
    return unicodedata.normalize("NFD", text) if has_hangul(text) else text


class LexicalFeatures:
    """Character n-grams, word n-grams and Korean morphemes, each TF-IDF weighted."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self.char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=config.char_ngrams,
            sublinear_tf=True,
            min_df=2,
            dtype=np.float32,
        )
        self.word = TfidfVectorizer(
            analyzer="word",
            ngram_range=config.word_ngrams,
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",
            dtype=np.float32,
        )
        self.morph: TfidfVectorizer | None = None
        self.jamo: TfidfVectorizer | None = None
        if getattr(config, "jamo_ngrams", None):
            self.jamo = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=tuple(config.jamo_ngrams),
                sublinear_tf=True,
                min_df=2,
                preprocessor=jamo,
                dtype=np.float32,
            )

    def fit(self, texts: list[str], tokens: list[list[str]] | None = None) -> LexicalFeatures:
        try:
            self.char.fit(texts)
        except ValueError:  # every n-gram appears once: keep them all
            self.char.set_params(min_df=1).fit(texts)
        self.word.fit(texts)
        if self.jamo is not None:
            try:
                self.jamo.fit(texts)
            except ValueError:
                self.jamo.set_params(min_df=1).fit(texts)
        if self.config.morphemes and tokens is not None and any(tokens):
            self.morph = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
            self.morph.fit(tokens)
        return self

    def transform(self, texts: list[str], tokens: list[list[str]] | None = None) -> sp.csr_matrix:
        parts = [self.char.transform(texts), self.word.transform(texts)]
        if getattr(self, "jamo", None) is not None:
            parts.append(self.jamo.transform(texts))
        if self.morph is not None:
            parts.append(
                self.morph.transform(
                    tokens if tokens is not None else [morphemes(t) for t in texts]
                )
            )
        return sp.hstack(parts, format="csr", dtype=np.float32)


def stack(lexical: sp.csr_matrix, embeddings: np.ndarray | None, weight: float) -> sp.csr_matrix:
    """Lexical features side by side with (weighted) sentence embeddings."""
    if embeddings is None:
        return lexical
    return sp.hstack([lexical, sp.csr_matrix(embeddings * weight)], format="csr", dtype=np.float32)
