# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The MAE reconstruction network: the segmentation network's encoder plus a light reconstruction decoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from scripts.networks import BiXLSTMResUNet, ResidualEncoder, UNetDecoder
from scripts.networks.blocks import ConvNormAct, he_init_, make_upsampler
from torch import nn

DECODER_KINDS = ("unet", "light")
IGNORED_NETWORK_KEYWORDS = ("out_channels", "deep_supervision")  # the reconstruction head fixes both


class LightReconstructionDecoder(nn.Module):
    """AMAES-style light decoder: no skip connections, one conv-norm-act per stage, a 1x1x1 regression head.

    Without skips the decoder cannot copy visible voxels through, and it needs about half the activation
    memory of the UNet decoder. Built from the encoder's public attributes, like :class:`UNetDecoder`.

    Args:
        encoder: the encoder whose deepest output is decoded.
        out_channels: reconstructed channels.
        upsample: ``"transpose"`` or ``"nearest"``.
    """

    def __init__(self, encoder: ResidualEncoder, *, out_channels: int, upsample: str = "transpose") -> None:
        super().__init__()
        channels, strides = encoder.output_channels, encoder.strides
        self.negative_slope = encoder.negative_slope
        self.upsamplers = nn.ModuleList(
            make_upsampler(upsample, channels[index + 1], channels[index], strides[index + 1])
            for index in range(len(channels) - 1)
        )
        self.stages = nn.ModuleList(
            ConvNormAct(
                in_channels=channels[index],
                out_channels=channels[index],
                kernel_size=encoder.kernel_sizes[index],
                norm=encoder.norm,
                act=encoder.act,
                negative_slope=encoder.negative_slope,
            )
            for index in range(len(channels) - 1)
        )
        self.head = nn.Conv3d(channels[0], out_channels, kernel_size=1)
        self.reset_parameters()

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """Decodes the deepest encoder output alone (the other skips are ignored) to ``(B, out, D, H, W)``."""
        x = skips[-1]
        for index in reversed(range(len(self.stages))):
            x = self.stages[index](self.upsamplers[index](x))
        return self.head(x)

    def reset_parameters(self) -> None:
        """He init of every convolution."""
        he_init_(self, self.negative_slope)


def encoder_summary(encoder: ResidualEncoder) -> dict[str, Any]:
    """JSON-native description of an encoder's shape, stored in checkpoints to explain mismatches."""
    return {
        "in_channels": encoder.stem.conv.in_channels,
        "features": list(encoder.output_channels),
        "strides": [list(stride) for stride in encoder.strides],
        "kernel_sizes": [list(kernel) for kernel in encoder.kernel_sizes],
        "xlstm_stages": list(encoder.xlstm_stages),
    }


class MAEReconstructor(nn.Module):
    """Masked-autoencoder network: the segmentation network's encoder plus a reconstruction decoder.

    The encoder is the :class:`BiXLSTMResUNet` one (same class, same ``encoder.*`` names, xLSTM layers included);
    the decoder has one output channel per input channel.

    Build it either around an existing network (its encoder module is shared, its decoder is not used), e.g.
    ``{"_target_": "scripts.mae.MAEReconstructor", "network": "@network_def"}``, or from the network's keywords,
    e.g. ``MAEReconstructor(features=[32, 64, 128, 256, 320, 320], xlstm="bot")``. ``forward(x)`` returns the
    reconstruction ``(B, in_channels, D, H, W)``; ``encoder_state_dict()`` is what fine-tuning loads.

    Args:
        network: a segmentation network whose encoder to reuse, or ``None`` to build one from ``network_kwargs``.
        decoder: ``"unet"`` (the segmentation decoder with skips and a regression head, as nnssl; fine because
            the loss only scores hidden voxels) or ``"light"`` (:class:`LightReconstructionDecoder`, AMAES).
        decoder_blocks_per_stage: residual blocks per stage of the ``"unet"`` decoder (scalar or per stage).
        upsample: ``"transpose"`` or ``"nearest"``.
        **network_kwargs: :class:`BiXLSTMResUNet` keywords (``in_channels``, ``features``, ``strides``,
            ``xlstm``, ...); ``out_channels`` and ``deep_supervision`` are accepted and ignored.
    """

    encoder_prefix = BiXLSTMResUNet.encoder_prefix

    def __init__(
        self,
        network: BiXLSTMResUNet | None = None,
        decoder: str = "unet",
        decoder_blocks_per_stage: int | Sequence[int] = 1,
        upsample: str = "transpose",
        **network_kwargs: Any,
    ) -> None:
        super().__init__()
        if network is not None and network_kwargs:
            raise ValueError(f"pass either network or its keywords, not both (got {sorted(network_kwargs)})")
        if network is None:
            kwargs = {k: v for k, v in network_kwargs.items() if k not in IGNORED_NETWORK_KEYWORDS}
            network = BiXLSTMResUNet(**kwargs, deep_supervision=False)
            self.network_config: dict[str, Any] | None = kwargs
        else:
            self.network_config = None
        if not isinstance(network, BiXLSTMResUNet):
            raise TypeError(f"network must be a BiXLSTMResUNet, got {type(network).__name__}")
        self.in_channels = network.in_channels
        self.encoder = network.encoder
        if decoder == "unet":
            self.decoder: nn.Module = UNetDecoder(
                self.encoder,
                out_channels=self.in_channels,
                blocks_per_stage=decoder_blocks_per_stage,
                deep_supervision=False,
                upsample=upsample,
            )
        elif decoder == "light":
            self.decoder = LightReconstructionDecoder(self.encoder, out_channels=self.in_channels, upsample=upsample)
        else:
            raise ValueError(f"decoder={decoder!r} is not a reconstruction decoder; use one of {DECODER_KINDS}")

    @property
    def total_stride(self) -> tuple[int, int, int]:
        """Input sizes must be multiples of this, per axis (D, H, W)."""
        return self.encoder.total_stride

    def check_input_shape(self, shape: Sequence[int]) -> None:
        """Raises a ValueError saying what is valid if a ``(B, C, D, H, W)`` input cannot pass the network."""
        BiXLSTMResUNet.check_input_shape(self, shape)  # reads only in_channels and total_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``(B, in_channels, D, H, W)`` of a masked input of the same shape."""
        self.check_input_shape(x.shape)
        if isinstance(x, MetaTensor):
            x = x.as_tensor()
        return self.decoder(self.encoder(x))

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """Every state-dict entry under ``encoder.``, prefix kept: what :func:`load_pretrained_encoder` loads."""
        return {key: value for key, value in self.state_dict().items() if key.startswith(self.encoder_prefix)}

    def encoder_summary(self) -> dict[str, Any]:
        """The encoder's channels, strides, kernels and xLSTM stages (see :func:`encoder_summary`)."""
        return encoder_summary(self.encoder)
