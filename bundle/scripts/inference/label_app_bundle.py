# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Install this bundle into a MONAI Label app with an overlay merged into ``inference.json`` and its weights.

MONAI Label reads one file, ``configs/inference.json``, and one checkpoint, ``models/model.pt``. To serve a model
trained with an overlay (the shipped synthetic-trained weights use ``configs/demo.json``: its grid, windows and
network), the copy's ``inference.json`` becomes the merge of the two (references and expressions kept, so it
reads like the original) and the weights become ``models/model.pt``:

    cd bundle && python -m scripts.inference.label_app_bundle --dst ~/apps/monaibundle/model/petct_lesion_segmentation

(defaults: ``--overlay configs/demo.json --weights models/demo_synthetic.pt``). The installed ``inference.json``
also works on the command line. The copy is built beside ``--dst`` and renamed into place; an existing ``--dst``
is kept unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from scripts.errors import InputDataError, say
from scripts.inference.checkpoints import read_state_dict

BUNDLE_ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = ("models", "__pycache__", "eval", "runs", "preprocessed")
# inference.json settings that its `profiles` choose (MONAI Label's `interactive` option).
PROFILE_KEYS = ("tta_axes", "sw_overlap")


def merged_inference_config(overlay: Path, bundle: Path = BUNDLE_ROOT) -> dict:
    """``inference.json`` with ``overlay`` applied as ``monai.bundle run`` applies it, checkpoints at the default.

    The default is what MONAI Label loads: the installed ``models/model.pt``. Profile settings the overlay fixes
    (:data:`PROFILE_KEYS`) become the interactive profile, on by default, so that the option still switches.
    """
    base = json.loads((bundle / "configs" / "inference.json").read_text())
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "inference.json"), str(overlay)])
    merged = parser.get()
    merged["checkpoints"] = base["checkpoints"]
    overlaid = [key for key in PROFILE_KEYS if merged[key] != base[key]]
    for key in overlaid:
        merged["profiles"]["interactive"][key] = merged[key]
        merged[key] = base[key]
    if overlaid:
        merged["displayable_configs"]["interactive"] = True
    merged["_comment_"] = f"{base['_comment_']} Installed with {Path(overlay).name} merged in."
    return merged


def install(dst: Path, overlay: Path, weights: Path, overwrite: bool = False, bundle: Path = BUNDLE_ROOT) -> Path:
    """Write the app's bundle copy to ``dst``; returns ``dst``. The weights are checked to load into its network."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise InputDataError(dst, "exists; pass --overwrite to replace it")
    config = merged_inference_config(overlay, bundle)
    state = read_state_dict(weights)
    staging = dst.with_name(f".{dst.name}.installing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle, staging, ignore=shutil.ignore_patterns(*LEFT_OUT))
    (staging / "configs" / "inference.json").write_text(json.dumps(config, indent=4) + "\n")
    parser = ConfigParser()
    parser.read_config(str(staging / "configs" / "inference.json"))
    network = parser.get_parsed_content("network_def")
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        shutil.rmtree(staging)
        raise InputDataError(weights, f"does not fit the network of {Path(overlay).name}: {error}") from None
    (staging / "models").mkdir()
    # float32 on disk: MONAI Label loads the file itself, into a float32 network.
    torch.save(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, staging / "models" / "model.pt"
    )
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(dst)
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dst", type=Path, required=True, help="the app's model/<name> folder to write")
    parser.add_argument("--overlay", type=Path, default=BUNDLE_ROOT / "configs" / "demo.json")
    parser.add_argument("--weights", type=Path, default=BUNDLE_ROOT / "models" / "demo_synthetic.pt")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --dst")
    args = parser.parse_args(argv)
    try:
        dst = install(args.dst, args.overlay, args.weights, args.overwrite)
    except InputDataError as error:
        say(f"error: {error}")
        return 1
    say(f"installed {dst} (inference.json with {args.overlay.name} merged in, models/model.pt = {args.weights.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
