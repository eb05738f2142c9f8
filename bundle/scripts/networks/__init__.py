# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The BiXLSTM-ResNet UNet and its parts; configs use ``scripts.networks.BiXLSTMResUNet``."""

from scripts.networks.bixlstm import BiMLSTMPair, BiXLSTM3d, DirectionalMLSTMBlock, TokenOrder
from scripts.networks.decoder import UNetDecoder
from scripts.networks.encoder import ResidualEncoder
from scripts.networks.mlstm_kernel import MLSTMSequenceKernel, chunkwise_mlstm
from scripts.networks.options import XLSTMPlacement
from scripts.networks.unet import BiXLSTMResUNet

__all__ = [
    "BiMLSTMPair",
    "BiXLSTM3d",
    "BiXLSTMResUNet",
    "DirectionalMLSTMBlock",
    "MLSTMSequenceKernel",
    "ResidualEncoder",
    "TokenOrder",
    "UNetDecoder",
    "XLSTMPlacement",
    "chunkwise_mlstm",
]
