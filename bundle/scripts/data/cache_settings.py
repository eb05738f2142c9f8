# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""What a preprocessed cache was built with: a plain-JSON description of the transforms, and how two differ.

The description walks each transform's attributes (MONAI and bundle transforms keep their parameters there:
``Spacingd.spacing_transform.pixdim``, ``CropBodyd.cropper.select_fn.threshold``, ...), so every parameter of
the deterministic chain is recorded, including ones that no config exposes (the body-crop margin, interpolation
modes). Classes are named without their module, so moving a module does not invalidate a cache.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_numpy

_SKIPPED_ATTRIBUTES = {"R"}  # random states: not a setting
_LARGEST_ARRAY = 64  # bigger arrays are described by shape only


def describe(obj: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """A JSON-ready description of ``obj``: numbers, strings and lists as they are, objects as their attributes.

    Attributes starting with ``_`` and random states are left out; functions are named by qualified name.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # NaN is not equal to itself, and not JSON
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return describe(obj.value, _seen)
    if isinstance(obj, np.generic):
        return describe(obj.item(), _seen)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        array = convert_to_numpy(obj)
        if array.size > _LARGEST_ARRAY:
            return f"array of shape {list(array.shape)}"
        return describe(array.tolist(), _seen)
    if isinstance(obj, (torch.dtype, np.dtype, type)):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [describe(item, _seen) for item in obj]
    if isinstance(obj, Mapping):
        return {str(key): describe(value, _seen) for key, value in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if id(obj) in _seen:
        return f"<{type(obj).__name__} (cycle)>"
    if hasattr(obj, "__dict__"):
        seen = _seen | {id(obj)}
        attributes = {
            key: describe(value, seen)
            for key, value in vars(obj).items()
            if not key.startswith("_") and key not in _SKIPPED_ATTRIBUTES
        }
        return {"type": type(obj).__name__, **attributes}
    if callable(obj):
        return getattr(obj, "__qualname__", type(obj).__name__)
    return type(obj).__name__


def digest(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``settings``."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(node: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        name = node.get("type")
        for key, value in node.items():
            if key != "type":
                _flatten(value, f"{path}.{key}" if path else key, out)
        if name is not None:
            out[f"{path}.type" if path else "type"] = name
    elif isinstance(node, list) and any(isinstance(item, (dict, list)) for item in node):
        for index, item in enumerate(node):
            label = f"{path}[{index}]"
            if isinstance(item, dict) and "type" in item:
                label += f" {item['type']}"
            _flatten(item, label, out)
        out[f"{path} (length)"] = len(node)
    else:
        out[path] = node


def differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``"<setting>: <stored> (stored) -> <wanted> (this run)"`` for every setting that differs."""
    flat_stored: dict[str, Any] = {}
    flat_wanted: dict[str, Any] = {}
    _flatten(dict(stored), "", flat_stored)
    _flatten(dict(wanted), "", flat_wanted)
    missing = object()
    lines = []
    for key in sorted(flat_stored.keys() | flat_wanted.keys()):
        before, after = flat_stored.get(key, missing), flat_wanted.get(key, missing)
        if before != after:
            shown_before = "absent" if before is missing else json.dumps(before)
            shown_after = "absent" if after is missing else json.dumps(after)
            lines.append(f"{key}: {shown_before} (stored) -> {shown_after} (this run)")
    return lines
