# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Names shared by the MAE pieces: data keys, the reconstruction-target dictionary, DDP unwrapping."""

from __future__ import annotations

from scripts.data.pet_ct_files import PET_KEY  # noqa: F401 (the datalist key, re-exported for mae)
from torch import nn

# Data key (and key of the loss's target dictionary) of the clean, unmasked image.
TARGET_KEY = "target"
# Data key of the per-channel mask [C, X, Y, Z]: 1 where a voxel is hidden from the network and scored.
MASK_KEY = "mask"
# Data key of the per-channel validity flags [C]: 1 for a modality the study has, 0 for a missing one.
VALID_KEY = "channel_valid"


def unwrap_parallel(module: nn.Module) -> nn.Module:
    """The network inside ``DistributedDataParallel`` / ``DataParallel`` wrappers (``module`` itself otherwise)."""
    while isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        module = module.module
    return module
