# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""JSON-native network options: per-stage broadcasting, norm/activation specs, xLSTM placement."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from monai.networks.layers.utils import get_act_layer, get_norm_layer, split_args
from torch import nn

# A MONAI layer spec as JSON gives it: a name, or [name, {keyword arguments}]; None means "no normalisation".
NormSpec = str | Sequence[Any] | None
ActSpec = str | Sequence[Any]


class XLSTMPlacement(str, enum.Enum):
    """Where the encoder runs its bidirectional xLSTM layers (the ``xlstm`` keyword of the network).

    A ``str`` enum that prints as its value, as ``enum.StrEnum`` would (that class needs Python 3.11).
    """

    BOT = "bot"  # once, on the bottleneck (the deepest stage's output)
    ENC = "enc"  # after every stage of the deeper half of the encoder (stages >= num_stages // 2)
    NONE = "none"  # nowhere: the plain residual UNet, for ablations

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str) -> XLSTMPlacement:
        """Reads a placement keyword, with an error that lists the valid ones."""
        try:
            return cls(str(value).lower())
        except ValueError:
            valid = ", ".join(repr(member.value) for member in cls)
            raise ValueError(f"xlstm={value!r} is not a placement; use one of {valid}") from None

    def stages(self, num_stages: int) -> tuple[int, ...]:
        """Returns the indices of the encoder stages followed by an xLSTM layer."""
        if self is XLSTMPlacement.BOT:
            return (num_stages - 1,)
        if self is XLSTMPlacement.ENC:
            return tuple(range(num_stages // 2, num_stages))
        return ()


def per_stage(value: Any, num_stages: int, name: str) -> list[Any]:
    """Broadcasts a scalar to one value per stage, or checks that a list has one value per stage.

    Args:
        value: a scalar, or a list/tuple with one entry per stage.
        num_stages: how many stages the network (or decoder) has.
        name: the keyword the value came from, named in the error.

    Raises:
        ValueError: a list of the wrong length.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != num_stages:
            raise ValueError(f"{name} has {len(value)} entries but needs {num_stages} (one per stage), or one scalar")
        return list(value)
    return [value] * num_stages


def positive_int(value: Any, name: str) -> int:
    """Returns ``value`` as an int, or raises a ValueError naming ``name`` if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def spatial_triple(value: Any, name: str) -> tuple[int, int, int]:
    """Reads an int (isotropic) or a 3-list of positive ints, e.g. a stride ``2`` or ``[1, 2, 2]``."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * 3
    if len(items) != 3:
        raise ValueError(f"{name} must be an int or a list of 3 ints (D, H, W), got {value!r}")
    return tuple(positive_int(item, name) for item in items)  # type: ignore[return-value]


def make_norm(norm: NormSpec, channels: int) -> nn.Module:
    """Builds a 3D normalisation layer from a MONAI spec such as ``["instance", {"affine": true}]``."""
    if norm is None:
        return nn.Identity()
    try:
        return get_norm_layer(name=_as_spec(norm), spatial_dims=3, channels=channels)
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"norm={norm!r} is not a valid MONAI norm spec: {error}") from None


def make_act(act: ActSpec) -> nn.Module:
    """Builds an activation from a MONAI spec such as ``["leakyrelu", {"negative_slope": 0.01}]``."""
    try:
        return get_act_layer(name=_as_spec(act))
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"act={act!r} is not a valid MONAI activation spec: {error}") from None


def negative_slope(act: ActSpec) -> float:
    """The negative slope that He initialisation should assume for ``act`` (0 unless it is a LeakyReLU)."""
    name, kwargs = split_args(_as_spec(act))
    if str(name).lower() == "leakyrelu":
        return float(kwargs.get("negative_slope", 0.01))
    return 0.0


def _as_spec(spec: str | Sequence[Any]) -> str | tuple[Any, ...]:
    """JSON has no tuples: turn ``[name, {args}]`` into the ``(name, {args})`` MONAI expects."""
    return spec if isinstance(spec, str) else tuple(spec)
