# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""BiXLSTM-ResNet UNet: residual encoder with bidirectional xLSTM layers, convolutional decoder, deep supervision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.data import MetaTensor
from scripts.networks.decoder import UNetDecoder
from scripts.networks.encoder import ResidualEncoder
from scripts.networks.options import ActSpec, NormSpec
from torch import nn

PAPER_FEATURES = (32, 64, 128, 256, 320, 320)
PAPER_STRIDES = (1, 2, 2, 2, 2, 2)
PAPER_ROI_SIZE = (160, 192, 128)  # the paper's 128x192x160 patch, in the configs' x, y, z axis order (roi_size)


class BiXLSTMResUNet(nn.Module):
    """The BiXLSTM-ResNet UNet of Mazher et al. (autoPET IV 2025), every design choice one JSON-native keyword.

    Defaults are the paper's: 6 stages of (32, 64, 128, 256, 320, 320) channels, strides (1, 2, 2, 2, 2, 2),
    2 inputs (CT = channel 0, PET = channel 1), 2 classes, xLSTM at the bottleneck. Block counts follow the seed
    code's nnU-Net plan.

    Args:
        in_channels: input channels.
        out_channels: classes (logits out).
        features: channels per encoder stage.
        strides: per-stage downsampling (int or ``[D, H, W]`` each; stage 0 must be 1).
        blocks_per_stage: residual blocks per encoder stage (scalar or per stage); ``None`` follows the seed
            plan: 2 in each of the first three stages, 1 in the deeper ones.
        decoder_blocks_per_stage: ``None`` for the seed plan (1, 1, then 2 per deeper stage), or residual
            blocks per decoder stage, full resolution first (scalar or
            ``len(features) - 1`` values).
        kernel_sizes: odd conv kernel per stage (scalar or per stage).
        norm: MONAI norm spec, e.g. ``["instance", {"affine": true}]``.
        act: MONAI activation spec, e.g. ``["leakyrelu", {"negative_slope": 0.01, "inplace": true}]``.
        xlstm: ``"bot"`` (bottleneck), ``"enc"`` (after each stage of the deeper half) or ``"none"``.
        xlstm_depth: bidirectional pairs per xLSTM layer.
        xlstm_heads: mLSTM heads.
        xlstm_chunk_size: tokens per chunk of the chunkwise mLSTM form.
        xlstm_parallel_max_tokens: token counts up to this use the parallel mLSTM form.
        upsample: ``"transpose"`` or ``"nearest"``.
        deep_supervision: in training mode, return a list of logits (full resolution first).

    Input ``(B, in_channels, D, H, W)`` with every size a multiple of :attr:`total_stride`; in eval mode (or
    without deep supervision) the output is one tensor ``(B, out_channels, D, H, W)``.
    """

    encoder_prefix = "encoder."  # state-dict prefix of everything MAE pretraining transfers (xLSTM included)

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 2,
        features: Sequence[int] = PAPER_FEATURES,
        strides: int | Sequence[int | Sequence[int]] = PAPER_STRIDES,
        blocks_per_stage: int | Sequence[int] | None = None,
        decoder_blocks_per_stage: int | Sequence[int] | None = None,
        kernel_sizes: int | Sequence[int | Sequence[int]] = 3,
        norm: NormSpec = ("instance", {"affine": True}),
        act: ActSpec = ("leakyrelu", {"negative_slope": 0.01, "inplace": True}),
        xlstm: str = "bot",
        xlstm_depth: int = 1,
        xlstm_heads: int = 4,
        xlstm_chunk_size: int = 256,
        xlstm_parallel_max_tokens: int = 1024,
        upsample: str = "transpose",
        deep_supervision: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        num_stages = len(features)
        if blocks_per_stage is None:
            blocks_per_stage = [2 if stage < 3 else 1 for stage in range(num_stages)]
        if decoder_blocks_per_stage is None:
            decoder_blocks_per_stage = [1 if stage < 2 else 2 for stage in range(num_stages - 1)]
        self.encoder = ResidualEncoder(
            in_channels=in_channels,
            features=features,
            strides=strides,
            blocks_per_stage=blocks_per_stage,
            kernel_sizes=kernel_sizes,
            norm=norm,
            act=act,
            xlstm=xlstm,
            xlstm_depth=xlstm_depth,
            xlstm_heads=xlstm_heads,
            xlstm_chunk_size=xlstm_chunk_size,
            xlstm_parallel_max_tokens=xlstm_parallel_max_tokens,
        )
        self.decoder = UNetDecoder(
            self.encoder,
            out_channels=out_channels,
            blocks_per_stage=decoder_blocks_per_stage,
            deep_supervision=deep_supervision,
            upsample=upsample,
        )

    @property
    def total_stride(self) -> tuple[int, int, int]:
        """Input sizes must be multiples of this, per axis (D, H, W)."""
        return self.encoder.total_stride

    def check_input_shape(self, shape: Sequence[int]) -> None:
        """Raises a ValueError saying what is valid if a ``(B, C, D, H, W)`` input cannot pass the network."""
        if len(shape) != 5 or shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, D, H, W), got {tuple(shape)}")
        spatial, total = tuple(shape[2:]), self.total_stride
        if any(size % stride for size, stride in zip(spatial, total, strict=True)):
            rounded_up = tuple(-(-size // stride) * stride for size, stride in zip(spatial, total, strict=True))
            raise ValueError(
                f"input spatial size {spatial} is not divisible by the network's total stride {total}: "
                f"each axis must be a multiple of its stride, e.g. {rounded_up}"
            )
        if all(size == stride for size, stride in zip(spatial, total, strict=True)):
            raise ValueError(
                f"input spatial size {spatial} leaves a single bottleneck voxel, which instance normalisation "
                f"cannot normalise; use at least twice the total stride {total} on one axis"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits ``(B, out_channels, D, H, W)``, or in training with deep supervision a list, full resolution first."""
        self.check_input_shape(x.shape)
        if isinstance(x, MetaTensor):  # plain tensors inside: MetaTensor's per-op bookkeeping costs ~10x on CPU
            x = x.as_tensor()
        return self.decoder(self.encoder(x))

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights MAE pretraining transfers: every state-dict entry under :attr:`encoder_prefix`.

        Keys keep the prefix, so ``model.load_state_dict(other.encoder_state_dict(), strict=False)`` loads them.
        """
        return {key: value for key, value in self.state_dict().items() if key.startswith(self.encoder_prefix)}

    def reset_parameters(self) -> None:
        """He init for convolutions, the ``xlstm`` package's init for the xLSTM blocks."""
        self.encoder.reset_parameters()
        self.decoder.reset_parameters()
