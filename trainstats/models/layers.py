"""Keras 3 layers of the VarMisuse models: sub-token embedding, edge-biased attention, encoder.

Relational attention follows Hellendoorn et al., "Global Relational Models of Source Code"
(ICLR 2020), section 3: the attention logit from token ``i`` to token ``j`` in head ``h`` of layer
``l`` is ::

    a[l, h, i, j] = q_i . k_j / sqrt(d_head) + sum_{edges (i -> j, type t)} w[t, l, h]

i.e. every edge type (forward and backward are distinct types) carries one learned scalar per layer
and head, summed over the edges joining ``i`` to ``j``. With ``edges=None`` the same layers form a
plain Transformer encoder. Shapes: ``B`` batch, ``T`` tokens, ``S`` sub-tokens per token, ``E``
edges, ``d`` hidden size, ``H`` heads, ``L`` layers.
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

__all__ = [
    "SubtokenEmbedding", "sinusoidal_positions", "AddPositions", "AttentionBias", "RelationalAttention",
    "TransformerBlock", "PointerHeads",
]

NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="trainstats")
class SubtokenEmbedding(layers.Layer):
    """``[B, T, S]`` sub-token ids (0 = padding) -> ``[B, T, d]``: mean of the non-padding embeddings."""

    def __init__(self, vocab_size: int, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.dim = int(vocab_size), int(dim)
        self.embed = layers.Embedding(self.vocab_size, self.dim, name="table")

    def build(self, input_shape) -> None:
        self.embed.build((None,))

    def call(self, ids):
        mask = ops.cast(ops.greater(ids, 0), self.compute_dtype)[..., None]  # [B,T,S,1]
        emb = self.embed(ids) * mask
        return ops.sum(emb, axis=2) / ops.maximum(ops.sum(mask, axis=2), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim}


def sinusoidal_positions(length, dim: int, dtype="float32"):
    """``[length, dim]`` sinusoidal position encodings (Vaswani et al. 2017)."""
    pos = ops.cast(ops.arange(length), dtype)[:, None]
    i = ops.arange(dim // 2, dtype=dtype)[None, :]
    angle = pos / ops.power(ops.cast(10000.0, dtype), 2.0 * i / dim)
    return ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1)


@keras.saving.register_keras_serializable(package="trainstats")
class AddPositions(layers.Layer):
    """``h [B, T, d]`` -> ``h + sinusoidal_positions(T, d)``."""

    def call(self, h):
        return h + sinusoidal_positions(ops.shape(h)[1], ops.shape(h)[2], h.dtype)[None]


@keras.saving.register_keras_serializable(package="trainstats")
class AttentionBias(layers.Layer):
    """Additive attention-logit biases, one ``[B, H, T, T]`` tensor per layer (or ``[B, 1, 1, T]``).

    Every bias includes the key-padding mask (``-1e9`` on padded keys). With ``num_edge_types > 0``
    (GREAT) it adds ``sum_{edges (i -> j, type t)} w[t, l, h]`` at ``[b, h, i, j]`` for layer ``l``: one
    learned scalar per (edge type, layer, head), initialised to 0; parallel edges add up. Edge type 0
    is padding and contributes nothing. Call with ``(token_mask [B, T], edges [B, E, 3])``; without
    edge types it returns the mask bias ``[B, 1, 1, T]`` for every layer.
    """

    def __init__(self, num_edge_types: int, num_layers: int, num_heads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_edge_types, self.num_layers, self.num_heads = int(num_edge_types), int(num_layers), int(num_heads)

    def build(self, token_mask_shape, edges_shape=None) -> None:
        if self.num_edge_types:
            self.table = self.add_weight(
                shape=(self.num_layers, self.num_edge_types, self.num_heads), initializer="zeros", name="table"
            )

    def call(self, token_mask, edges=None):
        mask_bias = ((1.0 - ops.cast(token_mask, self.compute_dtype)) * NEG_INF)[:, None, None, :]
        if not self.num_edge_types:
            return [mask_bias] * self.num_layers
        length = ops.shape(token_mask)[1]
        edges = ops.cast(edges, "int32")
        b, e, h = ops.shape(edges)[0], ops.shape(edges)[1], self.num_heads
        types = edges[..., 2]
        real = ops.cast(ops.greater(types, 0), self.compute_dtype)[..., None]  # [B, E, 1]
        # scatter index (b, head, src, dst) for every edge and head: [B, E, H, 4]
        grid = [ops.broadcast_to(ops.reshape(a, s), (b, e, h)) for a, s in (
            (ops.arange(b, dtype="int32"), (-1, 1, 1)), (ops.arange(h, dtype="int32"), (1, 1, -1)),
            (edges[..., 0], (b, e, 1)), (edges[..., 1], (b, e, 1)))]
        idx = ops.reshape(ops.stack(grid, axis=-1), (-1, 4))
        out = []
        for layer in range(self.num_layers):
            values = ops.take(self.table[layer], types, axis=0) * real  # [B, E, H]
            dense = ops.scatter(idx, ops.reshape(values, (-1,)), (b, h, length, length))
            out.append(dense + mask_bias)
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "num_edge_types": self.num_edge_types,
                "num_layers": self.num_layers, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="trainstats")
class RelationalAttention(layers.Layer):
    """Multi-head self-attention with an additive bias on the logits (:class:`AttentionBias`).

    ``softmax_j(q_i . k_j / sqrt(d_head) + bias[b, h, i, j])``; no dropout on the attention
    probabilities (it costs a full ``[B, H, T, T]`` pass on CPU; the block drops out its residuals).
    """

    def __init__(self, dim: int, num_heads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"hidden size must be divisible by the number of heads; received {dim} and {num_heads}")
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.qkv = layers.Dense(3 * dim, name="qkv")
        self.out = layers.Dense(dim, name="out")

    def build(self, h_shape, bias_shape=None) -> None:
        self.qkv.build(h_shape)
        self.out.build(h_shape)

    def call(self, h, bias):
        b, t = ops.shape(h)[0], ops.shape(h)[1]
        dh = self.dim // self.num_heads
        qkv = ops.reshape(self.qkv(h), (b, t, 3, self.num_heads, dh))
        q, k, v = (ops.transpose(qkv[:, :, i], (0, 2, 1, 3)) for i in range(3))  # [B,H,T,dh]
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(dh)
        att = ops.softmax(logits + bias, axis=-1)
        ctx = ops.reshape(ops.transpose(ops.matmul(att, v), (0, 2, 1, 3)), (b, t, self.dim))
        return self.out(ctx)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="trainstats")
class TransformerBlock(layers.Layer):
    """Pre-norm Transformer layer: ``h + Drop(Att(LN(h), bias)) -> h + Drop(FFN(LN(h)))``."""

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ff_dim = int(dim), int(num_heads), int(ff_dim)
        self.dropout_rate = float(dropout)
        self.ln1 = layers.LayerNormalization(epsilon=1e-6, name="ln1")
        self.ln2 = layers.LayerNormalization(epsilon=1e-6, name="ln2")
        self.att = RelationalAttention(dim, num_heads, name="attention")
        self.ff1 = layers.Dense(ff_dim, activation="relu", name="ff1")
        self.ff2 = layers.Dense(dim, name="ff2")
        self.drop = layers.Dropout(dropout)

    def build(self, h_shape, bias_shape=None) -> None:
        for lyr in (self.ln1, self.ln2, self.ff1):
            lyr.build(h_shape)
        self.att.build(h_shape)
        self.ff2.build((*h_shape[:-1], self.ff_dim))

    def call(self, h, bias, training=None):
        h = h + self.drop(self.att(self.ln1(h), bias), training=training)
        return h + self.drop(self.ff2(self.ff1(self.ln2(h))), training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "ff_dim": self.ff_dim,
                "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="trainstats")
class PointerHeads(layers.Layer):
    """Two pointer heads over tokens (Vasic et al., ICLR 2019), as used by GREAT.

    One dense layer maps each final token state to two logits ``l_loc[b, t]`` and ``l_rep[b, t]``.
    Returns ``(p_loc, p_rep)``, each ``[B, T]``:

    * ``p_loc = softmax_t(l_loc)`` over the real tokens (``token_mask``); position 0 means "no bug";
    * ``p_rep = softmax_t(l_rep)`` over the repair candidates (``candidates`` 1.0); an example with no
      candidate falls back to the real tokens.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.proj = layers.Dense(2, name="proj")

    def build(self, h_shape, token_mask_shape=None, candidates_shape=None) -> None:
        self.proj.build(h_shape)

    def call(self, h, token_mask, candidates):
        logits = ops.cast(self.proj(h), "float32")
        tok = ops.cast(token_mask, "float32")
        cand = ops.cast(candidates, "float32") * tok
        cand = ops.where(ops.sum(cand, axis=1, keepdims=True) > 0, cand, tok)
        p_loc = ops.softmax(logits[..., 0] + (1.0 - tok) * NEG_INF, axis=-1)
        p_rep = ops.softmax(logits[..., 1] + (1.0 - cand) * NEG_INF, axis=-1)
        return p_loc, p_rep
