# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""``prepare_batch`` for MONAI's ``SupervisedTrainer``/``SupervisedEvaluator`` in MAE pretraining."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines.utils import PrepareBatch
from scripts.mae.keys import MASK_KEY, TARGET_KEY, VALID_KEY


class MAEPrepareBatch(PrepareBatch):
    """Turns a collated MAE batch into ``(masked_image, {"target", "mask", "channel_valid"})`` on the device.

    ``SupervisedTrainer`` then runs ``network(masked_image)`` and calls
    ``loss_function(pred, {"target": ..., "mask": ..., "channel_valid": ...})``, the form
    :class:`~scripts.mae.MaskedReconstructionLoss` accepts. The dictionary keys are fixed; the data keys they
    are read from are the arguments. A batch without ``valid_key`` counts every channel as valid.

    Args:
        image_key: data key of the masked input.
        target_key: data key of the clean image.
        mask_key: data key of the per-channel mask (1 = hidden).
        valid_key: data key of the per-channel validity flags.
    """

    def __init__(
        self,
        image_key: str = "image",
        target_key: str = TARGET_KEY,
        mask_key: str = MASK_KEY,
        valid_key: str = VALID_KEY,
    ) -> None:
        self.image_key, self.target_key, self.mask_key, self.valid_key = image_key, target_key, mask_key, valid_key

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns the masked image and the target dictionary, every tensor moved with ``Tensor.to``."""
        missing = [key for key in (self.image_key, self.target_key, self.mask_key) if key not in batchdata]
        if missing:
            raise KeyError(
                f"the batch lacks {missing} (is RandBlockMaskd in the transforms?); it has {sorted(batchdata)}"
            )

        def move(tensor: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(tensor).to(device=device, non_blocking=non_blocking, **kwargs)

        def move_plain(tensor: torch.Tensor) -> torch.Tensor:  # plain tensors: MetaTensor ops are slow in the loss
            return move(tensor.as_tensor() if isinstance(tensor, MetaTensor) else tensor)

        image = move(batchdata[self.image_key])
        valid = batchdata.get(self.valid_key)
        if valid is None:
            valid = torch.ones(image.shape[:2], dtype=torch.float32)
        label = {
            TARGET_KEY: move_plain(batchdata[self.target_key]),
            MASK_KEY: move_plain(batchdata[self.mask_key]),
            VALID_KEY: move_plain(valid),
        }
        return image, label
