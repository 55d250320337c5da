"""The Keras 3 VarMisuse model family: GREAT (edge-biased Transformer) and a plain Transformer.

Inputs (a dict, as produced by :func:`trainstats.models.pipeline.make_dataset`):
``subtokens`` int32 ``[B, T, S]``, ``edges`` int32 ``[B, E, 3]``, ``candidates`` float32 ``[B, T]``.
Outputs (a dict): ``loc`` and ``rep``, float32 probabilities ``[B, T]`` from the two pointer heads
(:class:`trainstats.models.layers.PointerHeads`). Train with :func:`compile_varmisuse_model`, which
uses the losses in :mod:`trainstats.models.losses`.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from .data import NUM_EDGE_TYPES
from .layers import AddPositions, AttentionBias, PointerHeads, SubtokenEmbedding, TransformerBlock
from .losses import loc_loss, rep_loss

__all__ = ["MODEL_KINDS", "build_varmisuse_model", "compile_varmisuse_model"]

MODEL_KINDS = ("great", "transformer")


def build_varmisuse_model(
    kind: str = "great",
    *,
    vocab_size: int,
    max_subtokens: int = 5,
    hidden: int = 96,
    num_layers: int = 3,
    num_heads: int = 4,
    ff_dim: int | None = None,
    dropout: float = 0.1,
    static_shapes: bool = False,
    name: str | None = None,
) -> keras.Model:
    """Build an (uncompiled) VarMisuse model.

    Args:
        kind: ``"great"`` (attention logits get a learned bias per edge type, layer and head) or
            ``"transformer"`` (the same encoder, edges ignored).
        vocab_size: sub-token vocabulary size (``len(SubtokenVocab)``).
        max_subtokens: ``S``, sub-tokens per token.
        hidden, num_layers, num_heads, ff_dim, dropout: encoder size; ``ff_dim`` defaults to ``2*hidden``.
        static_shapes: build with fixed-shape ops only, as XLA (``jit_compile=True``) needs; the
            default uses sparse lookups that are faster without XLA. The same function either way.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}; received {kind!r}")
    for arg, val in (("vocab_size", vocab_size), ("hidden", hidden), ("num_layers", num_layers),
                     ("num_heads", num_heads), ("max_subtokens", max_subtokens)):
        if not isinstance(val, int) or val < 1:
            raise ValueError(f"{arg} must be a positive int; received {val!r}")
    if hidden % num_heads:
        raise ValueError(f"hidden ({hidden}) must be divisible by num_heads ({num_heads})")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); received {dropout!r}")
    ff_dim = ff_dim or 2 * hidden

    subtokens = keras.Input(shape=(None, max_subtokens), dtype="int32", name="subtokens")
    edges = keras.Input(shape=(None, 3), dtype="int32", name="edges")
    candidates = keras.Input(shape=(None,), dtype="float32", name="candidates")

    token_mask = layers.Lambda(lambda s: ops.cast(ops.greater(s[..., 0], 0), "float32"), name="token_mask")(subtokens)
    h = SubtokenEmbedding(vocab_size, hidden, static_shapes=static_shapes, name="embedding")(subtokens)
    h = AddPositions(name="positions")(h)
    h = layers.Dropout(dropout, name="embedding_dropout")(h)
    n_types = NUM_EDGE_TYPES if kind == "great" else 0
    bias = AttentionBias(n_types, num_layers, num_heads, static_shapes=static_shapes, name="attention_bias")(
        token_mask, edges if n_types else None)
    mask_bias, edge_index, edge_values = bias if n_types else (bias, None, None)
    for i in range(num_layers):
        layer_values = None if edge_values is None else edge_values[i]
        h = TransformerBlock(hidden, num_heads, ff_dim, dropout, name=f"layer_{i}")(h, mask_bias, edge_index,
                                                                                   layer_values)
    h = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(h)
    p_loc, p_rep = PointerHeads(name="pointers")(h, token_mask, candidates)
    p_loc = layers.Identity(name="loc")(p_loc)
    p_rep = layers.Identity(name="rep")(p_rep)
    return keras.Model(
        inputs={"subtokens": subtokens, "edges": edges, "candidates": candidates},
        outputs={"loc": p_loc, "rep": p_rep},
        name=name or f"varmisuse_{kind}",
    )


def compile_varmisuse_model(
    model: keras.Model,
    *,
    learning_rate: float = 1e-3,
    jit_compile: bool = False,
    **compile_kwargs,
) -> keras.Model:
    """Compile with Adam and the GREAT losses (:func:`loc_loss`, :func:`rep_loss`), summed.

    ``jit_compile`` defaults to False: length bucketing gives many batch shapes, and XLA would
    recompile for each.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={"loc": loc_loss, "rep": rep_loss},
        jit_compile=jit_compile,
        **compile_kwargs,
    )
    return model
