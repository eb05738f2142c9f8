# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The pieces of the shipped-weights command (``scripts.demo_weights``): grid, organ maps, held-out maps, export."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from scripts.data.volume_checks import world_bounds
from scripts.demo_weights import (
    DEMO_CONFIG,
    HELD_OUT_MAPS,
    demo_shape,
    demo_spacing,
    export_weights,
    resample_organ_maps,
    training_maps,
)
from scripts.training.deep_supervision import nnunet_weights


def test_nnunet_weights():
    assert nnunet_weights(1) == [1.0]
    assert nnunet_weights(3) == pytest.approx([2 / 3, 1 / 3, 0.0])
    with pytest.raises(ValueError, match="at least one"):
        nnunet_weights(0)


def test_demo_grid_comes_from_the_overlay():
    spacing = demo_spacing()
    assert list(spacing) == json.loads(DEMO_CONFIG.read_text())["pixdim"]
    assert np.allclose(np.asarray(demo_shape(spacing)) * spacing, (520.0, 520.0, 1000.0), atol=spacing[0])


def test_organ_maps_are_resampled_to_the_grid_keeping_extent_and_labels(tmp_path):
    labels = np.zeros((40, 30, 20), dtype=np.uint8)
    labels[10:30, 5:25, 4:16] = 3  # liver block
    labels[2:8, 2:8, 2:8] = 2
    affine = np.diag([-2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = [40.0, -30.0, -100.0]
    source = tmp_path / "maps" / "fdg_001.nii.gz"
    source.parent.mkdir()
    nib.save(nib.Nifti1Image(labels, affine), source)
    (out,) = resample_organ_maps([source], (5.0, 5.0, 5.0), tmp_path / "coarse")
    image = nib.load(out)
    assert image.shape == (16, 15, 12) and np.allclose(image.header.get_zooms(), 5.0)
    np.testing.assert_allclose(world_bounds(image.affine, image.shape), world_bounds(affine, labels.shape), atol=1e-6)
    coarse = np.asanyarray(image.dataobj)
    assert set(np.unique(coarse)) == {0, 2, 3}
    voxel_ml = 125 / 1000
    assert np.count_nonzero(coarse == 3) * voxel_ml == pytest.approx(np.count_nonzero(labels == 3) * 0.015, rel=0.2)


def test_training_maps_leave_the_held_out_maps_out(tmp_path):
    for name in ("fdg_000.nii.gz", HELD_OUT_MAPS[0], "psma_024.nii.gz", HELD_OUT_MAPS[-1], "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in training_maps(tmp_path)] == ["fdg_000.nii.gz", "psma_024.nii.gz"]
    assert training_maps(None) == []


def test_exported_float16_weights_load_into_the_demo_network(tmp_path):
    parser = ConfigParser()
    parser.read_config([str(DEMO_CONFIG.parent / "inference.json"), str(DEMO_CONFIG)])
    network = parser.get_parsed_content("network_def").eval()
    torch.save({"model": network.state_dict()}, tmp_path / "model.pt")
    size = export_weights(tmp_path / "model.pt", tmp_path / "small.pt")
    state = torch.load(tmp_path / "small.pt", weights_only=True)
    assert size == (tmp_path / "small.pt").stat().st_size < 5e6
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    copy = parser.get_parsed_content("network_def", instantiate=True, lazy=False).eval()
    copy.load_state_dict(state)
    x = torch.randn(1, 2, 64, 64, 64)
    with torch.no_grad():
        stored, exported = network(x).softmax(1), copy(x).softmax(1)
    # float16 weights (3 significant digits) move the lesion probability by well under one percent.
    assert (stored - exported).abs().max() < 1e-2
