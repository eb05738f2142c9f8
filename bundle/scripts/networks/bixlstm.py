# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""A genuinely bidirectional xLSTM layer over the flattened tokens of a 3D feature map.

Each pair runs one ``xlstm`` mLSTM block on the raster-ordered token sequence and a second one on the
reversed sequence (Vision-LSTM's alternation), so every token's output depends on every other token.
The seed code builds only the first direction; see ``docs/architecture.md``.
"""

from __future__ import annotations

import enum

import torch
from scripts.networks.mlstm_kernel import MLSTMSequenceKernel
from scripts.networks.options import positive_int
from torch import nn
from xlstm import mLSTMBlock, mLSTMBlockConfig, mLSTMLayerConfig
from xlstm.components.ln import LayerNorm


class TokenOrder(str, enum.Enum):
    """The order in which an mLSTM block reads the raster-ordered tokens (W fastest, then H, then D).

    A ``str`` enum that prints as its value, as ``enum.StrEnum`` would (that class needs Python 3.11).
    """

    FIRST_TO_LAST = "first_to_last"
    LAST_TO_FIRST = "last_to_first"

    def __str__(self) -> str:
        return self.value


class DirectionalMLSTMBlock(nn.Module):
    """One pre-norm residual ``xlstm`` mLSTM block that reads the tokens in a given order.

    For :attr:`TokenOrder.LAST_TO_FIRST` the sequence is flipped on the way in and flipped back on the way out,
    so the output tokens stay in raster order.
    """

    def __init__(
        self,
        *,
        dim: int,
        order: TokenOrder,
        num_heads: int,
        kernel: MLSTMSequenceKernel,
        conv1d_kernel_size: int,
        qkv_proj_blocksize: int,
        proj_factor: float,
        block_index: int,
        num_blocks: int,
    ) -> None:
        super().__init__()
        self.order = TokenOrder(order)
        layer_config = mLSTMLayerConfig(
            embedding_dim=dim,
            num_heads=num_heads,
            conv1d_kernel_size=conv1d_kernel_size,
            qkv_proj_blocksize=qkv_proj_blocksize,
            proj_factor=proj_factor,
            context_length=1,  # only sizes the stock cell's causal mask, which our kernel never reads
        )
        self.block = mLSTMBlock(
            config=mLSTMBlockConfig(mlstm=layer_config, _num_blocks=num_blocks, _block_idx=block_index)
        )
        self.block.xlstm.mlstm_cell.backend_fn = kernel

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, N, C)`` tokens to ``(B, N, C)``."""
        if self.order is TokenOrder.LAST_TO_FIRST:
            return self.block(tokens.flip(1)).flip(1)
        return self.block(tokens)

    def reset_parameters(self) -> None:
        """The ``xlstm`` package's own init (small-init / Wang-init projections, linspace forget-gate bias)."""
        self.block.reset_parameters()


class BiMLSTMPair(nn.Module):
    """Two directional mLSTM blocks, one child per :class:`TokenOrder` (named by its value), applied in turn."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        kernel: MLSTMSequenceKernel,
        conv1d_kernel_size: int,
        qkv_proj_blocksize: int,
        proj_factor: float,
        pair_index: int,
        num_pairs: int,
    ) -> None:
        super().__init__()
        for offset, order in enumerate(TokenOrder):
            block = DirectionalMLSTMBlock(
                dim=dim,
                order=order,
                num_heads=num_heads,
                kernel=kernel,
                conv1d_kernel_size=conv1d_kernel_size,
                qkv_proj_blocksize=qkv_proj_blocksize,
                proj_factor=proj_factor,
                block_index=2 * pair_index + offset,
                num_blocks=2 * num_pairs,
            )
            self.add_module(order.value, block)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, N, C)`` tokens to ``(B, N, C)``, first to last, then last to first."""
        for block in self.children():
            tokens = block(tokens)
        return tokens

    def reset_parameters(self) -> None:
        """Re-initialises both directions."""
        for block in self.children():
            block.reset_parameters()


class BiXLSTM3d(nn.Module):
    """Bidirectional xLSTM over the ``D*H*W`` tokens of a ``(B, C, D, H, W)`` feature map; same shape out.

    It computes in float32 (float64 for float64 inputs) with autocast disabled, since the mLSTM's exponential
    gates overflow in half precision, and returns the input's dtype.

    Args:
        channels: feature channels ``C`` (the token dimension).
        depth: number of bidirectional pairs (each pair is two mLSTM blocks).
        num_heads: mLSTM heads; must divide the up-projected dimension (``2 * C`` rounded up to a multiple of 64).
        chunk_size: tokens per chunk of the chunkwise form.
        parallel_max_tokens: token counts up to this use the parallel form, longer ones the chunkwise form.
        conv1d_kernel_size: kernel of the mLSTM's causal depthwise conv.
        qkv_proj_blocksize: block size of the headwise q/k/v projections.
        proj_factor: up-projection factor of the mLSTM layer.
    """

    def __init__(
        self,
        channels: int,
        depth: int = 1,
        num_heads: int = 4,
        chunk_size: int = 256,
        parallel_max_tokens: int = 1024,
        conv1d_kernel_size: int = 4,
        qkv_proj_blocksize: int = 4,
        proj_factor: float = 2.0,
    ) -> None:
        super().__init__()
        self.channels = positive_int(channels, "channels")
        depth = positive_int(depth, "xlstm_depth")
        num_heads = positive_int(num_heads, "xlstm_heads")
        inner_dim = mLSTMLayerConfig(embedding_dim=channels, proj_factor=proj_factor)._proj_up_dim
        if inner_dim % num_heads or inner_dim % qkv_proj_blocksize:
            raise ValueError(
                f"xlstm_heads={num_heads} and qkv_proj_blocksize={qkv_proj_blocksize} must divide the mLSTM inner "
                f"dimension {inner_dim} (for {channels} channels)"
            )
        self.kernel = MLSTMSequenceKernel(chunk_size=chunk_size, parallel_max_tokens=parallel_max_tokens)
        self.pairs = nn.ModuleList(
            BiMLSTMPair(
                dim=channels,
                num_heads=num_heads,
                kernel=self.kernel,
                conv1d_kernel_size=conv1d_kernel_size,
                qkv_proj_blocksize=qkv_proj_blocksize,
                proj_factor=proj_factor,
                pair_index=index,
                num_pairs=depth,
            )
            for index in range(depth)
        )
        self.norm = LayerNorm(ndim=channels, weight=True, bias=False)  # as xlstm's post-blocks norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, C, D, H, W)`` to the same shape and dtype."""
        if x.ndim != 5 or x.shape[1] != self.channels:
            raise ValueError(f"BiXLSTM3d expects (B, {self.channels}, D, H, W), got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            compute_dtype = torch.promote_types(x.dtype, torch.float32)
            tokens = x.to(compute_dtype).flatten(2).transpose(1, 2)  # (B, N, C), raster order
            for pair in self.pairs:
                tokens = pair(tokens)
            tokens = self.norm(tokens)
            out = tokens.transpose(1, 2).reshape(x.shape)
        return out.to(x.dtype)

    def reset_parameters(self) -> None:
        """The ``xlstm`` package's init for every block, identity for the final norm."""
        for pair in self.pairs:
            pair.reset_parameters()
        self.norm.reset_parameters()
