# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The shipped synthetic-trained weights in MONAI Label: ``scripts.inference.label_app_bundle`` installs a bundle
copy whose ``inference.json`` carries ``demo.json``, and MONAI Label's infer path returns a real lesion mask."""

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monailabel_infer_task import InferTaskAsInMonaiLabel, infer_request, returned_mask

from scripts.data.prepare import prepare_dataset
from scripts.demo_weights import SHIPPED_MODEL, demo_shape, demo_spacing
from scripts.errors import InputDataError
from scripts.inference.label_app_bundle import install, merged_inference_config
from scripts.synthetic import generate_cohort


def test_merged_config_is_the_overlay_over_inference_json(bundle_root):
    merged = merged_inference_config(bundle_root / "configs" / "demo.json")
    demo = json.loads((bundle_root / "configs" / "demo.json").read_text())
    base = json.loads((bundle_root / "configs" / "inference.json").read_text())
    assert merged["pixdim"] == demo["pixdim"] and merged["features"] == demo["features"]
    assert merged["inferer"]["roi_size"] == demo["inferer#roi_size"]
    assert merged["checkpoints"] == base["checkpoints"], "MONAI Label's models/model.pt, not the overlay's file"
    assert merged["network_def"] == base["network_def"], "references kept as written"


def test_weights_that_do_not_fit_are_refused_and_nothing_is_installed(bundle_root, tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.stem.conv.weight": torch.zeros(4, 2, 3, 3, 3)}, foreign)
    with pytest.raises(InputDataError, match="foreign.pt.*does not fit the network of demo.json"):
        install(tmp_path / "app" / "petct", bundle_root / "configs" / "demo.json", foreign)
    assert not (tmp_path / "app" / "petct").exists()
    assert not list((tmp_path / "app").glob(".*")), "no staging copy left behind"


def test_an_installed_copy_is_kept_unless_overwrite(bundle_root, tmp_path):
    dst = tmp_path / "petct"
    dst.mkdir()
    (dst / "mine.txt").write_text("keep")
    with pytest.raises(InputDataError, match="exists; pass --overwrite"):
        install(dst, bundle_root / "configs" / "demo.json", tmp_path / "unused.pt")
    assert (dst / "mine.txt").read_text() == "keep"


@pytest.mark.slow
def test_monai_label_returns_a_lesion_mask_with_the_shipped_weights(bundle_root, tmp_path):
    if not SHIPPED_MODEL.is_file():
        pytest.skip(f"{SHIPPED_MODEL} is not in this checkout")
    app = install(
        tmp_path / "app" / "model" / "petct_lesion_segmentation", bundle_root / "configs" / "demo.json", SHIPPED_MODEL
    )
    assert sorted(p.name for p in (app / "models").iterdir()) == ["model.pt"]
    spacing = demo_spacing()
    generate_cohort(tmp_path / "raw", 2, 11, "fdg", demo_shape(spacing), spacing, negative_share=0.0)
    dataset = prepare_dataset(tmp_path / "raw", tmp_path / "nnunet", n_folds=2, seed=0).folder
    ct = sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))[0]
    label = nib.load(dataset / "labelsTr" / ct.name.replace("_0000.nii.gz", ".nii.gz"))
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        task = InferTaskAsInMonaiLabel(app)
        data = task(infer_request(task, str(ct)))
    finally:
        os.chdir(previous)
    mask, affine = returned_mask(task, data)
    assert mask.shape == label.shape and np.allclose(affine, label.affine, atol=1e-4)
    truth = np.asarray(label.dataobj) > 0
    dice = 2 * np.count_nonzero(mask.astype(bool) & truth) / (np.count_nonzero(mask) + np.count_nonzero(truth))
    assert dice > 0.5, f"the shipped weights should find this study's lesions (Dice {dice:.3f})"


def test_installed_config_reads_alone(bundle_root, tmp_path):
    if not SHIPPED_MODEL.is_file():
        pytest.skip(f"{SHIPPED_MODEL} is not in this checkout")
    app = install(tmp_path / "petct", bundle_root / "configs" / "demo.json", SHIPPED_MODEL)
    parser = ConfigParser()
    parser.read_config(str(app / "configs" / "inference.json"))
    parser.config["bundle_root"] = str(app)
    assert parser.get_parsed_content("checkpoints") == [str(app / "models" / "model.pt")]


def test_interactive_option_still_switches_profiles_in_the_installed_app(bundle_root, tmp_path, monkeypatch):
    if not SHIPPED_MODEL.is_file():
        pytest.skip(f"{SHIPPED_MODEL} is not in this checkout")
    app = install(tmp_path / "petct", bundle_root / "configs" / "demo.json", SHIPPED_MODEL)
    monkeypatch.chdir(tmp_path)
    task = InferTaskAsInMonaiLabel(app)
    study = tmp_path / "study.nii.gz"  # choosing the profile reads no image
    study.touch()
    assert task.task_config["interactive"] is True, "demo.json's own settings (no flips, overlap 0.25) by default"
    for params, flips, overlap in (({}, [], 0.25), ({"interactive": False}, [0, 1, 2], 0.5)):
        data = task.data_for(infer_request(task, str(study), params=params))
        task.pre_transforms(data)
        inferer = task.inferer(data)
        assert (list(inferer.flip_axes), inferer.overlap) == (flips, overlap)
