# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""PET/CT preprocessing transforms: input forms, PET resampling, bad input, normalisation, body crop, inverse."""

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import (
    AsDiscreted,
    Compose,
    EnsureChannelFirstd,
    Invertd,
    LoadImaged,
    SaveImaged,
)

from scripts.atomic_io import save_nifti
from scripts.data.grids import same_grid
from scripts.errors import InputDataError
from scripts.transforms import (
    PET_FILENAME_KEY,
    ClipNormalized,
    CropBodyd,
    LoadPetCt,
    LoadPetCtd,
    find_pet_partner,
    pet_partner_candidates,
    petct_preprocessing,
)

# CT like a real autoPET file: LAS orientation, 3 x 3 x 4 mm.
CT_SHAPE = (40, 36, 30)
CT_AFFINE = np.array([[-3.0, 0, 0, 60.0], [0, 3.0, 0, -50.0], [0, 0, 4.0, -60.0], [0, 0, 0, 1]])
# PET on a coarser grid, shifted by a fraction of a voxel, covering the whole CT.
PET_SHAPE = (22, 20, 14)
PET_AFFINE = np.array([[-6.0, 0, 0, 64.5], [0, 6.0, 0, -53.5], [0, 0, 10.0, -63.0], [0, 0, 0, 1]])
BODY_HU, AIR_HU = 40.0, -1000.0
PIXDIM = [2.036, 2.036, 3.0]
KEYS = ["image", "label"]


def world_coordinates(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """World position (mm) of every voxel centre, shape [*shape, 3]."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return index @ affine[:3, :3].T + affine[:3, 3]


def pet_ramp(world: np.ndarray) -> np.ndarray:
    """A linear SUV ramp in world coordinates: trilinear interpolation reproduces it exactly."""
    return 5.0 + 0.05 * world[..., 0] - 0.03 * world[..., 1] + 0.02 * world[..., 2]


def synthetic_ct() -> np.ndarray:
    """An elliptic-cylinder 'body' at 40 HU in -1000 HU air; the first 3 and last 2 slices are air only."""
    i, j, _ = np.meshgrid(*[np.arange(n) for n in CT_SHAPE], indexing="ij")
    ct = np.where(((i - 20) / 12) ** 2 + ((j - 17) / 10) ** 2 < 1, BODY_HU, AIR_HU)
    ct[:, :, :3] = AIR_HU
    ct[:, :, -2:] = AIR_HU
    return ct.astype(np.int16)


def synthetic_label() -> np.ndarray:
    """An off-grid ellipsoidal lesion inside the body."""
    world = world_coordinates(CT_AFFINE, CT_SHAPE)
    centre = np.array([-5.3, 2.2, -1.7])
    radii = np.array([10.0, 9.0, 12.0])
    return (((world - centre) / radii) ** 2).sum(-1) < 1


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """One synthetic study written in every accepted layout, plus its label."""
    root = tmp_path_factory.mktemp("study")
    ct = synthetic_ct()
    pet = pet_ramp(world_coordinates(PET_AFFINE, PET_SHAPE)).astype(np.float32)
    pet_same_grid = pet_ramp(world_coordinates(CT_AFFINE, CT_SHAPE)).astype(np.float32)
    paths = {
        "ct": save_nifti(ct, CT_AFFINE, root / "nnunet" / "case_0000.nii.gz"),
        "pet": save_nifti(pet, PET_AFFINE, root / "nnunet" / "case_0001.nii.gz"),
        "label": save_nifti(synthetic_label().astype(np.uint8), CT_AFFINE, root / "case.nii.gz"),
        "autopet_ct": save_nifti(ct, CT_AFFINE, root / "autopet" / "PETCT_1" / "study" / "CTres.nii.gz"),
        "autopet_pet": save_nifti(pet_same_grid, CT_AFFINE, root / "autopet" / "PETCT_1" / "study" / "SUV.nii.gz"),
        "two_channel": save_nifti(np.stack([ct, pet_same_grid], axis=-1), CT_AFFINE, root / "two_channel.nii.gz"),
        "two_channel_5d": save_nifti(
            np.stack([ct, pet_same_grid], axis=-1)[:, :, :, None, :], CT_AFFINE, root / "two_channel_5d.nii"
        ),
    }
    return paths


@pytest.fixture(scope="module")
def make_file(tmp_path_factory):
    """Write one NIfTI file with given data and affine into a fresh folder; returns its path."""
    root = tmp_path_factory.mktemp("bad")
    counter = iter(range(10_000))

    def write(data: np.ndarray, affine: np.ndarray = CT_AFFINE, name: str = "volume.nii.gz") -> Path:
        return save_nifti(np.asarray(data), affine, root / str(next(counter)) / name)

    return write


def preprocessing() -> Compose:
    """The composition every bundle config uses."""
    return Compose(petct_preprocessing(pixdim=PIXDIM))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


# ---------------------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("ct_name", "pet_names"),
    [
        ("case_0000.nii.gz", ["case_0001.nii.gz", "case_0001.nii"]),  # nnU-Net
        ("fdg_a_b_0000.nii", ["fdg_a_b_0001.nii", "fdg_a_b_0001.nii.gz"]),  # nnU-Net, uncompressed
        ("CTres.nii.gz", ["SUV.nii.gz", "SUV.nii"]),  # autoPET release
        ("ct.nii.gz", ["pet/ct.nii.gz", "pet/ct.nii"]),  # MONAI Label studies folder
        ("case_0001.nii.gz", []),  # the PET itself is not a CT name
        ("SUV.nii.gz", []),
    ],
)
def test_pet_partner_candidates(ct_name, pet_names):
    assert pet_partner_candidates(Path("/data") / ct_name) == [Path("/data") / n for n in pet_names]


def test_find_pet_partner_errors_name_the_ct_file(tmp_path):
    ct = tmp_path / "case_0000.nii.gz"
    with pytest.raises(InputDataError, match="case_0001.nii.gz does not exist") as missing:
        find_pet_partner(ct)
    assert missing.value.path == str(ct)
    with pytest.raises(InputDataError, match="pet/scan.nii.gz does not exist") as unknown:
        find_pet_partner(tmp_path / "scan.nii.gz")
    assert unknown.value.path == str(tmp_path / "scan.nii.gz")
    with pytest.raises(InputDataError, match="this is a PET file"):
        find_pet_partner(tmp_path / "case_0001.nii.gz")
    (tmp_path / "case_0001.nii").write_bytes(b"")
    assert find_pet_partner(ct) == tmp_path / "case_0001.nii"


# ----------------------------------------------------------------------------------------- input forms


def assert_is_ct_image(image: MetaTensor, ct_path: Path, pet_path: Path) -> None:
    """Shape, CT channel, and the meta that LoadImaged + EnsureChannelFirstd give the CT file."""
    reference = Compose([LoadImaged(keys="image"), EnsureChannelFirstd(keys="image")])({"image": str(ct_path)})["image"]
    assert isinstance(image, MetaTensor) and image.dtype == torch.float32
    assert tuple(image.shape) == (2, *CT_SHAPE)
    np.testing.assert_array_equal(image[0].numpy(), synthetic_ct())
    np.testing.assert_allclose(image.affine.numpy(), CT_AFFINE)
    np.testing.assert_allclose(image.affine.numpy(), reference.affine.numpy())
    np.testing.assert_allclose(image.meta["original_affine"], reference.meta["original_affine"])
    np.testing.assert_array_equal(image.meta["spatial_shape"], reference.meta["spatial_shape"])
    assert image.meta["filename_or_obj"] == str(ct_path)
    assert image.meta[PET_FILENAME_KEY] == str(pet_path)
    # Already channel-first: a stray EnsureChannelFirstd leaves it alone.
    assert EnsureChannelFirstd(keys="image")({"image": image})["image"].shape == image.shape


@pytest.mark.parametrize(
    ("entry", "ct", "pet"),
    [
        (["ct", "pet"], "ct", "pet"),  # (a) [ct, pet] list
        (("autopet_ct", "autopet_pet"), "autopet_ct", "autopet_pet"),  # (a) tuple, same grid
        ("two_channel", "two_channel", "two_channel"),  # (b) 4D file with 2 volumes
        ("two_channel_5d", "two_channel_5d", "two_channel_5d"),  # (b) 5D (X, Y, Z, 1, 2) file
        ("ct", "ct", "pet"),  # (c) nnU-Net partner
        ("autopet_ct", "autopet_ct", "autopet_pet"),  # (c) autoPET partner
    ],
)
def test_every_input_form_loads_the_same_study(study, entry, ct, pet):
    entry = [str(study[e]) for e in entry] if isinstance(entry, (list, tuple)) else str(study[entry])
    image = LoadPetCt()(entry)
    assert_is_ct_image(image, study[ct], study[pet])
    expected_pet = pet_ramp(world_coordinates(CT_AFFINE, CT_SHAPE))
    np.testing.assert_allclose(image[1].numpy(), expected_pet, atol=1e-3)


def test_pet_on_another_grid_is_resampled_trilinearly(make_file):
    # PET grid: coarser, oblique-free but offset so only part of the CT is covered along x.
    pet_affine = np.array([[-6.0, 0, 0, 40.0], [0, 6.0, 0, -55.0], [0, 0, 10.0, -64.0], [0, 0, 0, 1]])
    pet_shape = (14, 20, 14)
    pet_path = make_file(pet_ramp(world_coordinates(pet_affine, pet_shape)), pet_affine, "pet.nii.gz")
    ct_path = make_file(synthetic_ct(), CT_AFFINE, "ct.nii.gz")
    pet_on_ct = LoadPetCt()([ct_path, pet_path])[1].numpy()
    # Where each CT voxel centre falls in PET voxel coordinates.
    world = world_coordinates(CT_AFFINE, CT_SHAPE)
    pet_index = (world - pet_affine[:3, 3]) @ np.linalg.inv(pet_affine[:3, :3]).T
    between_centres = np.all((pet_index >= 0) & (pet_index <= np.array(pet_shape) - 1), axis=-1)
    outside = ~np.all((pet_index >= -0.5) & (pet_index <= np.array(pet_shape) - 0.5), axis=-1)
    assert between_centres.sum() > 0.5 * between_centres.size and outside.sum() > 1000
    np.testing.assert_allclose(pet_on_ct[between_centres], pet_ramp(world)[between_centres], atol=1e-4)
    assert np.all(pet_on_ct[outside] == 0.0)


def test_pet_within_grid_tolerance_is_not_resampled(make_file):
    pet = np.random.default_rng(0).uniform(0, 10, CT_SHAPE).astype(np.float32)
    nudged = CT_AFFINE.copy()
    nudged[:3, 3] += 1e-3  # float32-header-sized difference, far below 1% of a voxel
    ct_path = make_file(synthetic_ct(), CT_AFFINE, "ct.nii.gz")
    image = LoadPetCt()([ct_path, make_file(pet, nudged, "pet.nii.gz")])
    np.testing.assert_array_equal(image[1].numpy(), pet)
    assert same_grid(CT_AFFINE, CT_SHAPE, nudged, CT_SHAPE, tolerance=0.01)
    assert not same_grid(CT_AFFINE, CT_SHAPE, nudged, CT_SHAPE, tolerance=1e-5)
    assert not same_grid(CT_AFFINE, CT_SHAPE, CT_AFFINE, (40, 36, 31), tolerance=0.01)


def test_label_is_loaded_channel_first_on_the_exact_ct_affine(study, make_file):
    nudged = CT_AFFINE.copy()
    nudged[:3, 3] += 1e-3
    label_path = make_file(synthetic_label().astype(np.uint8), nudged, "label.nii.gz")
    d = LoadPetCtd()({"image": str(study["ct"]), "label": str(label_path), "case": "x"})
    assert tuple(d["label"].shape) == (1, *CT_SHAPE) and d["label"].dtype == torch.float32
    np.testing.assert_array_equal(d["label"][0].numpy(), synthetic_label())
    assert torch.equal(d["label"].affine, d["image"].affine)
    assert d["label"].meta["filename_or_obj"] == str(label_path) and d["case"] == "x"
    # No label at inference: nothing added, nothing raised.
    assert "label" not in LoadPetCtd()({"image": str(study["ct"])})
    assert LoadPetCtd()({"image": str(study["ct"]), "label": None})["label"] is None


# --------------------------------------------------------------------------------------------- bad input


def test_bad_study_entries_raise_input_data_error(study, make_file, tmp_path):
    ct = str(study["ct"])
    unreadable = tmp_path / "broken_0000.nii.gz"
    unreadable.write_bytes(b"not a nifti file")
    three_volumes = make_file(np.zeros((*CT_SHAPE, 3), np.float32))
    cases = [
        (tmp_path / "absent_0000.nii.gz", tmp_path / "absent_0000.nii.gz", "file not found"),
        (unreadable, unreadable, "cannot be read as a NIfTI image"),
        ([ct, ct, ct], f"{ct}, {ct}, {ct}", r"expected \[ct, pet\] \(2 files\), got 3"),
        (three_volumes, three_volumes, "4D file with 3 volumes"),
        ([str(study["two_channel"]), ct], study["two_channel"], "expected a 3D volume"),
    ]
    for entry, path, message in cases:
        with pytest.raises(InputDataError, match=message) as error:
            LoadPetCt()(entry if isinstance(entry, list) else str(entry))
        assert error.value.path == str(path)


@pytest.mark.parametrize(
    ("which", "data", "message"),
    [
        ("ct", np.zeros((40, 36, 1), np.float32), "a 2D volume"),
        ("ct", np.zeros((40, 36), np.float32), "expected a 3D volume"),
        ("ct", np.where(np.arange(40 * 36 * 30).reshape(CT_SHAPE) == 7, np.nan, 0).astype(np.float32), "non-finite"),
        ("pet", np.full(CT_SHAPE, np.inf, np.float32), "non-finite"),
        ("pet", np.zeros((5, 5, 1), np.float32), "a 2D volume"),
    ],
)
def test_unusable_ct_or_pet_names_the_file(make_file, which, data, message):
    files = {"ct": make_file(synthetic_ct()), "pet": make_file(np.ones(CT_SHAPE, np.float32))}
    files[which] = make_file(data)
    with pytest.raises(InputDataError, match=message) as error:
        LoadPetCt()([files["ct"], files["pet"]])
    assert error.value.path == str(files[which])


def test_non_finite_pet_in_a_two_channel_file_names_file_and_channel(make_file):
    data = np.stack([synthetic_ct().astype(np.float32), np.full(CT_SHAPE, np.nan, np.float32)], axis=-1)
    path = make_file(data)
    with pytest.raises(InputDataError, match=r"PET volume \(channel 1\): .*non-finite") as error:
        LoadPetCt()(str(path))
    assert error.value.path == str(path)


def test_a_2d_single_file_is_reported_before_its_partner_is_searched(make_file):
    path = make_file(np.zeros((40, 36, 1), np.float32), name="slice.nii.gz")
    with pytest.raises(InputDataError, match="a 2D volume"):
        LoadPetCt()(str(path))


def test_singular_affine_is_rejected(tmp_path, make_file):
    # A header whose sform and pixdim agree on a zero slice thickness (MONAI only rectifies disagreeing ones).
    singular = CT_AFFINE.copy()
    singular[2, 2] = 0.0
    header = nib.Nifti1Header()
    header.set_data_shape(CT_SHAPE)
    header.set_data_dtype(np.int16)
    header.set_sform(singular, code=1)
    header.set_zooms((3.0, 3.0, 0.0))
    ct = tmp_path / "flat_0000.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_ct(), None, header=header), ct)
    with pytest.raises(InputDataError, match="singular") as error:
        LoadPetCt()([ct, make_file(np.ones(CT_SHAPE, np.float32))])
    assert error.value.path == str(ct)


def test_pet_without_overlap_cannot_be_brought_onto_the_ct_grid(make_file):
    far_away = PET_AFFINE.copy()
    far_away[2, 3] += 500.0  # 0.5 m up the body: no common field of view
    pet = make_file(np.ones(PET_SHAPE, np.float32), far_away)
    with pytest.raises(InputDataError, match="cannot be brought onto one grid") as error:
        LoadPetCt()([make_file(synthetic_ct()), pet])
    assert error.value.path == str(pet)


@pytest.mark.parametrize(
    ("label", "affine", "message"),
    [
        (np.full(CT_SHAPE, 2, np.uint8), CT_AFFINE, "label values other than 0/1: 2"),
        (np.zeros((20, 18, 15), np.uint8), CT_AFFINE * [[2], [2], [2], [1]], "another grid than the CT"),
        (np.zeros(CT_SHAPE, np.uint8), CT_AFFINE + [[0, 0, 0, 1.5], [0] * 4, [0] * 4, [0] * 4], "another grid"),
        (np.zeros((40, 36, 1), np.uint8), CT_AFFINE, "a 2D volume"),
    ],
)
def test_bad_label_names_the_label_file(study, make_file, label, affine, message):
    path = make_file(label, affine, "label.nii.gz")
    with pytest.raises(InputDataError, match=message) as error:
        LoadPetCtd()({"image": str(study["ct"]), "label": str(path)})
    assert error.value.path == str(path)


def test_loader_arguments_are_validated():
    with pytest.raises(ValueError, match="min_overlap"):
        LoadPetCt(min_overlap=0.0)
    with pytest.raises(ValueError, match="grid_tolerance"):
        LoadPetCtd(grid_tolerance=-1.0)


# ------------------------------------------------------------------------------------------ normalisation


def test_clip_normalize_uses_the_autopet_defaults():
    ct = [-2000.0, -832.1, 107.7, 1127.8, 3000.0]
    pet = [0.0, 1.04, 7.06, 51.2, 80.0]
    image = MetaTensor(torch.tensor([ct, pet]).reshape(2, 5, 1, 1), affine=torch.eye(4))
    image.meta["filename_or_obj"] = "ct.nii.gz"
    d = ClipNormalized(keys="image", channel=0)({"image": image})
    np.testing.assert_allclose(
        d["image"][0].flatten().numpy(),
        [(-832.1 - 107.7) / 286.3, (-832.1 - 107.7) / 286.3, 0.0, (1127.8 - 107.7) / 286.3, (1127.8 - 107.7) / 286.3],
        rtol=1e-6,
    )
    np.testing.assert_array_equal(d["image"][1].flatten().numpy(), np.float32(pet))  # other channel untouched
    d = ClipNormalized(keys="image", channel=1)(d)
    np.testing.assert_allclose(
        d["image"][1].flatten().numpy(),
        [(1.04 - 7.06) / 7.96, (1.04 - 7.06) / 7.96, 0.0, (51.2 - 7.06) / 7.96, (51.2 - 7.06) / 7.96],
        rtol=1e-6,
    )
    assert isinstance(d["image"], MetaTensor) and d["image"].meta["filename_or_obj"] == "ct.nii.gz"
    np.testing.assert_array_equal(image.flatten().numpy(), np.float32(ct + pet))  # the input is not modified


def test_clip_normalize_custom_values_numpy_and_validation():
    transform = ClipNormalized(keys="image", channel=2, lower=0.0, upper=10.0, mean=5.0, std=2.0)
    image = np.array([[[[1.0, -3.0, 20.0]]]] * 3)
    out = transform({"image": image})["image"]
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out[2].ravel(), [-2.0, -2.5, 2.5])
    np.testing.assert_array_equal(out[:2], image[:2])
    assert ClipNormalized(keys="image", channel=0, std=100.0).normalization.mean == 107.7
    with pytest.raises(ValueError, match="channel 2 has no default normalisation; set lower, upper"):
        ClipNormalized(keys="image", channel=2, mean=0.0, std=1.0)
    with pytest.raises(ValueError, match="std must be positive"):
        ClipNormalized(keys="image", channel=1, std=0.0)
    with pytest.raises(ValueError, match="must be below upper"):
        ClipNormalized(keys="image", channel=0, lower=5.0, upper=5.0)
    with pytest.raises(ValueError, match="channel 1 requested, but the image has 1 channel"):
        ClipNormalized(keys="image", channel=1)({"image": torch.zeros(1, 2, 2, 2)})


# ---------------------------------------------------------------------------------------------- body crop


def test_body_crop_box_margin_and_inverse():
    image = torch.full((2, 30, 20, 16), AIR_HU)
    image[0, 10:18, 5:9, 3:16] = BODY_HU  # body box: x 10..17, y 5..8, z 3..15 (touches the top)
    image[1] = torch.arange(30 * 20 * 16, dtype=torch.float32).reshape(30, 20, 16)  # PET never decides
    label = torch.zeros(1, 30, 20, 16)
    label[0, 12, 6, 7] = 1
    d = {"image": MetaTensor(image), "label": MetaTensor(label)}
    crop = CropBodyd(keys=KEYS, source_key="image", margin=[2, 3, 4])
    out = crop(d)
    assert tuple(out["image"].shape) == (2, 12, 10, 16)  # [8, 12), [2, 12), [0, 16): clipped, never padded
    assert tuple(out["label"].shape) == (1, 12, 10, 16)
    assert torch.equal(out["image"], image[:, 8:20, 2:12, 0:16])
    assert out["label"][0, 4, 4, 7] == 1 and out["label"].sum() == 1
    restored = crop.inverse(out)
    assert torch.equal(restored["label"], label)
    assert restored["image"][0, 8:20, 2:12].eq(image[0, 8:20, 2:12]).all() and restored["image"][:, :8].eq(0).all()


def test_body_crop_without_body_keeps_the_whole_image_and_pickles():
    crop = pickle.loads(pickle.dumps(CropBodyd(keys="image")))
    image = MetaTensor(torch.full((2, 6, 5, 4), AIR_HU))
    assert crop({"image": image})["image"].shape == (2, 6, 5, 4)


# ------------------------------------------------------------------------------------ pipeline and inverse


@pytest.mark.parametrize("nearest_interp", [False, True])
def test_prediction_inverts_exactly_onto_the_ct_grid(study, tmp_path, nearest_interp):
    pipeline = preprocessing()
    d = pipeline({"image": str(study["ct"]), "label": str(study["label"])})
    image, label = d["image"], d["label"]
    # RAS, 2.036 x 2.036 x 3 mm (59 x 53 x 40 voxels before the crop), cropped to the body in x and y.
    np.testing.assert_allclose(np.abs(np.diag(image.affine.numpy())[:3]), PIXDIM, rtol=1e-6)
    assert np.all(np.diag(image.affine.numpy())[:3] > 0)
    assert image.shape[1:] == label.shape[1:] and image.shape[1] < 59 and image.shape[2] < 53
    assert [op["class"] for op in image.applied_operations] == ["Orientation", "SpatialResample", "CropForeground"]
    assert abs(float(image[0].max()) - (BODY_HU - 107.7) / 286.3) < 1e-4  # CT z-scored
    # Fake network output on the preprocessed grid: the preprocessed label one-hot.
    d["pred"] = torch.cat([1 - label, label]).float()
    inverted = Invertd(keys="pred", transform=pipeline, orig_keys="image", nearest_interp=nearest_interp)(d)
    pred = inverted["pred"]
    assert tuple(pred.shape) == (2, *CT_SHAPE)
    np.testing.assert_allclose(pred.affine.numpy(), CT_AFFINE, atol=1e-6)
    mask = pred.argmax(0).numpy().astype(bool)
    assert dice(mask, synthetic_label()) > 0.98  # measured: 1.0
    # SaveImaged writes the mask on the CT file's grid.
    written = SaveImaged(keys="pred", output_dir=tmp_path, output_postfix="seg", separate_folder=False)(
        AsDiscreted(keys="pred", argmax=True)(inverted)
    )
    saved = nib.load(tmp_path / "case_0000_seg.nii.gz")
    assert saved.shape == CT_SHAPE and written["pred"].shape[0] == 1
    np.testing.assert_allclose(saved.affine, CT_AFFINE, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(saved.dataobj).astype(bool), mask)


def test_pipeline_builds_from_a_json_config_and_pickles(study):
    config = {
        "image": "image",
        "keys": ["@image", "label"],
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "scripts.transforms.LoadPetCtd", "keys": "@image", "label_key": "label"},
                {"_target_": "Orientationd", "keys": "@keys", "axcodes": "RAS", "allow_missing_keys": True},
                {"_target_": "Spacingd", "keys": "@keys", "pixdim": PIXDIM, "mode": ["bilinear", "nearest"]},
                {"_target_": "scripts.transforms.CropBodyd", "keys": "@keys", "source_key": "@image", "margin": 4},
                {"_target_": "scripts.transforms.ClipNormalized", "keys": "@image", "channel": 0},
                {"_target_": "scripts.transforms.ClipNormalized", "keys": "@image", "channel": 1},
                {"_target_": "EnsureTyped", "keys": "@keys"},
            ],
        },
    }
    pipeline = pickle.loads(pickle.dumps(ConfigParser(config).get_parsed_content("preprocessing")))
    item = {"image": str(study["ct"]), "label": str(study["label"])}
    torch.testing.assert_close(pipeline(item)["image"].as_tensor(), preprocessing()(item)["image"].as_tensor())


def test_class_locations_are_capped_deterministic_and_drive_lesion_centred_crops():
    from monai.transforms import RandCropByPosNegLabeld

    from scripts.transforms import ClassLocationsd

    label = torch.zeros(1, 20, 20, 20)
    label[0, 2:5, 3:6, 4:7] = 1  # 27 lesion voxels
    data = {"label": label, "image": torch.rand(2, 20, 20, 20)}
    located = ClassLocationsd("label", max_samples=100)(data)
    flat = label[0].numpy().ravel()
    assert len(located["fg_indices"]) == 27 and (flat[located["fg_indices"]] == 1).all()
    assert len(located["bg_indices"]) == 100 and (flat[located["bg_indices"]] == 0).all()
    again = ClassLocationsd("label", max_samples=100)(data)
    np.testing.assert_array_equal(located["bg_indices"], again["bg_indices"])
    crop = RandCropByPosNegLabeld(
        ["image", "label"],
        "label",
        (4, 4, 4),
        pos=1,
        neg=0,
        num_samples=3,
        fg_indices_key="fg_indices",
        bg_indices_key="bg_indices",
    )
    for patch in crop(located):
        assert patch["label"][0, 2, 2, 2] == 1  # every crop is centred on a lesion voxel


def test_hot_background_indices_are_uptake_outside_lesions_with_every_region_represented():
    from scripts.transforms import ClassLocationsd

    image = torch.zeros(2, 30, 30, 30)
    label = torch.zeros(1, 30, 30, 30)
    image[1, :20, :20, :20] = 5.0  # a large hot organ, 8000 voxels
    image[1, 25:27, 25:27, 25:27] = 5.0  # a small hot focus, 8 voxels
    image[1, 28, 0, 0] = 5.0  # one hot voxel: noise, below hot_min_voxels
    image[0, 25:30, 0:5, 25:30] = 9.0  # hot CT only: not PET uptake
    label[0, 5:8, 5:8, 5:8] = 1  # a lesion inside the hot organ
    located = ClassLocationsd("label", max_samples=100, image_key="image", hot_above=4.0)(
        {"image": image, "label": label}
    )
    hot = np.unravel_index(located["hot_indices"], (30, 30, 30))
    assert (image[1].numpy()[hot] >= 4.0).all() and (label[0].numpy()[hot] == 0).all()
    in_organ = int((hot[0] < 20).sum())
    assert in_organ == 50, "the organ is capped at an equal share (100 / 2 regions)"
    assert len(located["hot_indices"]) - in_organ == 8, "the small focus keeps all its voxels, the lone voxel none"
    again = ClassLocationsd("label", max_samples=100, image_key="image", hot_above=4.0)(
        {"image": image, "label": label}
    )
    np.testing.assert_array_equal(located["hot_indices"], again["hot_indices"])
    np.testing.assert_array_equal(
        located["bg_indices"], ClassLocationsd("label", max_samples=100)(located)["bg_indices"]
    )
    nothing_hot = ClassLocationsd("label", image_key="image", hot_above=50.0)({"image": image, "label": label})
    assert nothing_hot["hot_indices"].size == 0
    with pytest.raises(ValueError, match="image_key and hot_above together"):
        ClassLocationsd("label", image_key="image")
