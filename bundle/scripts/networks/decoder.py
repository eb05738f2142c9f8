# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The convolutional UNet decoder with skip connections and deep-supervision heads, built from an encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scripts.networks.blocks import ResidualStage, he_init_, make_upsampler
from scripts.networks.encoder import ResidualEncoder
from scripts.networks.options import per_stage, positive_int
from torch import nn


class UNetDecoder(nn.Module):
    """Decoder stage ``i`` (for ``i`` from the deepest skip up to 0) works at encoder stage ``i``'s resolution.

    Each stage (1) upsamples the deeper features by ``encoder.strides[i + 1]`` to ``encoder.output_channels[i]``
    channels, (2) concatenates skip ``i``, (3) runs residual blocks back to ``output_channels[i]``. Every stage has
    a 1x1x1 segmentation head; all heads always exist, so checkpoints load whether or not deep supervision is on.

    Args:
        encoder: the encoder; only its public attributes are read.
        out_channels: classes.
        blocks_per_stage: residual blocks per decoder stage, indexed like the encoder stages it pairs with
            (scalar or ``len(features) - 1`` values, full resolution first).
        deep_supervision: in training mode return one output per stage, full resolution first.
        upsample: ``"transpose"`` or ``"nearest"`` (see :func:`make_upsampler`).
    """

    def __init__(
        self,
        encoder: ResidualEncoder,
        *,
        out_channels: int,
        blocks_per_stage: int | Sequence[int],
        deep_supervision: bool,
        upsample: str,
    ) -> None:
        super().__init__()
        channels, strides = encoder.output_channels, encoder.strides
        num_stages = len(channels) - 1
        blocks = [
            positive_int(count, "decoder_blocks_per_stage")
            for count in per_stage(blocks_per_stage, num_stages, "decoder_blocks_per_stage")
        ]
        self.deep_supervision = bool(deep_supervision)
        self.negative_slope = encoder.negative_slope
        self.upsamplers = nn.ModuleList(
            make_upsampler(upsample, channels[index + 1], channels[index], strides[index + 1])
            for index in range(num_stages)
        )
        self.stages = nn.ModuleList(
            ResidualStage(
                in_channels=2 * channels[index],
                out_channels=channels[index],
                num_blocks=blocks[index],
                kernel_size=encoder.kernel_sizes[index],
                stride=(1, 1, 1),
                norm=encoder.norm,
                act=encoder.act,
                negative_slope=encoder.negative_slope,
            )
            for index in range(num_stages)
        )
        self.heads = nn.ModuleList(
            nn.Conv3d(channels[index], positive_int(out_channels, "out_channels"), kernel_size=1)
            for index in range(num_stages)
        )
        self.reset_parameters()

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """Decodes the encoder's skips.

        Returns:
            In training mode with deep supervision, a list of logits, one per stage, full resolution first
            (the form ``monai.losses.DeepSupervisionLoss`` takes); otherwise the full-resolution logits.
        """
        supervise = self.training and self.deep_supervision
        outputs = []
        x = skips[-1]
        for index in reversed(range(len(self.stages))):
            x = self.upsamplers[index](x)
            x = self.stages[index](torch.cat([x, skips[index]], dim=1))
            if supervise:
                outputs.append(self.heads[index](x))
        if supervise:
            return outputs[::-1]
        return self.heads[0](x)

    def reset_parameters(self) -> None:
        """He init of every convolution (upsampling, blocks and heads)."""
        he_init_(self, self.negative_slope)
