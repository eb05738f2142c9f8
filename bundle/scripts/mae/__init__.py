# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""MAE self-supervised pretraining pieces and encoder transfer (docs/pretraining.md).

Pretraining: ``LoadPretrainingStudyd`` (PET/CT or CT-only) -> preprocessing -> spatial augmentation ->
``RandBlockMaskd`` -> ``MAEReconstructor`` trained by a ``SupervisedTrainer`` with ``MAEPrepareBatch`` and
``MaskedReconstructionLoss``; ``EncoderCheckpointSaver`` writes the encoder. Fine-tuning:
``PretrainedEncoderLoader`` (or ``load_pretrained_encoder``) and optionally ``EncoderWarmup``.
"""

from scripts.mae.batch import MAEPrepareBatch
from scripts.mae.encoder_checkpoint import (
    ENCODER_CHECKPOINT_FORMAT,
    EncoderCheckpointSaver,
    encoder_checkpoint,
    read_encoder_tensors,
    save_encoder_checkpoint,
)
from scripts.mae.keys import MASK_KEY, PET_KEY, TARGET_KEY, VALID_KEY
from scripts.mae.loss import MaskedReconstructionLoss
from scripts.mae.masking import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MASK_RATIO,
    RandBlockMaskd,
    block_grid_mask,
    block_grid_shape,
    masked_block_count,
)
from scripts.mae.model import LightReconstructionDecoder, MAEReconstructor, encoder_summary
from scripts.mae.pretraining_datalist import find_ct_files, find_pet_ct_studies, pretraining_datalist, pretraining_item
from scripts.mae.pretraining_loading import LoadPretrainingStudyd, load_ct_only
from scripts.mae.reconstruction_metric import MaskedReconstructionMSE, reconstruction_output
from scripts.mae.transfer import EncoderTransferReport, PretrainedEncoderLoader, load_pretrained_encoder
from scripts.mae.warmup import EncoderWarmup, encoder_param_groups

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MASK_RATIO",
    "ENCODER_CHECKPOINT_FORMAT",
    "MASK_KEY",
    "PET_KEY",
    "TARGET_KEY",
    "VALID_KEY",
    "EncoderCheckpointSaver",
    "EncoderTransferReport",
    "EncoderWarmup",
    "LightReconstructionDecoder",
    "LoadPretrainingStudyd",
    "MAEPrepareBatch",
    "MAEReconstructor",
    "MaskedReconstructionLoss",
    "MaskedReconstructionMSE",
    "PretrainedEncoderLoader",
    "RandBlockMaskd",
    "block_grid_mask",
    "block_grid_shape",
    "encoder_checkpoint",
    "encoder_param_groups",
    "encoder_summary",
    "find_ct_files",
    "find_pet_ct_studies",
    "load_ct_only",
    "load_pretrained_encoder",
    "masked_block_count",
    "pretraining_datalist",
    "pretraining_item",
    "read_encoder_tensors",
    "reconstruction_output",
    "save_encoder_checkpoint",
]
