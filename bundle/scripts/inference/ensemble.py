# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Fold ensembles: several trained copies of one network whose class probabilities are averaged.

``load_fold_ensemble`` builds one from a network definition and a list of checkpoint files, so a bundle
config can write::

    "network": {"_target_": "scripts.inference.ensemble.load_fold_ensemble", "network": "@network_def",
                "checkpoints": ["$@bundle_root + '/models/fold0/model.pt'", "..."]}

``scripts.inference.inferers.FlipTTASlidingWindowInferer`` calls a ``FoldEnsemble`` like any network: the ensemble
alone averages its members, the inferer averages flips.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from scripts.errors import InputDataError
from scripts.inference.checkpoints import DDP_PREFIX, read_state_dict
from torch import nn

__all__ = ["FoldEnsemble", "first_output", "load_fold_ensemble"]

MAX_KEYS_SHOWN = 3


def first_output(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The full-resolution prediction: ``output`` itself, or its first element for a list/tuple (deep supervision)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (list, tuple)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"the network must return a tensor or a list/tuple of tensors (deep supervision), got {type(output).__name__}."
    )


class FoldEnsemble(nn.Module):
    """Member networks (one per training fold) whose predictions are averaged.

    Args:
        members: the networks, all with the same input and output layout.
        softmax: ``forward`` averages softmax probabilities over the channel axis (``True``) or raw outputs.

    ``forward`` is the one place members are averaged; every inferer (ours, MONAI's, ``verify_net_in_out``)
    calls it like a single network.
    """

    def __init__(self, members: Sequence[nn.Module], softmax: bool = True) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("FoldEnsemble needs at least one member network.")
        self.members = nn.ModuleList(members)
        self.softmax = softmax

    @property
    def outputs_probabilities(self) -> bool:
        """Whether ``forward`` returns class probabilities already (so an inferer does not softmax again)."""
        return self.softmax

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mean over members of (the softmax of) each member's first output, in float32."""
        total: torch.Tensor | None = None
        for member in self.members:
            output = first_output(member(x, *args, **kwargs)).float()
            if self.softmax:
                output = torch.softmax(output, dim=1)
            total = output if total is None else total + output
        return total / len(self.members)


def load_fold_ensemble(
    network: nn.Module,
    checkpoints: str | os.PathLike | Sequence[str | os.PathLike],
    map_location: str | torch.device = "cpu",
    softmax: bool = True,
) -> FoldEnsemble:
    """One deep copy of ``network`` per checkpoint, loaded strictly and put in eval mode.

    Args:
        network: the network definition (left untouched; its device is the members' device).
        checkpoints: one checkpoint path or a list of them, each a flat state dict or a ``CheckpointSaver``
            file (``{"model": state_dict, ...}`` or ``{"network": state_dict, ...}``). A ``module.`` prefix
            (weights saved from DistributedDataParallel) is removed.
        map_location: where ``torch.load`` puts the tensors before they are copied into the member.
        softmax: passed to :class:`FoldEnsemble`.

    Raises:
        InputDataError: a checkpoint is missing or unreadable, its keys/shapes do not match ``network``, or it
            holds NaN/Inf weights; the message names the file and the keys.
    """
    paths = [checkpoints] if isinstance(checkpoints, (str, os.PathLike)) else list(checkpoints)
    if not paths:
        raise ValueError("checkpoints is empty: give at least one checkpoint file.")
    members = []
    for path in paths:
        state_dict = read_state_dict(path, map_location=map_location)
        member = copy.deepcopy(network)
        expected = member.state_dict()
        state_dict = _without_ddp_prefix(state_dict, expected)
        problems = _mismatches(state_dict, expected)
        if problems:
            raise InputDataError(path, f"checkpoint does not match the network: {problems}")
        broken = [key for key, value in state_dict.items() if value.is_floating_point() and not value.isfinite().all()]
        if broken:
            problem = f"{len(broken)} weight tensor(s) hold NaN/Inf {_preview(broken)}: its training diverged"
            raise InputDataError(path, problem)
        member.load_state_dict(state_dict, strict=True)
        members.append(member.eval())
    return FoldEnsemble(members, softmax=softmax).eval()


def _without_ddp_prefix(state_dict: dict[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    if state_dict.keys() != expected.keys() and all(key.startswith(DDP_PREFIX) for key in state_dict):
        return {key.removeprefix(DDP_PREFIX): value for key, value in state_dict.items()}
    return state_dict


def _mismatches(state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str:
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    wrong_shape = [
        f"{key!r} is {tuple(state_dict[key].shape)} in the checkpoint, {tuple(expected[key].shape)} in the network"
        for key in sorted(expected.keys() & state_dict.keys())
        if state_dict[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) {_preview(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) {_preview(unexpected)}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatch(es): " + "; ".join(wrong_shape[:MAX_KEYS_SHOWN]))
    return ", ".join(problems)


def _preview(keys: Any) -> str:
    keys = list(keys)
    shown = ", ".join(repr(key) for key in keys[:MAX_KEYS_SHOWN])
    return f"[{shown}{', ...' if len(keys) > MAX_KEYS_SHOWN else ''}]"
