# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the synthetic whole-body PET/CT generator (``scripts.synthetic``), on small volumes."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from scripts.data.volume_checks import check_label, check_overlap, world_bounds
from scripts.errors import InputDataError
from scripts.synthetic import Tissue, generate_cohort, generate_study, plan_cohort, write_study
from scripts.synthetic.__main__ import main
from scripts.synthetic.anatomy import build_anatomy, sample_patient_traits, sample_study_state
from scripts.synthetic.cohort import MANIFEST_FILE, NEGATIVE_SHARE
from scripts.synthetic.grid import coarser_grid, las_grid
from scripts.synthetic.lesions import (
    BURDEN,
    MAX_DIAMETER_MM,
    MAX_PEAK_SUV,
    MIN_DIAMETER_MM,
    LesionSpec,
    PaintedLesion,
    paint_lesions,
    sample_lesions,
)
from scripts.synthetic.organ_map import load_organ_map
from scripts.synthetic.statistics import lesion_statistics, summarize
from scripts.synthetic.uptake import tracer_profile
from scripts.synthetic.visibility import (
    MIN_LABEL_ML,
    MIN_LABEL_VOXELS,
    MIN_VISIBLE_CONTRAST,
    assess_visibility,
)

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


@pytest.fixture(scope="module")
def anatomy():
    traits = sample_patient_traits(np.random.default_rng(0), male_share=1.0)
    state = sample_study_state(np.random.default_rng(1))
    return build_anatomy(las_grid(MEDIUM), traits, state)


@pytest.mark.parametrize("tracer", ["fdg", "psma"])
def test_lesion_draws_follow_the_tracer_burden(anatomy, tracer):
    profile, burden = tracer_profile(tracer), BURDEN[tracer]
    rng = np.random.default_rng(4)
    studies = [sample_lesions(profile, anatomy, rng) for _ in range(150)]
    counts = np.array([len(lesions) for lesions in studies])
    index = np.array([lesions[0].diameter_mm for lesions in studies])
    others = np.array([lesion.diameter_mm for lesions in studies for lesion in lesions[1:]])
    every = [lesion for lesions in studies for lesion in lesions]
    peaks = np.array([lesion.peak_suv for lesion in every])
    # Counts: 1 + floor(lognormal(log(median), sigma)) -> median about count_median + 1, a long tail.
    assert counts.min() >= 1 and burden.count_median <= np.median(counts) <= burden.count_median + 2.5
    assert np.percentile(counts, 90) >= 2.5 * np.median(counts)
    # Equivalent diameters (before lumps): the index lesion larger than its satellites, both near their medians.
    assert 0.75 < np.median(index) / burden.index_diameter_mm < 1.25
    assert 0.75 < np.median(others) / burden.diameter_mm < 1.25
    assert others.min() >= 0.6 * MIN_DIAMETER_MM and index.max() <= 1.6 * MAX_DIAMETER_MM  # radii jitter 15 %
    assert 0.7 < np.median(peaks) / burden.peak_suv < 1.3 and peaks.max() <= MAX_PEAK_SUV
    faint = np.mean([lesion.faint > 0 for lesion in every])
    assert abs(faint - burden.faint_share) < 0.06
    assert len({lesion.site for lesion in every}) >= 6


def test_labels_mark_only_lesions_a_reader_could_see():
    for seed, tracer in ((31, "fdg"), (32, "psma"), (33, "fdg")):
        study = generate_study(seed, tracer=tracer, shape=(96, 96, 150), spacing=(5.0, 5.0, 6.0))
        voxel_ml = 5.0 * 5.0 * 6.0 / 1000.0
        stats = lesion_statistics(study.seg, study.suv, (5.0, 5.0, 6.0), study.lesions)
        assert stats and len(study.lesions) == len(study.lesion_voxels)
        # Every labelled lesion has at least MIN_LABEL_VOXELS voxels and stands out of its surroundings.
        assert min(study.lesion_voxels) >= MIN_LABEL_VOXELS
        assert min(study.lesion_voxels) * voxel_ml >= MIN_LABEL_ML
        assert all(lesion.voxels >= MIN_LABEL_VOXELS for lesion in stats)
        assert np.median([lesion.contrast for lesion in stats]) > MIN_VISIBLE_CONTRAST


def test_visibility_rules_on_a_known_volume():
    blurred = np.full((20, 20, 20), 1.0, dtype=np.float32)
    hot = np.zeros((4, 4, 4), dtype=bool)
    hot[1:3, 1:3, 1:3] = True  # 8 voxels
    box_hot = (slice(2, 6), slice(2, 6), slice(2, 6))
    box_faint = (slice(12, 16), slice(12, 16), slice(12, 16))
    box_tiny = (slice(12, 16), slice(2, 6), slice(2, 6))
    tiny = np.zeros((4, 4, 4), dtype=bool)
    tiny[1, 1, 1:3] = True  # 2 voxels
    blurred[box_hot][hot] = 6.0
    blurred[box_faint][hot] = 1.2  # 1.2 x background: below MIN_VISIBLE_CONTRAST
    blurred[box_tiny][tiny] = 6.0
    painted = [PaintedLesion(box_hot, hot), PaintedLesion(box_faint, hot), PaintedLesion(box_tiny, tiny)]
    painted.append(PaintedLesion(None, None))  # smaller than a voxel
    seen = assess_visibility(painted, blurred, (4.0, 4.0, 4.0), pet_noise=0.2)
    assert [v.visible for v in seen] == [True, False, False, False]
    assert seen[0].peak_suv == pytest.approx(6.0) and seen[0].background_suv == pytest.approx(1.0)
    assert seen[0].contrast == pytest.approx(6.0)
    # A large volume that is hot enough in contrast but not above the noise is not seen either.
    noisy = assess_visibility(painted[:1], blurred, (4.0, 4.0, 4.0), pet_noise=2.0)
    assert not noisy[0].visible


def test_a_lesion_smaller_than_a_voxel_adds_activity_but_covers_nothing(anatomy):
    profile = tracer_profile("fdg")
    voxel = np.argwhere(anatomy.tissue == Tissue.FAT)[len(np.argwhere(anatomy.tissue == Tissue.FAT)) // 2]
    # A third of a voxel off the voxel centre: no voxel centre lies inside the 2 mm lesion.
    centre = tuple(float(c) for c in (voxel + 0.3) * np.asarray(anatomy.grid.spacing))
    lesion = LesionSpec(
        site="soft_tissue",
        centre_mm=centre,
        radii_mm=(1.0, 1.0, 1.0),
        rotation=tuple(np.eye(3).ravel()),
        lumps=(0.0,) * 9,
        peak_suv=20.0,
        faint=0.0,
        necrotic=False,
        ct_look="soft",
        ct_shift_hu=0.0,
    )
    suv = np.ones(anatomy.grid.shape, dtype=np.float32)
    hu = np.zeros(anatomy.grid.shape, dtype=np.float32)
    painted = paint_lesions([lesion], anatomy, profile, hu, suv)
    assert painted[0].voxels == 0
    # A 2 mm lesion fills 0.65 % of an 8 x 8 x 10 mm voxel: 1 + 0.0065 * (0.85 * 20 - 1).
    assert suv[tuple(voxel)] == pytest.approx(1.0 + np.pi / 6 * 8 / 640 * 16, rel=1e-4)
    assert np.count_nonzero(suv != 1.0) == 1


def test_lesion_statistics_of_calibrated_cohorts_fall_in_their_ranges():
    spacing = (5.0, 5.0, 6.0)
    summaries = {}
    for tracer in ("fdg", "psma"):
        studies = [
            lesion_statistics(s.seg, s.suv, spacing, s.lesions)
            for s in (generate_study(seed, tracer=tracer, shape=(96, 96, 150), spacing=spacing) for seed in range(4))
        ]
        summaries[tracer] = summarize(studies)
    for tracer, summary in summaries.items():
        assert summary["negative_share"] == 0.0 and summary["lesions"] >= 8, tracer
        assert 1 <= summary["lesions_per_positive_study"]["median"] <= 10, tracer
        assert 0.5 < summary["ml_per_lesion"]["median"] < 8.0, tracer
        assert 3.0 < summary["suv_max"]["median"] < 25.0, tracer
        assert summary["suv_mean"]["median"] < summary["suv_max"]["median"], tracer
        assert summary["share_1_to_10_ml"] > 0.3 and summary["share_above_10_ml"] > 0.0, tracer
    # PSMA lesions are hotter than FDG lesions; PSMA often sits beside hotter organs (kidneys, bladder, glands).
    assert summaries["psma"]["suv_max"]["median"] > summaries["fdg"]["suv_max"]["median"]


def test_cohort_negative_share_defaults_to_the_tracers_autopet_share(tmp_path):
    assert NEGATIVE_SHARE["fdg"] == pytest.approx(0.506, abs=1e-3)
    assert NEGATIVE_SHARE["psma"] == pytest.approx(0.1005, abs=1e-3)
    generate_cohort(tmp_path / "psma", n=2, seed=1, tracer="psma", shape=(40, 40, 56))
    manifest = json.loads((tmp_path / "psma" / MANIFEST_FILE).read_text())
    assert manifest["negative_share"] == NEGATIVE_SHARE["psma"]
    assert sum(entry["negative"] for entry in manifest["studies"]) == round(2 * NEGATIVE_SHARE["psma"])


def test_two_cohorts_written_into_one_folder_are_both_in_its_manifest(tmp_path):
    out = tmp_path / "mixed"
    fdg = generate_cohort(out, n=2, seed=1, tracer="fdg", shape=(40, 40, 56))
    psma = generate_cohort(out, n=2, seed=2, tracer="psma", shape=(40, 40, 56))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert sorted(entry["folder"] for entry in manifest["studies"]) == sorted(
        str(f.relative_to(out)) for f in fdg + psma
    )
    assert [(call["tracer"], call["seed"], call["studies"]) for call in manifest["calls"]] == [
        ("fdg", 1, 2),
        ("psma", 2, 2),
    ]
    assert manifest["tracer"] == "psma"  # the top-level parameters are the latest call's
    again = generate_cohort(out, n=2, seed=2, tracer="psma", shape=(40, 40, 56))
    assert again == psma
    assert len(json.loads((out / MANIFEST_FILE).read_text())["studies"]) == 4, "a rewritten study is listed once"
    for folder in fdg:
        shutil.rmtree(folder)
    generate_cohort(out, n=2, seed=2, tracer="psma", shape=(40, 40, 56))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert len(manifest["studies"]) == 2 and len(manifest["calls"]) == 1, "studies no longer on disk are dropped"


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
