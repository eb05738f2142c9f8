# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The residual 3D encoder, with its bidirectional xLSTM layers inside it (so MAE transfers them too)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scripts.networks.bixlstm import BiXLSTM3d
from scripts.networks.blocks import ConvNormAct, ResidualStage
from scripts.networks.options import (
    ActSpec,
    NormSpec,
    XLSTMPlacement,
    negative_slope,
    per_stage,
    positive_int,
    spatial_triple,
)
from torch import nn


class ResidualEncoder(nn.Module):
    """Stem conv, then one stage of residual blocks per entry of ``features``; returns every stage's output.

    Stage ``s`` starts with a block of stride ``strides[s]`` (stage 0 must have stride 1, so the first skip is at
    full resolution). Where ``xlstm`` places one, a :class:`BiXLSTM3d` follows the stage on its patch tokens.

    The public attributes ``output_channels``, ``strides``, ``kernel_sizes``, ``norm``, ``act`` and
    ``negative_slope`` are what a decoder is built from.

    Args:
        in_channels: input channels (CT, PET).
        features: channels of each stage.
        strides: per-stage downsampling, each an int or ``[D, H, W]``; a scalar applies to every stage but the first.
        blocks_per_stage: residual blocks per stage (scalar or one per stage).
        kernel_sizes: conv kernel per stage (odd; scalar or one per stage, each an int or ``[D, H, W]``).
        norm: MONAI norm spec, e.g. ``["instance", {"affine": true}]``; ``None`` for none.
        act: MONAI activation spec, e.g. ``["leakyrelu", {"negative_slope": 0.01}]``.
        xlstm: placement keyword ``"bot"``, ``"enc"`` or ``"none"`` (see :class:`XLSTMPlacement`).
        xlstm_depth: bidirectional pairs per xLSTM layer.
        xlstm_heads: mLSTM heads.
        xlstm_chunk_size: tokens per chunk of the chunkwise mLSTM form.
        xlstm_parallel_max_tokens: token counts up to this use the parallel mLSTM form.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        features: Sequence[int],
        strides: int | Sequence[int | Sequence[int]],
        blocks_per_stage: int | Sequence[int],
        kernel_sizes: int | Sequence[int | Sequence[int]],
        norm: NormSpec,
        act: ActSpec,
        xlstm: str,
        xlstm_depth: int,
        xlstm_heads: int,
        xlstm_chunk_size: int,
        xlstm_parallel_max_tokens: int,
    ) -> None:
        super().__init__()
        if not isinstance(features, (list, tuple)) or len(features) < 2:
            raise ValueError(f"features must list the channels of at least 2 stages, got {features!r}")
        num_stages = len(features)
        self.output_channels = [positive_int(channels, "features") for channels in features]
        if not isinstance(strides, (list, tuple)):
            strides = [1] + [strides] * (num_stages - 1)
        self.strides = [spatial_triple(stride, "strides") for stride in per_stage(strides, num_stages, "strides")]
        if self.strides[0] != (1, 1, 1):
            raise ValueError(f"strides[0] must be 1 (stage 0 runs at full resolution), got {strides[0]!r}")
        self.kernel_sizes = [
            spatial_triple(size, "kernel_sizes") for size in per_stage(kernel_sizes, num_stages, "kernel_sizes")
        ]
        if any(size % 2 == 0 for kernel in self.kernel_sizes for size in kernel):
            raise ValueError(f"kernel_sizes must be odd (same padding), got {kernel_sizes!r}")
        blocks = [
            positive_int(count, "blocks_per_stage")
            for count in per_stage(blocks_per_stage, num_stages, "blocks_per_stage")
        ]
        self.norm, self.act, self.negative_slope = norm, act, negative_slope(act)
        self.placement = XLSTMPlacement.parse(xlstm)
        self.xlstm_stages = self.placement.stages(num_stages)

        self.stem = ConvNormAct(
            in_channels=positive_int(in_channels, "in_channels"),
            out_channels=self.output_channels[0],
            kernel_size=self.kernel_sizes[0],
            norm=norm,
            act=act,
            negative_slope=self.negative_slope,
        )
        self.stages = nn.ModuleList(
            ResidualStage(
                in_channels=self.output_channels[max(index - 1, 0)],
                out_channels=channels,
                num_blocks=blocks[index],
                kernel_size=self.kernel_sizes[index],
                stride=self.strides[index],
                norm=norm,
                act=act,
                negative_slope=self.negative_slope,
            )
            for index, channels in enumerate(self.output_channels)
        )
        # keyed by stage index, so state-dict names say where each layer sits: xlstm_layers.5.pairs.0...
        self.xlstm_layers = nn.ModuleDict(
            {
                str(index): BiXLSTM3d(
                    self.output_channels[index],
                    depth=xlstm_depth,
                    num_heads=xlstm_heads,
                    chunk_size=xlstm_chunk_size,
                    parallel_max_tokens=xlstm_parallel_max_tokens,
                )
                for index in self.xlstm_stages
            }
        )

    @property
    def total_stride(self) -> tuple[int, int, int]:
        """The product of all stage strides per axis: input sizes must be multiples of it."""
        total = [1, 1, 1]
        for stride in self.strides:
            total = [accumulated * step for accumulated, step in zip(total, stride, strict=True)]
        return tuple(total)  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Returns the output of every stage, full resolution first (the skips; the last is the bottleneck)."""
        skips = []
        x = self.stem(x)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if str(index) in self.xlstm_layers:
                x = self.xlstm_layers[str(index)](x)
            skips.append(x)
        return skips

    def reset_parameters(self) -> None:
        """He init for the convolutions, the ``xlstm`` package's init for the xLSTM layers."""
        self.stem.reset_parameters()
        for stage in self.stages:
            stage.reset_parameters()
        for layer in self.xlstm_layers.values():
            layer.reset_parameters()
