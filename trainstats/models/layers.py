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
import tensorflow as tf
from keras import layers, ops

__all__ = [
    "SubtokenEmbedding", "sinusoidal_positions", "AddPositions", "AttentionBias", "RelationalAttention",
    "TransformerBlock", "PointerHeads",
]

NEG_INF = -1e9


@keras.saving.register_keras_serializable(package="trainstats")
class SubtokenEmbedding(layers.Layer):
    """``[B, T, S]`` sub-token ids (0 = padding) -> ``[B, T, d]``: mean of the non-padding embeddings.

    ``static_shapes=False`` (default) looks up only the used sub-tokens (a sparse segment mean: no
    ``[B, T, S, d]`` temporary, a gradient of ``[rows used, d]``); ``True`` uses fixed-shape ops only
    (gather, mask, sum), which XLA needs. Both compute the same mean.
    """

    def __init__(self, vocab_size: int, dim: int, *, static_shapes: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.dim = int(vocab_size), int(dim)
        self.static_shapes = bool(static_shapes)
        self.embed = layers.Embedding(self.vocab_size, self.dim, name="table")

    def build(self, input_shape) -> None:
        self.embed.build((None,))

    def call(self, ids):
        if self.static_shapes:
            mask = ops.cast(ops.greater(ids, 0), self.compute_dtype)[..., None]  # [B,T,S,1]
            emb = self.embed(ids) * mask
            return ops.sum(emb, axis=2) / ops.maximum(ops.sum(mask, axis=2), 1.0)
        # mean over the non-padding sub-tokens without materialising [B, T, S, d]: one gather of the
        # used rows and a sparse segment mean (its gradient is [rows used, d], not [B*T*S, d])
        shape = tf.shape(ids)
        flat = tf.reshape(ids, (-1, shape[2]))  # [B*T, S]
        where = tf.where(flat > 0)  # [N, 2] (row, sub-token slot), row-major
        sparse = tf.SparseTensor(where, tf.gather_nd(flat, where), tf.shape(flat, out_type=tf.int64))
        out = tf.nn.safe_embedding_lookup_sparse(self.embed.embeddings.value, sparse, combiner="mean")
        return tf.reshape(tf.cast(out, self.compute_dtype), (shape[0], shape[1], self.dim))

    def compute_output_shape(self, ids_shape):
        return (*ids_shape[:2], self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim,
                "static_shapes": self.static_shapes}


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
    """Additive attention-logit biases: the key-padding mask and, for GREAT, the edge biases.

    Returns ``(mask_bias, edge_index, edge_values)`` (``mask_bias`` alone without edge types):

    * ``mask_bias`` ``[B, 1, 1, T]``: ``-1e9`` on padded keys, 0 elsewhere;
    * with ``num_edge_types > 0`` (GREAT), the sparse edge bias: ``edge_index`` int32 ``[N, 4]`` rows
      ``(b, head, i, j)`` and ``edge_values`` ``[L, N]``, so that layer ``l`` adds
      ``sum_{edges (i -> j, type t)} w[l, t, h]`` at ``[b, h, i, j]`` (one learned scalar per layer,
      edge type and head, initialised to 0; parallel edges add up). Edge type 0 is padding and is
      dropped.

    Call with ``(token_mask [B, T], edges [B, E, 3])``. The edge bias stays sparse (``N = H x real
    edges``): :class:`RelationalAttention` scatter-adds it onto its logits, which costs far less than
    building a dense ``[B, H, T, T]`` bias per layer.
    """

    def __init__(self, num_edge_types: int, num_layers: int, num_heads: int, *, static_shapes: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_edge_types, self.num_layers, self.num_heads = int(num_edge_types), int(num_layers), int(num_heads)
        self.static_shapes = bool(static_shapes)

    def build(self, token_mask_shape, edges_shape=None) -> None:
        if self.num_edge_types:
            self.table = self.add_weight(
                shape=(self.num_layers, self.num_edge_types, self.num_heads), initializer="zeros", name="table"
            )

    def call(self, token_mask, edges=None):
        mask_bias = ((1.0 - ops.cast(token_mask, self.compute_dtype)) * NEG_INF)[:, None, None, :]
        if not self.num_edge_types:
            return mask_bias
        edges = tf.cast(edges, tf.int32)
        b_of_edge = tf.broadcast_to(tf.range(tf.shape(edges)[0])[:, None], tf.shape(edges)[:2])
        if self.static_shapes:  # every edge slot; padding slots (type 0) add 0 at (b, h, 0, 0)
            batch, src, dst, types = (tf.reshape(x, (-1,)) for x in (b_of_edge, edges[..., 0], edges[..., 1],
                                                                     edges[..., 2]))
        else:  # the real edges only
            real = tf.where(edges[..., 2] > 0)  # [R, 2] (b, e)
            batch = tf.gather_nd(b_of_edge, real)
            src, dst, types = (tf.gather_nd(edges[..., c], real) for c in range(3))  # [R] each
        n, h = tf.shape(types)[0], self.num_heads
        idx = tf.stack([tf.broadcast_to(batch[:, None], (n, h)), tf.broadcast_to(tf.range(h)[None, :], (n, h)),
                        tf.broadcast_to(src[:, None], (n, h)), tf.broadcast_to(dst[:, None], (n, h))], axis=-1)
        idx = tf.reshape(idx, (-1, 4))  # (b, head, src, dst) for every edge and head: [R * H, 4]
        values = tf.gather(tf.transpose(self.table, (1, 0, 2)), types)  # [R, L, H]
        if self.static_shapes:
            values *= tf.cast(types > 0, values.dtype)[:, None, None]
        values = tf.reshape(tf.transpose(values, (1, 0, 2)), (self.num_layers, -1))  # [L, R * H]
        return mask_bias, idx, tf.cast(values, self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_edge_types": self.num_edge_types,
                "num_layers": self.num_layers, "num_heads": self.num_heads, "static_shapes": self.static_shapes}


@keras.saving.register_keras_serializable(package="trainstats")
class RelationalAttention(layers.Layer):
    """Multi-head self-attention with additive biases on the logits (:class:`AttentionBias`).

    ``softmax_j(q_i . k_j / sqrt(d_head) + mask[b, j] + edge_bias[b, h, i, j])``; the edge bias is
    scatter-added from its sparse form. No dropout on the attention probabilities (it costs a full
    ``[B, H, T, T]`` pass on CPU; the block drops out its residuals).
    """

    def __init__(self, dim: int, num_heads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"hidden size must be divisible by the number of heads; received {dim} and {num_heads}")
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.qkv = layers.Dense(3 * dim, name="qkv")
        self.out = layers.Dense(dim, name="out")

    def build(self, h_shape, mask_bias_shape=None, edge_index_shape=None, edge_values_shape=None) -> None:
        self.qkv.build(h_shape)
        self.out.build(h_shape)

    def call(self, h, mask_bias, edge_index=None, edge_values=None):
        b, t = ops.shape(h)[0], ops.shape(h)[1]
        dh = self.dim // self.num_heads

        def heads(x):  # [B, T, d] -> [B, H, T, dh]
            return ops.transpose(ops.reshape(x, (b, t, self.num_heads, dh)), (0, 2, 1, 3))

        # split, not strided slices: the gradient of a split is one concat, that of each slice a full-size pad
        q, k, v = ops.split(self.qkv(h), 3, axis=-1)
        q, k, v = heads(q * (1.0 / math.sqrt(dh))), heads(k), heads(v)
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) + mask_bias
        if edge_index is not None:
            logits = tf.tensor_scatter_nd_add(logits, edge_index, edge_values)
        att = ops.softmax(logits, axis=-1)
        ctx = ops.reshape(ops.transpose(ops.matmul(att, v), (0, 2, 1, 3)), (b, t, self.dim))
        return self.out(ctx)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="trainstats")
class TransformerBlock(layers.Layer):
    """Pre-norm Transformer layer: ``h + Drop(Att(LN(h), biases)) -> h + Drop(FFN(LN(h)))``."""

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

    def build(self, h_shape, mask_bias_shape=None, edge_index_shape=None, edge_values_shape=None) -> None:
        for lyr in (self.ln1, self.ln2, self.ff1):
            lyr.build(h_shape)
        self.att.build(h_shape)
        self.ff2.build((*h_shape[:-1], self.ff_dim))

    def call(self, h, mask_bias, edge_index=None, edge_values=None, training=None):
        h = h + self.drop(self.att(self.ln1(h), mask_bias, edge_index, edge_values), training=training)
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
