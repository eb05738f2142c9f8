# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Sliding-window inference with nnU-Net-style flip test-time augmentation and fold ensembling.

Each window is predicted once per flip of the window (every subset of ``flip_axes``) by the network it is
given; each prediction is flipped back, turned into class probabilities and averaged. A fold ensemble is just
such a network: :class:`~scripts.inference.ensemble.FoldEnsemble` alone averages its members. MONAI's
``sliding_window_inference`` then blends these window probabilities into the whole volume, so the output
keeps the input's spatial shape and, for a ``MetaTensor``, its affine and meta data.

The algorithm lives in the pure function :func:`flip_tta_sliding_window_inference`;
:class:`FlipTTASlidingWindowInferer` only holds its configuration, so bundle configs and MONAI Label
(``inferer(inputs, network)``) can use it as they use ``monai.inferers.SlidingWindowInferer``.

Longer than 300 lines because over half of it is the argument checking that makes a bad config fail when it is
parsed, with a message saying what to change; the algorithm itself is two short functions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from monai.inferers import Inferer, sliding_window_inference
from scripts.errors import InputDataError
from scripts.inference.ensemble import FoldEnsemble, first_output
from torch import nn

__all__ = [
    "FlipTTASlidingWindowInferer",
    "check_finite_prediction",
    "flip_subsets",
    "flip_tta_sliding_window_inference",
    "predict_window",
    "stitch_device",
]

SPATIAL_DIMS = 3
BLEND_MODES = ("constant", "gaussian")
PADDING_MODES = ("constant", "reflect", "replicate", "circular")
AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def flip_subsets(flip_axes: Sequence[int] | None) -> list[tuple[int, ...]]:
    """Every subset of the spatial ``flip_axes``, the empty one (no flip) first: one TTA pass each.

    Args:
        flip_axes: spatial axes (0, 1, 2 = the three axes after the channel axis) to mirror; ``None`` or
            empty means no TTA.

    Returns:
        ``2 ** len(flip_axes)`` tuples of spatial axes, e.g. ``[(), (0,), (2,), (0, 2)]`` for ``[0, 2]``.

    Raises:
        ValueError: an axis is not 0, 1 or 2, or is listed twice.
    """
    axes = _checked_flip_axes(flip_axes)
    return [subset for count in range(len(axes) + 1) for subset in itertools.combinations(axes, count)]


def predict_window(
    window: torch.Tensor,
    network: Callable[..., Any] | Sequence[nn.Module],
    flips: Sequence[tuple[int, ...]],
    softmax: bool = True,
    amp: bool = False,
    amp_dtype: torch.dtype | str = torch.float16,
    network_args: Sequence[Any] = (),
    network_kwargs: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Mean over ``flips`` of ``softmax(flip(network(flip(window))))`` for one batch of windows.

    Args:
        window: windows of shape (N, C, D, H, W).
        network: the network to call. A list of networks is made a :class:`~scripts.inference.ensemble.FoldEnsemble`
            (which alone averages members); an ensemble that already outputs probabilities is not softmaxed
            again. A network returning a list/tuple (deep supervision left on) contributes its first element.
        flips: spatial-axis subsets to mirror, as returned by :func:`flip_subsets`; ``()`` is the plain pass.
        softmax: average softmax probabilities over the channel axis; ``False`` averages raw outputs.
        amp: run the network under ``torch.autocast`` when ``window`` is on CUDA (ignored on CPU).
        amp_dtype: autocast dtype, ``torch.float16``/``torch.bfloat16`` or their names.
        network_args: extra positional arguments for each network call.
        network_kwargs: extra keyword arguments for each network call.

    Returns:
        float32 tensor (N, K, D', H', W') with the averaged predictions, on ``window``'s device.

    Raises:
        ValueError: no network or no flip is given, or ``softmax`` is asked of a single-channel output.
    """
    if isinstance(network, Sequence):
        if not network:
            raise ValueError("predict_window needs a network (or a non-empty list of member networks).")
        network = FoldEnsemble(list(network), softmax=softmax)
    if not flips:
        raise ValueError("predict_window needs at least one flip (use [()] for no flip).")
    kwargs = dict(network_kwargs or {})
    apply_softmax = softmax and not getattr(network, "outputs_probabilities", False)
    autocast = (
        torch.autocast(device_type="cuda", dtype=_amp_dtype(amp_dtype))
        if amp and window.device.type == "cuda"
        else nullcontext()
    )
    total: torch.Tensor | None = None
    for flip in flips:
        dims = [axis + 2 for axis in flip]
        flipped = torch.flip(window, dims) if dims else window
        with autocast:
            output = first_output(network(flipped, *network_args, **kwargs))
        output = output.float()
        if dims:
            output = torch.flip(output, dims)
        if apply_softmax:
            if output.shape[1] < 2:
                raise ValueError(
                    f"softmax=True needs at least 2 output channels, the network gave {output.shape[1]}; "
                    "set softmax=False for a single-channel (sigmoid) network."
                )
            output = torch.softmax(output, dim=1)
        total = output if total is None else total + output
    return total / len(flips)


def flip_tta_sliding_window_inference(
    inputs: torch.Tensor,
    network: Callable[..., Any],
    *,
    roi_size: Sequence[int] | int,
    sw_batch_size: int = 1,
    overlap: Sequence[float] | float = 0.5,
    mode: str = "gaussian",
    sigma_scale: Sequence[float] | float = 0.125,
    padding_mode: str = "constant",
    cval: float = 0.0,
    flip_axes: Sequence[int] | None = (0, 1, 2),
    softmax: bool = True,
    amp: bool = False,
    amp_dtype: torch.dtype | str = torch.float16,
    sw_device: torch.device | str | None = None,
    device: torch.device | str | None = None,
    cpu_thresh: int | None = None,
    progress: bool = False,
    network_args: Sequence[Any] = (),
    network_kwargs: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Sliding-window inference whose window predictor averages flips (TTA) and fold members.

    The inferer flips and calls the ``network`` it is given; a :class:`~scripts.inference.ensemble.FoldEnsemble`
    averages its members itself, so member forward calls =
    ``ceil(windows / sw_batch_size) * 2 ** len(flip_axes) * members``. Runs under ``torch.no_grad()``.

    Args:
        inputs: volume batch (N, C, D, H, W), a ``torch.Tensor`` or MONAI ``MetaTensor``.
        network: a network, or a ``FoldEnsemble`` of networks, mapping windows to per-class outputs.
        roi_size: window size, one int or three (any window larger than the volume is padded).
        sw_batch_size: windows per network call.
        overlap: fraction of the window that neighbouring windows share, in [0, 1); 0.5 as nnU-Net.
        mode: window blending, ``"gaussian"`` (down-weights window borders) or ``"constant"``.
        sigma_scale: Gaussian sigma as a fraction of the window size.
        padding_mode: ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, for volumes
            smaller than the window.
        cval: fill value for ``padding_mode="constant"``.
        flip_axes: spatial axes to mirror; every subset is one pass, so ``(0, 1, 2)`` gives 8 passes;
            ``None`` or ``[]`` disables TTA.
        softmax: output averaged class probabilities; ``False`` averages raw network outputs.
        amp: autocast the network on CUDA (no effect on CPU).
        amp_dtype: autocast dtype, ``"float16"`` or ``"bfloat16"``.
        sw_device: device the windows and networks run on; default: the device of ``inputs``.
        device: device the volume is stitched on (``"cpu"`` saves GPU memory); default: that of ``inputs``.
        cpu_thresh: stitch on the CPU when ``device`` is unset and the volume has more voxels than this.
        progress: show a tqdm progress bar over the windows.
        network_args: extra positional arguments for each network call.
        network_kwargs: extra keyword arguments for each network call.

    Returns:
        Tensor (N, K, D, H, W) on the stitching device, of the same type as ``inputs`` (a ``MetaTensor``
        input gives a ``MetaTensor`` with the same affine and meta data).

    Raises:
        ValueError: ``inputs`` is not 5D or a parameter is out of range; the message says what to change.
        InputDataError: the prediction holds NaN or Inf (see :func:`check_finite_prediction`).
    """
    if inputs.ndim != SPATIAL_DIMS + 2:
        raise ValueError(
            f"inputs must be a batch of 3D volumes (N, C, D, H, W), got shape {tuple(inputs.shape)}; "
            "add the batch axis with inputs[None] or use a batching data loader."
        )
    _check_window_settings(roi_size, sw_batch_size, overlap, mode, padding_mode, cpu_thresh)
    flips = flip_subsets(flip_axes)
    _amp_dtype(amp_dtype)

    def window_predictor(window: torch.Tensor) -> torch.Tensor:
        return predict_window(
            window,
            network,
            flips,
            softmax=softmax,
            amp=amp,
            amp_dtype=amp_dtype,
            network_args=network_args,
            network_kwargs=network_kwargs,
        )

    with torch.no_grad():
        prediction = sliding_window_inference(
            inputs=inputs,
            roi_size=roi_size,
            sw_batch_size=sw_batch_size,
            predictor=window_predictor,
            overlap=overlap,
            mode=mode,
            sigma_scale=sigma_scale,
            padding_mode=padding_mode,
            cval=cval,
            sw_device=sw_device,
            device=stitch_device(inputs, device, cpu_thresh),
            progress=progress,
        )
    check_finite_prediction(prediction, inputs)
    return prediction


def check_finite_prediction(prediction: torch.Tensor, inputs: torch.Tensor) -> None:
    """Raise :class:`InputDataError` naming the study (``inputs``' ``filename_or_obj``) if ``prediction`` has NaN/Inf.

    A NaN prediction must never become a mask: ``argmax`` would turn it into an arbitrary (often empty) one that
    then scores as a plausible result.
    """
    finite = torch.isfinite(prediction).flatten(1).all(dim=1)
    if bool(finite.all()):
        return
    index = int(torch.nonzero(~finite)[0])  # the first study of the batch with a non-finite prediction
    names = getattr(inputs, "meta", {}).get("filename_or_obj", None)
    name = names[index] if isinstance(names, (list, tuple)) else names
    bad = int((~torch.isfinite(prediction[index])).sum())
    raise InputDataError(
        name or f"input {index} of the batch (no file name)",
        f"the network predicted NaN/Inf for {bad} of {prediction[index].numel()} output values; no mask is made "
        "from it. The model weights are probably broken (a diverged training): check the checkpoint.",
    )


def stitch_device(
    inputs: torch.Tensor, device: torch.device | str | None, cpu_thresh: int | None
) -> torch.device | str | None:
    """Where to stitch: ``device`` if set, else ``"cpu"`` above ``cpu_thresh`` voxels, else ``None`` (= input's)."""
    if device is None and cpu_thresh is not None and inputs.shape[2:].numel() > cpu_thresh:
        return "cpu"
    return device


class FlipTTASlidingWindowInferer(Inferer):
    """MONAI inferer: sliding window with per-window flip TTA and fold-ensemble averaging.

    Usable from a bundle config and by MONAI Label as is::

        "inferer": {"_target_": "scripts.inference.inferers.FlipTTASlidingWindowInferer",
                    "roi_size": "@roi_size", "flip_axes": [0, 1, 2], "device": "cpu"}

    See :func:`flip_tta_sliding_window_inference` for the meaning of every argument; parameters are
    checked here so a bad config fails when it is parsed, not on the first image.
    """

    def __init__(
        self,
        roi_size: Sequence[int] | int,
        sw_batch_size: int = 1,
        overlap: Sequence[float] | float = 0.5,
        mode: str = "gaussian",
        sigma_scale: Sequence[float] | float = 0.125,
        padding_mode: str = "constant",
        cval: float = 0.0,
        flip_axes: Sequence[int] | None = (0, 1, 2),
        softmax: bool = True,
        amp: bool = False,
        amp_dtype: torch.dtype | str = torch.float16,
        sw_device: torch.device | str | None = None,
        device: torch.device | str | None = None,
        cpu_thresh: int | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        _check_window_settings(roi_size, sw_batch_size, overlap, mode, padding_mode, cpu_thresh)
        self.roi_size = roi_size
        self.sw_batch_size = sw_batch_size
        self.overlap = overlap
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.padding_mode = padding_mode
        self.cval = cval
        self.flip_axes = _checked_flip_axes(flip_axes)
        self.softmax = softmax
        self.amp = amp
        self.amp_dtype = _amp_dtype(amp_dtype)
        self.sw_device = sw_device
        self.device = device
        self.cpu_thresh = cpu_thresh
        self.progress = progress

    @property
    def passes_per_window(self) -> int:
        """Network calls per window and per member: ``2 ** len(flip_axes)``."""
        return 2 ** len(self.flip_axes)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., Any] | nn.Module, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """Segment ``inputs`` (N, C, D, H, W) with ``network``; ``args``/``kwargs`` go to every network call."""
        return flip_tta_sliding_window_inference(
            inputs,
            network,
            roi_size=self.roi_size,
            sw_batch_size=self.sw_batch_size,
            overlap=self.overlap,
            mode=self.mode,
            sigma_scale=self.sigma_scale,
            padding_mode=self.padding_mode,
            cval=self.cval,
            flip_axes=self.flip_axes,
            softmax=self.softmax,
            amp=self.amp,
            amp_dtype=self.amp_dtype,
            sw_device=self.sw_device,
            device=self.device,
            cpu_thresh=self.cpu_thresh,
            progress=self.progress,
            network_args=args,
            network_kwargs=kwargs,
        )


def _checked_flip_axes(flip_axes: Sequence[int] | None) -> tuple[int, ...]:
    if flip_axes is None:
        return ()
    if isinstance(flip_axes, (int, str)):
        raise ValueError(f"flip_axes must be a list of spatial axes such as [0, 1, 2], got {flip_axes!r}.")
    axes = tuple(flip_axes)
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis < SPATIAL_DIMS:
            raise ValueError(
                f"flip_axes may only hold the spatial axes 0, 1 and 2 (the axes after the channel axis), "
                f"got {axis!r} in {list(axes)}."
            )
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip_axes lists an axis twice: {list(axes)}; list each axis once, e.g. [0, 1, 2].")
    return axes


def _check_window_settings(
    roi_size: Sequence[int] | int,
    sw_batch_size: int,
    overlap: Sequence[float] | float,
    mode: str,
    padding_mode: str,
    cpu_thresh: int | None,
) -> None:
    roi = [roi_size] if isinstance(roi_size, int) else list(roi_size)
    if not isinstance(roi_size, int) and len(roi) != SPATIAL_DIMS:
        raise ValueError(f"roi_size needs one size per spatial axis (3 values) or a single int, got {roi_size!r}.")
    if any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in roi):
        raise ValueError(f"roi_size must hold positive integers, got {roi_size!r}.")
    if isinstance(sw_batch_size, bool) or not isinstance(sw_batch_size, int) or sw_batch_size < 1:
        raise ValueError(f"sw_batch_size must be a positive integer, got {sw_batch_size!r}.")
    overlaps = [overlap] if isinstance(overlap, (int, float)) else list(overlap)
    if not isinstance(overlap, (int, float)) and len(overlaps) != SPATIAL_DIMS:
        raise ValueError(f"overlap needs one value per spatial axis (3 values) or a single float, got {overlap!r}.")
    if any(not 0 <= value < 1 for value in overlaps):
        raise ValueError(f"overlap must be >= 0 and < 1 (0.5 = half a window, as nnU-Net), got {overlap!r}.")
    if str(mode) not in BLEND_MODES:
        raise ValueError(f"mode must be one of {BLEND_MODES}, got {mode!r}.")
    if str(padding_mode) not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}.")
    if cpu_thresh is not None and (isinstance(cpu_thresh, bool) or not isinstance(cpu_thresh, int) or cpu_thresh < 0):
        raise ValueError(f"cpu_thresh must be a voxel count >= 0 or None, got {cpu_thresh!r}.")


def _amp_dtype(amp_dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(amp_dtype, torch.dtype) and amp_dtype in AMP_DTYPES.values():
        return amp_dtype
    name = str(amp_dtype).removeprefix("torch.")
    if name not in AMP_DTYPES:
        raise ValueError(f"amp_dtype must be one of {sorted(AMP_DTYPES)}, got {amp_dtype!r}.")
    return AMP_DTYPES[name]
