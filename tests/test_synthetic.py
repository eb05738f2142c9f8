# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the synthetic whole-body PET/CT generator (``scripts.synthetic``), on small volumes."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from scripts.data.volume_checks import check_label, check_overlap, world_bounds
from scripts.errors import InputDataError
from scripts.synthetic import Tissue, generate_cohort, generate_study, plan_cohort, write_study
from scripts.synthetic.__main__ import main
from scripts.synthetic.cohort import MANIFEST_FILE
from scripts.synthetic.grid import coarser_grid, las_grid
from scripts.synthetic.organ_map import load_organ_map

SMALL = (48, 48, 64)
MEDIUM = (64, 64, 100)  # 8 x 8 x 10 mm voxels: enough to measure tissues away from their edges


def _interior(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` not on its border (away from partial-volume and PET blur at the edges)."""
    return ndimage.binary_erosion(mask)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    folders = generate_cohort(out, n=6, seed=11, shape=SMALL, negative_share=0.5, longitudinal_share=0.5)
    return out, folders


@pytest.fixture(scope="module")
def fdg_study():
    return generate_study(3, tracer="fdg", shape=MEDIUM)


@pytest.fixture(scope="module")
def psma_study():
    return generate_study(3, tracer="psma", shape=MEDIUM)


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    first, again, other = (generate_study(seed, shape=SMALL) for seed in (7, 7, 8))
    for name in ("ct", "suv", "seg", "tissue"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.ct, other.ct)


def test_cohort_is_written_identically_for_the_same_seed(cohort, tmp_path):
    out, folders = cohort
    again = generate_cohort(tmp_path, n=6, seed=11, shape=SMALL, negative_share=0.5, longitudinal_share=0.5)
    assert [f.relative_to(tmp_path) for f in again] == [f.relative_to(out) for f in folders]
    for first, second in zip(folders, again, strict=True):
        for name in ("CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz"):
            np.testing.assert_array_equal(
                np.asanyarray(nib.load(first / name).dataobj), np.asanyarray(nib.load(second / name).dataobj)
            )


def test_cohort_layout_shapes_affines_and_dtypes(cohort):
    out, folders = cohort
    assert len(folders) == 6
    spacing = (512 / 48, 512 / 48, 1000 / 64)  # default field of view over the shape
    for folder in folders:
        assert folder.parent.parent == out and folder.parent.name.startswith("PETCT_")
        ct, suv, seg = (nib.load(folder / name) for name in ("CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz"))
        for image, dtype in ((ct, np.float32), (suv, np.float32), (seg, np.uint8)):
            assert image.shape == SMALL
            assert image.get_data_dtype() == dtype
            assert nib.aff2axcodes(image.affine) == ("L", "A", "S")
            np.testing.assert_allclose(image.header.get_zooms(), spacing, rtol=1e-6)
            np.testing.assert_allclose(image.affine, ct.affine)
    # Every patient folder holds its studies; half of the patients (rounded) have a follow-up.
    patients = {f.parent.name for f in folders}
    assert len(patients) == 4
    assert sum(len(list((out / p).iterdir())) == 2 for p in patients) == 2


def test_seg_is_binary_non_empty_for_positives_and_empty_for_negatives(cohort):
    out, folders = cohort
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert len(manifest["studies"]) == len(folders)
    negatives = 0
    for entry in manifest["studies"]:
        seg = np.asanyarray(nib.load(out / entry["folder"] / "SEG.nii.gz").dataobj)
        check_label(seg, entry["folder"])
        if entry["negative"]:
            negatives += 1
            assert seg.sum() == 0 and entry["lesions"] == []
        else:
            assert seg.sum() > 0 and entry["lesions"]
            assert seg.sum() == entry["lesion_voxels"]
    assert negatives == 3  # negative_share 0.5 of 6 studies


def test_negative_and_longitudinal_shares_are_honoured_over_a_cohort():
    plans = plan_cohort(200, seed=5, negative_share=0.3, longitudinal_share=0.25)
    assert len(plans) == 200
    assert sum(p.negative for p in plans) == 60
    patients = {p.patient_id for p in plans}
    assert len(patients) == 160  # ceil(200 / 1.25)
    follow_ups = [p for p in plans if p.study_index == 1]
    assert len(follow_ups) == 40
    assert len({(p.patient_id, p.study_id) for p in plans}) == 200
    studies_per_patient = {pid: sum(p.patient_id == pid for p in plans) for pid in patients}
    assert sorted(set(studies_per_patient.values())) == [1, 2]
    with pytest.raises(ValueError, match="negative_share"):
        plan_cohort(5, seed=1, negative_share=1.5)


def test_anatomy_is_where_it_belongs_in_las_space(fdg_study):
    tissue = fdg_study.tissue

    def centre(*tissues):
        return np.argwhere(np.isin(tissue, tissues)).mean(axis=0)

    liver, spleen, brain = centre(Tissue.LIVER), centre(Tissue.SPLEEN), centre(Tissue.BRAIN)
    bladder, heart, kidneys = centre(Tissue.BLADDER), centre(Tissue.HEART), centre(Tissue.KIDNEY)
    assert liver[0] < spleen[0]  # axis 0 runs towards the patient's left: liver on the right
    assert brain[2] > heart[2] > liver[2] > bladder[2]  # axis 2 runs towards superior
    assert heart[1] > kidneys[1]  # axis 1 runs towards anterior: kidneys lie at the back
    assert np.count_nonzero(tissue == Tissue.AIR) > 0.3 * tissue.size  # air around the body


def test_tissue_ct_numbers_are_ordered_and_in_range(fdg_study):
    ct, tissue = fdg_study.ct, fdg_study.tissue

    def mean_hu(*tissues):
        mask = _interior(np.isin(tissue, tissues))
        assert mask.sum() > 5
        return float(ct[mask].mean())

    lung, fat, muscle = mean_hu(Tissue.LUNG), mean_hu(Tissue.FAT), mean_hu(Tissue.MUSCLE)
    liver, air = mean_hu(Tissue.LIVER), mean_hu(Tissue.AIR)
    bone = float(ct[np.isin(tissue, (Tissue.BONE, Tissue.MARROW))].mean())
    assert air < lung < fat < muscle < bone
    assert -1010 < air < -980 and -930 < lung < -750 and -130 < fat < -60
    assert 20 < muscle < 90 and 35 < liver < 140 and bone > 200
    assert ct.min() >= -1024 and ct.max() <= 3071 and np.all(ct == np.round(ct))


def test_fdg_brain_heart_and_bladder_are_hot(fdg_study):
    suv, tissue = fdg_study.suv, fdg_study.tissue
    background = float(np.median(suv[_interior(tissue == Tissue.MUSCLE)]))
    assert 0.3 < background < 1.5
    brain = float(suv[_interior(tissue == Tissue.BRAIN)].mean())
    liver = float(suv[_interior(tissue == Tissue.LIVER)].mean())
    assert brain > 4 * background and brain > liver > background
    assert float(suv[tissue == Tissue.BLADDER].mean()) > 3 * background


def test_psma_kidneys_glands_and_liver_are_hot_and_brain_is_not(psma_study):
    suv, tissue = psma_study.suv, psma_study.tissue
    background = float(np.median(suv[_interior(tissue == Tissue.MUSCLE)]))
    kidneys = float(suv[tissue == Tissue.KIDNEY].mean())
    glands = float(suv[tissue == Tissue.GLANDS].mean())
    liver = float(suv[_interior(tissue == Tissue.LIVER)].mean())
    brain = float(suv[_interior(tissue == Tissue.BRAIN)].mean())
    assert kidneys > 8 * background and kidneys > liver
    assert glands > 4 * background
    assert liver > 3 * background
    assert brain < liver


def test_lesions_are_hotter_than_their_surroundings():
    ratios = []
    for seed in (21, 22, 23):
        study = generate_study(seed, tracer="fdg" if seed % 2 else "psma", shape=MEDIUM)
        assert study.seg.any() and study.lesions
        components, count = ndimage.label(study.seg)
        for index in range(1, count + 1):
            lesion = components == index
            shell = ndimage.binary_dilation(lesion, iterations=2) & ~study.seg.astype(bool)
            shell &= study.tissue != Tissue.AIR
            if shell.sum() >= 5:
                ratios.append(study.suv[lesion].mean() / max(study.suv[shell].mean(), 1e-3))
    assert len(ratios) >= 5
    assert np.mean(ratios) > 1.3
    assert np.mean(np.asarray(ratios) > 1.0) > 0.7


def test_lesion_sizes_and_contrasts_cover_the_requested_ranges():
    lesions = [lesion for seed in range(8) for lesion in generate_study(seed, shape=SMALL).lesions]
    diameters = np.array([lesion.diameter_mm for lesion in lesions])
    contrasts = np.array([lesion.contrast for lesion in lesions])
    assert diameters.min() < 10 and diameters.max() > 25 and np.all((diameters > 2.5) & (diameters < 75))
    assert contrasts.min() < 2.5 and contrasts.max() > 5 and np.all(contrasts >= 1.3)
    assert len({lesion.site for lesion in lesions}) >= 4


def test_coarse_pet_grid_is_coarser_with_the_same_physical_extent():
    study = generate_study(4, shape=(49, 48, 63), pet_coarse_factor=2.0)
    ct_spacing = np.linalg.norm(study.ct_affine[:3, :3], axis=0)
    pet_spacing = np.linalg.norm(study.pet_affine[:3, :3], axis=0)
    assert study.suv.shape == (24, 24, 32) and study.ct.shape == study.seg.shape == (49, 48, 63)
    assert np.all(pet_spacing > 1.9 * ct_spacing)
    for ct_edge, pet_edge in zip(
        world_bounds(study.ct_affine, study.ct.shape), world_bounds(study.pet_affine, study.suv.shape), strict=True
    ):
        np.testing.assert_allclose(ct_edge, pet_edge, atol=1e-6)
    check_overlap(study.ct_affine, study.ct.shape, study.pet_affine, study.suv.shape, "SUV.nii.gz")
    assert nib.aff2axcodes(study.pet_affine) == ("L", "A", "S")
    # The coarse PET still shows the brain hot where the CT grid has it.
    brain_ct = np.argwhere(study.tissue == Tissue.BRAIN).mean(axis=0)
    brain_pet = np.round(brain_ct * np.array(study.suv.shape) / np.array(study.ct.shape)).astype(int)
    assert study.suv[tuple(brain_pet)] > 3.0


def test_coarser_grid_keeps_edges_for_any_factor():
    grid = las_grid((50, 40, 30), (2.0, 2.5, 3.0))
    for factor in (1.5, 2.0, 3.0):
        coarse = coarser_grid(grid, factor)
        np.testing.assert_allclose(world_bounds(grid.affine, grid.shape), world_bounds(coarse.affine, coarse.shape))


def test_organ_map_in_another_orientation_keeps_its_grid_and_organs(tmp_path):
    # An organ map made from a procedural phantom, stored in RAS order with its own origin.
    source = generate_study(5, shape=SMALL)
    organs = np.where(source.tissue <= 10, source.tissue, 0).astype(np.uint8)
    organs_ras = organs[::-1]
    affine = source.ct_affine.copy()
    affine[:3, 0] *= -1
    affine[:3, 3] = [-250.0, -240.0, -1200.0]
    path = tmp_path / "organs_ras.nii.gz"
    nib.save(nib.Nifti1Image(organs_ras, affine), path)

    study = generate_study(9, tracer="psma", organ_map=path, pet_coarse_factor=2.0)
    assert study.ct.shape == study.seg.shape == organs_ras.shape
    np.testing.assert_allclose(study.ct_affine, affine)
    for organ in (Tissue.LIVER, Tissue.LUNG, Tissue.SPLEEN, Tissue.BRAIN, Tissue.BLADDER):
        assert np.all(study.tissue[organs_ras == organ] == organ)
    np.testing.assert_allclose(world_bounds(study.pet_affine, study.suv.shape), world_bounds(affine, organs.shape))
    # The kidneys and heart get an inside (urine, blood) but stay where the map has them.
    inside = np.isin(study.tissue[organs_ras == Tissue.KIDNEY], (Tissue.KIDNEY, Tissue.URINE))
    assert inside.all()


def test_real_organ_map_keeps_its_affine_and_shape(shared_dir, tmp_path):
    path = shared_dir / "data" / "autopet_organ_labels" / "psma_031.nii.gz"  # the smallest map (168x168x165)
    image = nib.load(path)
    labels = np.asanyarray(image.dataobj)
    study = generate_study(2, tracer="psma", organ_map=path)
    folder = write_study(study, tmp_path)
    for name in ("CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz"):
        written = nib.load(folder / name)
        assert written.shape == image.shape
        np.testing.assert_allclose(written.affine, image.affine, atol=1e-4)
    assert np.all(study.tissue[labels == Tissue.LIVER] == Tissue.LIVER)
    assert np.all(study.tissue[labels == Tissue.LUNG] == Tissue.LUNG)
    # The body drawn around the organs holds them: no organ voxel borders on outside air in-plane.
    body = study.tissue != Tissue.AIR
    assert body[labels > 0].all()
    assert study.seg.any()
    kidneys = float(study.suv[labels == Tissue.KIDNEY].mean())
    assert kidneys > 5 * float(np.median(study.suv[study.tissue == Tissue.MUSCLE]))


def test_bad_organ_map_is_reported_with_its_path(tmp_path):
    path = tmp_path / "not_organs.nii.gz"
    nib.save(nib.Nifti1Image(np.full((8, 8, 8), 42, dtype=np.int16), np.eye(4)), path)
    with pytest.raises(InputDataError, match="not_organs.nii.gz: organ labels must be 0-10"):
        load_organ_map(path)


def test_cli_writes_a_cohort_and_rejects_conflicting_options(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "--out",
            str(out),
            "--n",
            "2",
            "--seed",
            "3",
            "--tracer",
            "psma",
            "--shape",
            "40",
            "40",
            "56",
            "--pet-coarse",
            "--negative-share",
            "0",
        ]
    )
    assert code == 0
    folders = capsys.readouterr().out.split()
    assert len(folders) == 2
    for folder in folders:
        assert nib.load(f"{folder}/SUV.nii.gz").shape == (20, 20, 28)
        assert nib.load(f"{folder}/CTres.nii.gz").shape == (40, 40, 56)
        assert np.asanyarray(nib.load(f"{folder}/SEG.nii.gz").dataobj).any()
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--n", "1", "--seed", "1", "--organs", "x.nii.gz", "--shape", "8", "8", "8"])
    assert stop.value.code == 2
    assert main(["--out", str(out), "--n", "1", "--seed", "1", "--organs", str(tmp_path / "missing.nii.gz")]) == 2
    assert "missing.nii.gz" in capsys.readouterr().err
