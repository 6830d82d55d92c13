"""The sentence encoder exported to ONNX and run with ONNX Runtime: the serving path.

Training loads the sentence-transformers model with torch once, writes its graph (a BERT with
mean pooling, like the bundled all-MiniLM-L6-v2: node by node from its weights,
:mod:`annae.nlu.graph`; any other layout: traced by torch's exporter) and checks that the
graph gives the same embeddings; the saved model folder then holds
``encoder/model.onnx`` and ``encoder/tokenizer.json``. Serving needs neither torch nor
sentence-transformers: on one thread ONNX Runtime embeds a question about twice as fast
as torch with the same float32 numbers (docs/benchmarks.md), and a process starts
seconds sooner because torch is never imported.

A model whose layout cannot be exported (or whose export disagrees with torch) keeps the
torch encoder; :func:`export` then returns ``None``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annae.nlu.encoder import by_length, one_by_one

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
PROBES = [
    "How long does delivery take?",
    "my card payment was declined twice, what is going on with my account",
    "배송은 얼마나 걸려요?",
    "환불 받고 싶어요 🙏",
    "ok",
]
AGREEMENT = 0.9999
"""Minimum cosine between torch and ONNX embeddings of the probe sentences."""
INT8_AGREEMENT = 0.95
"""Minimum cosine between torch and the int8 graph on the probe sentences: a guard against a
broken quantisation, not a measure of quality (on 300 BANKING77 questions the cosine is 0.994 on
average, 0.989 at worst; one- and two-word texts agree less: "ok" 0.972, "hi" 0.979). The
classifier is trained on the int8 vectors themselves."""


@dataclass
class Exported:
    """An exported encoder held in memory until the engine that owns it is saved."""

    model: bytes
    tokenizer: str
    config: dict

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model).hexdigest()

    def write(self, folder: Path, link_from: Sequence[Path] = ()) -> Path:
        """Write into ``folder``; an identical ``model.onnx`` in ``link_from`` is hard-linked."""
        write_model(folder, self.model, self.config, link_from)
        (folder / TOKENIZER_FILE).write_text(self.tokenizer)
        return folder


def write_model(
    folder: Path, model: bytes | Path, config: dict, link_from: Sequence[Path] = ()
) -> None:
    """``model`` (its bytes, or its file) as ``folder/model.onnx``, and ``config`` with the model's
    ``sha256`` as ``folder/encoder.json``. A model file that is already that one stays as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / MODEL_FILE
    data = model if isinstance(model, bytes) else model.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not (isinstance(model, Path) and model.resolve() == target.resolve()):
        _write_linked(target, data, digest, link_from)
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "sha256": digest}))


def _write_linked(target: Path, data: bytes, digest: str, link_from: Sequence[Path]) -> None:
    """Write ``data`` to ``target``, or hard-link the file of that name in a ``link_from`` folder
    whose config records the same ``sha256`` and whose file has it (model versions share one
    copy on disk; a sibling's file changed on disk since is not passed on)."""
    target.unlink(missing_ok=True)
    for other in link_from:
        try:
            if json.loads((other / CONFIG_FILE).read_text()).get("sha256") != digest:
                continue
            with open(other / target.name, "rb") as fh:
                if hashlib.file_digest(fh, "sha256").hexdigest() != digest:
                    continue
            _link_or_copy(other / target.name, target)
            return
        except (OSError, ValueError):
            continue
    target.write_bytes(data)


def session(model: bytes | str, threads: int):
    """An ONNX Runtime session on ``threads`` (one inter-op thread, sequential, all graph
    optimisations, warnings only)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def export(st_model, threads: int = 1, int8: bool = True) -> OnnxEncoder | None:
    """Export a loaded ``SentenceTransformer`` (pooling and normalisation included) and return
    it as an :class:`OnnxEncoder` on ``threads``, once checked against torch.

    With ``int8`` its matrices are then quantised to 8 bits per channel (:func:`quantize`): on
    one thread a question takes about a quarter of the CPU of the float32 graph; a quantised
    graph that agrees less than :data:`INT8_AGREEMENT` with torch is dropped for the float32 one.
    """
    reference = np.asarray(st_model.encode(PROBES, normalize_embeddings=True))
    encoder = _agreeing(lambda: _bert_export(st_model), reference, threads, "written graph")
    if encoder is None:  # not a BERT with mean pooling, or its graph disagrees: trace it
        encoder = _agreeing(lambda: _export(st_model), reference, threads, "ONNX export")
    if encoder is None:
        log.warning("the sentence encoder serves with torch")
        return None
    exported = encoder.exported
    assert exported is not None  # made in memory by _agreeing
    if not int8:
        return encoder
    try:
        small = OnnxEncoder(
            Exported(
                quantize(exported.model), exported.tokenizer, {**exported.config, "int8": True}
            ),
            threads=threads,
        )
    except Exception as exc:  # noqa: BLE001 - any failure means: keep float32
        log.warning("encoder not quantised to int8 (%s); serving it in float32", exc)
        return encoder
    cos = (small.encode(PROBES) * reference).sum(1)
    if cos.min() < INT8_AGREEMENT:
        log.warning("int8 encoder disagrees with torch (cosine %.4f); serving float32", cos.min())
        return encoder
    return small


def _agreeing(
    make: Callable[[], Exported | None], reference: np.ndarray, threads: int, what: str
) -> OnnxEncoder | None:
    """The encoder of ``make()`` where it agrees with torch's ``reference`` vectors of
    :data:`PROBES` to :data:`AGREEMENT`; ``None`` where ``make`` gives none, fails or disagrees."""
    try:
        exported = make()
        if exported is None:
            return None
        encoder = OnnxEncoder(exported, threads=threads)
        cos = (encoder.encode(PROBES) * reference).sum(1)
    except Exception as exc:  # noqa: BLE001 - any failure means: the next way, or torch
        log.warning("%s of the sentence encoder failed (%s)", what, exc)
        return None
    if cos.min() < AGREEMENT:
        log.warning("%s of the sentence encoder disagrees with torch (%.5f)", what, cos.min())
        return None
    return encoder


_QUANTIZED: dict[str, bytes] = {}  # the last graph quantised: SHA-256 of its input -> output


def quantize(model: bytes) -> bytes:
    """``model`` (an ONNX graph) with its matrix products in int8, per output channel, the
    activations quantised as they come (ONNX Runtime's dynamic quantisation). Deterministic: the
    last result is kept, so retraining in one process quantises the same export once (1.5 s)."""
    digest = hashlib.sha256(model).hexdigest()
    if digest not in _QUANTIZED:
        small = _quantize(model)
        _QUANTIZED.clear()
        _QUANTIZED[digest] = small
    return _QUANTIZED[digest]


def _quantize(model: bytes) -> bytes:
    import tempfile

    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def advice(record: logging.LogRecord) -> bool:  # the quantiser logs it on the root logger
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(advice)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "f32.onnx").write_bytes(model)
            quantize_dynamic(
                Path(tmp, "f32.onnx"),
                Path(tmp, "int8.onnx"),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                # a tensor after a com.microsoft node (the Korean graph's Gelu) has no inferred
                # type: it is float32, like every activation of these graphs
                extra_options={"DefaultTensorType": TensorProto.FLOAT},
            )
            return Path(tmp, "int8.onnx").read_bytes()
    finally:
        root.removeFilter(advice)


def _bert_export(st_model) -> Exported | None:
    """The model as a graph written node by node (:mod:`annae.nlu.graph`: 12-20 % less CPU a
    question in int8 than the traced export) where it is a BERT encoder with absolute positions
    and GELU, mean-pooled (then normalised or not); ``None`` for any other layout (traced by
    :func:`_export`). Inputs and output as the traced graph's: ``input_ids``, ``attention_mask``
    (B, T, int64) → ``embedding`` (B, H), not normalised (the encoder normalises)."""
    from onnx import TensorProto, helper

    from annae.nlu.graph import Graph, Layer, encoder, masked_mean, plain_linear, side_by_side

    modules = [type(m).__name__ for m in st_model]
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    backend = getattr(st_model.tokenizer, "backend_tokenizer", None)
    bert = st_model[0].auto_model
    config = bert.config
    pooling = getattr(st_model[1], "pooling_mode", None)
    if (
        backend is None
        or type(bert).__name__ != "BertModel"
        or config.hidden_act != "gelu"
        or getattr(config, "position_embedding_type", "absolute") != "absolute"
        or pooling != "mean"
    ):
        return None
    sd = {k: v.detach().float().numpy() for k, v in bert.state_dict().items()}

    def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
        return sd[f"{name}.weight"].T.copy(), sd[f"{name}.bias"]

    def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
        return sd[f"{name}.weight"], sd[f"{name}.bias"]

    layers = []
    for index in range(config.num_hidden_layers):
        p = f"encoder.layer.{index}"
        qkv = side_by_side(*(linear(f"{p}.attention.self.{n}") for n in ("query", "key", "value")))
        layers.append(
            Layer(
                qkv=qkv,
                ao=linear(f"{p}.attention.output.dense"),
                fi=linear(f"{p}.intermediate.dense"),
                fo=linear(f"{p}.output.dense"),
                aln=norm(f"{p}.attention.output.LayerNorm"),
                oln=norm(f"{p}.output.LayerNorm"),
            )
        )
    g = Graph()
    mask = g.node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    tokens = g.node("Gather", [g.node("Shape", ["input_ids"]), g.const(np.array(1))], axis=0)
    end = g.node("Unsqueeze", [tokens, g.const(np.array([0]))])
    positions = sd["embeddings.position_embeddings.weight"]
    position = g.node("Slice", [g.const(positions), g.const(np.array([0])), end])
    word = g.node("Gather", [g.const(sd["embeddings.word_embeddings.weight"]), "input_ids"])
    x = g.node("Add", [word, position])
    x = g.node("Add", [x, g.const(sd["embeddings.token_type_embeddings.weight"][0])])
    eps = float(config.layer_norm_eps)
    x = g.norm(x, norm("embeddings.LayerNorm"), eps)
    x = encoder(g, x, mask, layers, config.num_attention_heads, eps, plain_linear)
    masked_mean(g, x, mask, "embedding")
    H = config.hidden_size
    model = g.model(
        "sentence-encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", H])],
    )
    max_length = min(int(st_model.max_seq_length or 512), positions.shape[0])
    meta = {"max_length": max_length, "dim": H, "graph": "written"}
    return Exported(model.SerializeToString(), backend.to_str(), meta)


def _export(st_model) -> Exported:
    import io
    import warnings

    import torch

    backend = getattr(st_model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("the tokenizer has no fast (tokenizers) backend")

    class Wrapper(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner({"input_ids": input_ids, "attention_mask": attention_mask})
            return out["sentence_embedding"]

    features = st_model.tokenizer(["hello world"], return_tensors="pt")
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapper(st_model).eval(),
            (features["input_ids"], features["attention_mask"]),
            # torch annotates ``f`` as a path, but its TorchScript exporter (dynamo=False) writes
            # to file-like objects too ("Normally f can be a file-like object", torch's _export)
            buffer,  # type: ignore[arg-type]
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )
    config = {
        "max_length": int(st_model.max_seq_length or 512),
        "dim": int(st_model.get_embedding_dimension()),
    }
    return Exported(buffer.getvalue(), backend.to_str(), config)


class OnnxEncoder:
    """``encode(texts) -> float32 (n, dim)``, L2-normalised, with ONNX Runtime on ``threads``."""

    def __init__(self, source: Exported | Path, threads: int = 1) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer

        self.exported: Exported | None = None
        self.folder: Path | None = None
        model: bytes | str  # the model itself, or its file (ONNX Runtime maps it)
        if isinstance(source, Exported):
            model, tokenizer, config = source.model, source.tokenizer, source.config
            self.exported = source
        else:
            self.folder = Path(source)
            model = str(self.folder / MODEL_FILE)  # ONNX Runtime maps the file itself
            tokenizer = (self.folder / TOKENIZER_FILE).read_text()
            config = json.loads((self.folder / CONFIG_FILE).read_text())
        self.config = config
        self.threads = threads
        self.tokenizer = Tokenizer.from_str(tokenizer)
        self.tokenizer.enable_truncation(config["max_length"])
        self.tokenizer.no_padding()
        # an int8 graph runs one text at a time (:meth:`encode`): ``threads`` texts side by
        # side, each on one thread, rather than one short text spread over ``threads``
        self.session = session(model, 1 if config.get("int8") else threads)

    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    def with_threads(self, threads: int) -> OnnxEncoder:
        """This encoder on ``threads``: an int8 one shares its session (one thread per text
        either way; ``threads`` only says how many texts run side by side), a float32 one gets a
        session of its own."""
        if threads == self.threads:
            return self
        if self.config.get("int8"):
            other = copy.copy(self)
            other.threads = threads
            return other
        source = self.exported if self.exported is not None else self.folder
        assert source is not None  # one of the two is always set
        return OnnxEncoder(source, threads=threads)

    def save(self, folder: Path, link_from: Sequence[Path] = ()) -> Path:
        """Write the encoder files into ``folder`` (hard links where an identical copy exists)."""
        folder = Path(folder)
        if self.exported is not None:
            return self.exported.write(folder, link_from)
        assert self.folder is not None  # not exported: loaded from this folder
        if folder.resolve() != self.folder.resolve():  # loaded from disk: link its own files
            folder.mkdir(parents=True, exist_ok=True)
            for name in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE):
                (folder / name).unlink(missing_ok=True)
                _link_or_copy(self.folder / name, folder / name)
        return folder

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        """Embed ``texts``; ``progress(n_done)`` is called after each batch.

        An int8 graph embeds one text at a time: its activations are quantised with one scale
        per run, so a text batched with others would get another vector than alone (up to 0.04
        a coordinate, cosine 0.978 at worst on BANKING77), and a served decision would depend on
        which questions shared its micro-batch. Measured on one thread (BANKING77 test, 800
        questions): 1.08 ms a text alone, 1.00 in batches of 4, 1.12 in batches of 64; alone
        agrees better with torch (cosine 0.9942 mean against 0.9937 in batches of 64). With
        ``threads`` > 1 (training), that many texts run side by side, one thread each."""
        if not self.config.get("int8"):
            return by_length(texts, self.dim, batch_size, self._embed, progress)
        return one_by_one(
            len(texts),
            self.dim,
            lambda i: self._embed([texts[i]])[0],
            self.threads,
            batch_size,
            progress,
        )

    def _embed(self, batch: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(batch)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        emb = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)


__all__ = ["Exported", "OnnxEncoder", "export", "quantize"]
