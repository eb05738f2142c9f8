# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The mLSTM sequence kernel for any token count: parallel form for short sequences, chunkwise for long ones.

The stock ``xlstm`` mLSTM cell always runs the parallel (quadratic-memory) form against a causal mask of
``context_length**2`` registered at construction, and fails for longer sequences. An instance of
:class:`MLSTMSequenceKernel` replaces the cell's ``backend_fn``: it builds no fixed mask, and above
``parallel_max_tokens`` it runs the chunkwise form, whose memory grows linearly with the token count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from scripts.networks.options import positive_int
from xlstm.blocks.mlstm.backends import chunkwise_simple, parallel_stabilized_simple

# Gate pre-activations of the padding tokens: input gate ~closed (exp(-30)), forget gate ~open (sigmoid(30)).
# Padding sits after the real tokens, so by causality it cannot change them; these values also keep it out
# of the chunk's numerical stabiliser.
_PAD_IGATE = -30.0
_PAD_FGATE = 30.0
# Lowest input-gate pre-activation passed on. The parallel form's stabiliser computes exp(-max_log_D), and a row's
# max_log_D is at least its own input-gate pre-activation: below about -88 that exp overflows float32 to inf, and
# backward turns inf into NaN gradients (a diverging training's first NaN). A gate of exp(-80) is closed anyway.
MIN_IGATE_PREACT = -80.0


def chunkwise_mlstm(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    igate_preact: torch.Tensor,
    fgate_preact: torch.Tensor,
    chunk_size: int,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Chunkwise mLSTM for any sequence length, padding the (already oriented) sequence at its end.

    Args:
        queries: ``(B, NH, S, DH)``.
        keys: ``(B, NH, S, DH)``.
        values: ``(B, NH, S, DH)``.
        igate_preact: input-gate pre-activations ``(B, NH, S, 1)``.
        fgate_preact: forget-gate pre-activations ``(B, NH, S, 1)``.
        chunk_size: tokens per chunk; memory is ``O(S * chunk_size)`` instead of ``O(S**2)``.
        eps: added to the normaliser, as in ``xlstm``. The two forms stabilise with different maxima, so this
            epsilon makes them differ by up to about ``eps`` relative; with ``eps=0`` they agree to rounding.

    Returns:
        The hidden states ``(B, NH, S, DH)``, equal to the parallel form's (see ``eps``).
    """
    num_tokens = queries.shape[2]
    padding = -num_tokens % chunk_size
    if padding:
        # F.pad's last pair pads dim -1, the pair before it dim -2: the token axis of all five tensors
        queries, keys, values = (F.pad(tensor, (0, 0, 0, padding)) for tensor in (queries, keys, values))
        igate_preact = F.pad(igate_preact, (0, 0, 0, padding), value=_PAD_IGATE)
        fgate_preact = F.pad(fgate_preact, (0, 0, 0, padding), value=_PAD_FGATE)
    hidden = chunkwise_simple(
        queries=queries,
        keys=keys,
        values=values,
        igate_preact=igate_preact,
        fgate_preact=fgate_preact,
        chunk_size=chunk_size,
        eps=eps,
    )
    return hidden[:, :, :num_tokens]


class MLSTMSequenceKernel:
    """A drop-in ``mLSTMCell.backend_fn`` that picks the mLSTM form by sequence length.

    Args:
        chunk_size: tokens per chunk of the chunkwise form.
        parallel_max_tokens: sequences up to this length use the parallel form (exactly the seed/ViL maths,
            fastest for short sequences); longer ones use the chunkwise form (linear memory).
    """

    def __init__(self, chunk_size: int = 256, parallel_max_tokens: int = 1024) -> None:
        self.chunk_size = positive_int(chunk_size, "xlstm_chunk_size")
        self.parallel_max_tokens = positive_int(parallel_max_tokens, "xlstm_parallel_max_tokens")

    def uses_parallel_form(self, num_tokens: int) -> bool:
        """Whether a sequence of ``num_tokens`` runs in the parallel form."""
        return num_tokens <= self.parallel_max_tokens

    def __call__(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        igate_preact: torch.Tensor,
        fgate_preact: torch.Tensor,
        **unused: object,
    ) -> torch.Tensor:
        """Runs the mLSTM over ``(B, NH, S, DH)`` inputs; ``unused`` absorbs the cell's fixed causal mask."""
        igate_preact = igate_preact.clamp_min(MIN_IGATE_PREACT)
        if self.uses_parallel_form(queries.shape[2]):
            # no mask passed: the function builds an S x S one, so any S works
            return parallel_stabilized_simple(queries, keys, values, igate_preact, fgate_preact)
        return chunkwise_mlstm(queries, keys, values, igate_preact, fgate_preact, chunk_size=self.chunk_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(chunk_size={self.chunk_size}, parallel_max_tokens={self.parallel_max_tokens})"
