# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Convolutional building blocks: conv-norm-act, the residual block, a stage of residual blocks, upsampling."""

from __future__ import annotations

import torch
from scripts.networks.options import ActSpec, NormSpec, make_act, make_norm
from torch import nn


def he_init_(module: nn.Module, negative_slope: float) -> None:
    """He/Kaiming-normal init of every (transposed) convolution in ``module``; biases to zero, norms to identity.

    He et al., "Delving deep into rectifiers", ICCV 2015: the gain accounts for the LeakyReLU's negative slope.
    """
    for child in module.modules():
        if isinstance(child, (nn.Conv3d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(child.weight, a=negative_slope, nonlinearity="leaky_relu")
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm):
            child.reset_parameters()


def _conv(
    in_channels: int, out_channels: int, kernel_size: tuple[int, int, int], stride: tuple[int, int, int], bias: bool
) -> nn.Conv3d:
    """A 'same'-padded 3D convolution (odd kernels), strided for downsampling."""
    padding = tuple(size // 2 for size in kernel_size)
    return nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)


class ConvNormAct(nn.Sequential):
    """Convolution, normalisation, activation; the conv has a bias only when there is no norm to cancel it."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        norm: NormSpec,
        act: ActSpec,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.conv = _conv(in_channels, out_channels, kernel_size, stride, bias=norm is None)
        self.norm = make_norm(norm, out_channels)
        self.act = make_act(act)
        self.negative_slope = negative_slope
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init of the conv (see :func:`he_init_`)."""
        he_init_(self, self.negative_slope)


class ResidualBlock(nn.Module):
    """Basic ResNet block: conv-norm-act-conv-norm plus a shortcut, then the activation.

    ``stride`` applies to the first conv and to the shortcut only. The shortcut is the identity when shape is
    kept, else a strided 1x1x1 conv with its own norm (ResNet "option B").
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        norm: NormSpec,
        act: ActSpec,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            norm=norm,
            act=act,
            negative_slope=negative_slope,
        )
        self.conv2 = _conv(out_channels, out_channels, kernel_size, (1, 1, 1), bias=norm is None)
        self.norm2 = make_norm(norm, out_channels)
        if in_channels == out_channels and stride == (1, 1, 1):
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                _conv(in_channels, out_channels, (1, 1, 1), stride, bias=norm is None), make_norm(norm, out_channels)
            )
        self.act = make_act(act)
        self.negative_slope = negative_slope
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, in, D, H, W)`` to ``(B, out, D / stride, H / stride, W / stride)``."""
        return self.act(self.norm2(self.conv2(self.conv1(x))) + self.shortcut(x))

    def reset_parameters(self) -> None:
        """He init of the convs (see :func:`he_init_`)."""
        he_init_(self, self.negative_slope)


class ResidualStage(nn.Sequential):
    """``num_blocks`` residual blocks; the first one changes channels and applies the stage's stride."""

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int],
        norm: NormSpec,
        act: ActSpec,
        negative_slope: float,
    ) -> None:
        super().__init__(
            *(
                ResidualBlock(
                    in_channels=in_channels if index == 0 else out_channels,
                    out_channels=out_channels,
                    kernel_size=kernel_size,
                    stride=stride if index == 0 else (1, 1, 1),
                    norm=norm,
                    act=act,
                    negative_slope=negative_slope,
                )
                for index in range(num_blocks)
            )
        )

    def reset_parameters(self) -> None:
        """Re-initialises every block."""
        for block in self:
            block.reset_parameters()


UPSAMPLE_MODES = ("transpose", "nearest")


def make_upsampler(mode: str, in_channels: int, out_channels: int, scale: tuple[int, int, int]) -> nn.Module:
    """Upsampling by ``scale`` that also maps ``in_channels`` to ``out_channels``.

    Args:
        mode: ``"transpose"`` (transposed conv with kernel = stride, as nnU-Net) or ``"nearest"``
            (nearest-neighbour interpolation then a 1x1x1 conv, as the seed code).
        in_channels: channels of the deeper feature map.
        out_channels: channels of the skip connection it is concatenated with.
        scale: the encoder stride being undone, per axis.
    """
    # no bias: a constant per channel would be cancelled by the norms of the decoder block that follows
    if mode == "transpose":
        return nn.ConvTranspose3d(in_channels, out_channels, kernel_size=scale, stride=scale, bias=False)
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=scale, mode="nearest"), nn.Conv3d(in_channels, out_channels, 1, bias=False)
        )
    raise ValueError(f"upsample={mode!r} is not an upsampling mode; use one of {UPSAMPLE_MODES}")
