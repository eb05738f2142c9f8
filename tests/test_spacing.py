"""MetaSafeSpacingd: Spacingd's resampling, without touching items that merely share the image key's prefix."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Spacingd

from scripts.transforms import MetaSafeSpacingd


def _item():
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    image = MetaTensor(torch.arange(2 * 8 * 8 * 6, dtype=torch.float32).reshape(2, 8, 8, 6), affine=affine)
    image.meta["filename_or_obj"] = "/data/case_0000.nii.gz"
    return {"image": image, "image_path": "/data/case_0000.nii.gz", "image_meta_dict": {"kept": 1}, "image_n": 3}


def test_plain_spacingd_fails_on_a_string_under_image_path():
    with pytest.raises(AttributeError, match="update"):
        Spacingd(keys="image", pixdim=(4.0, 4.0, 6.0))(_item())


def test_items_sharing_the_prefix_come_back_untouched_and_the_image_as_spacingd_makes_it():
    out = MetaSafeSpacingd(keys="image", pixdim=(4.0, 4.0, 6.0))(_item())
    assert out["image_path"] == "/data/case_0000.nii.gz" and out["image_n"] == 3
    assert out["image_meta_dict"]["kept"] == 1 and out["image_meta_dict"]["filename_or_obj"].endswith("0000.nii.gz")
    reference = Spacingd(keys="image", pixdim=(4.0, 4.0, 6.0))({"image": _item()["image"]})["image"]
    assert tuple(out["image"].shape) == tuple(reference.shape) == (2, 4, 4, 4)
    np.testing.assert_array_equal(out["image"].numpy(), reference.numpy())
    np.testing.assert_allclose(out["image"].affine.numpy(), reference.affine.numpy())


def test_inverse_restores_the_input_grid():
    transform = MetaSafeSpacingd(keys="image", pixdim=(4.0, 4.0, 6.0))
    out = transform(_item())
    restored = transform.inverse({"image": out["image"]})["image"]
    assert tuple(restored.shape) == (2, 8, 8, 6)
    np.testing.assert_allclose(restored.affine.numpy(), _item()["image"].affine.numpy())
