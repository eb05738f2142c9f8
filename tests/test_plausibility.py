"""The plausibility rules: real autoPET grids and intensities pass, every implausible kind fails, the override works."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from scripts.data.grids import voxel_spacing
from scripts.data.plausibility import (
    IntensitySummary,
    check_ct,
    check_pet,
    check_pet_ct,
    check_spacing,
    ct_problem,
    pet_problem,
)
from scripts.errors import InputDataError


def real_like_ct(shape=(60, 60, 40), seed=0) -> np.ndarray:
    """A CTres-like volume: -1024 HU padding, a body of soft tissue, lungs, bone, a metal implant at 3071 HU."""
    rng = np.random.default_rng(seed)
    ct = np.full(shape, -1024.0, np.float32)
    i, j, _ = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((i - shape[0] / 2) / (shape[0] * 0.3)) ** 2 + ((j - shape[1] / 2) / (shape[1] * 0.4)) ** 2 <= 1
    ct[body] = 40.0 + rng.normal(0, 30, int(body.sum()))
    ct[25:35, 15:25, 10:30] = -850.0  # lung
    ct[28:32, 40:44, :] = 700.0  # spine
    ct[30, 30, 20] = 3071.0  # metal
    return ct


def real_like_pet(ct: np.ndarray, seed=0) -> np.ndarray:
    """SUV: 0 outside the body, ~1-2 inside with reconstruction noise (some small negatives), a hot bladder."""
    rng = np.random.default_rng(seed)
    pet = np.where(ct > -500, 1.5, 0.0).astype(np.float32) + rng.normal(0, 0.3, ct.shape).astype(np.float32)
    pet[29:31, 29:31, 2:4] = 300.0  # bladder / kidney hot spot of a PSMA study
    return pet


def test_every_real_autopet_grid_passes_the_voxel_size_rule(shared_dir):
    """The 36 real organ maps share their studies' PET grids (FDG and the three PSMA scanners); so does the fixture."""
    paths = sorted((shared_dir / "data" / "autopet_organ_labels").glob("*.nii.gz"))
    paths += sorted((shared_dir / "fixtures" / "autopet_psma_case").glob("*.nii.gz"))
    assert len(paths) >= 36 + 3
    spacings = set()
    for path in paths:
        affine = nib.load(str(path)).affine
        check_spacing(voxel_spacing(affine), path)
        spacings.add(tuple(np.round(voxel_spacing(affine), 3)))
    assert {(2.036, 2.036, 3.0), (4.073, 4.073, 2.0), (2.734, 2.734, 3.27), (4.073, 4.073, 5.0)} <= spacings


def test_real_like_intensities_pass_with_a_wide_margin():
    ct = real_like_ct()
    pet = real_like_pet(ct)
    ct_summary, pet_summary = IntensitySummary.of(ct), IntensitySummary.of(pet)
    check_pet_ct(ct_summary, "ct", pet_summary, "pet")
    assert ct_summary.air_fraction > 0.2 and ct_summary.body_fraction > 0.2
    assert 0 < pet_summary.negative_fraction < 0.5 and pet_summary.activity_like_fraction == 0


@pytest.mark.parametrize("tracer, coarse", [("fdg", False), ("psma", False), ("fdg", True)])
def test_synthetic_studies_pass_every_rule(tracer, coarse, tmp_path):
    from scripts.data.studies import find_release_studies
    from scripts.data.study_checks import check_study
    from scripts.synthetic import generate_cohort

    spacing = (4.0, 4.0, 5.0) if coarse else (10.0, 10.0, 15.0)  # a coarse PET has twice the voxel size
    generate_cohort(tmp_path, 2, seed=1, tracer=tracer, shape=(32, 32, 40), spacing=spacing, pet_coarse=coarse)
    for study in find_release_studies(tmp_path):
        check_study(study, allow_resampling=True, check_plausibility=True)


def test_a_synthetic_study_on_a_real_psma_grid_passes(shared_dir, tmp_path):
    from scripts.data.studies import find_release_studies
    from scripts.data.study_checks import check_study
    from scripts.synthetic import generate_cohort

    organ_map = shared_dir / "data" / "autopet_organ_labels" / "psma_031.nii.gz"  # the smallest real grid
    generate_cohort(tmp_path, 1, seed=2, tracer="psma", organ_maps=organ_map)
    (study,) = find_release_studies(tmp_path)
    check_study(study, check_plausibility=True)


@pytest.mark.parametrize(
    "spacing, fragment",
    [
        ((2.036, 2.036, 3.0), None),
        ((4.073, 4.073, 5.0), None),
        ((0.3, 0.3, 0.3), None),
        ((10.0, 10.0, 15.0), None),  # the coarsest the tests use
        ((0.05, 0.05, 500.0), "finer than 0.3"),
        ((2.0, 2.0, 16.0), "coarser than 15"),
        ((11.0, 11.0, 3.0), "two axes coarser than 10"),
        ((3.0, 2.0, 2.0), None),  # the slice axis need not be the last
    ],
)
def test_voxel_size_rule(spacing, fragment):
    if fragment is None:
        check_spacing(spacing, "x.nii.gz")
    else:
        with pytest.raises(InputDataError, match=fragment):
            check_spacing(spacing, "x.nii.gz")


def _ct(change):
    return IntensitySummary.of(change(real_like_ct()))


def _pet(change):
    ct = real_like_ct()
    return IntensitySummary.of(change(real_like_pet(ct), ct))


@pytest.mark.parametrize(
    "summary, fragment",
    [
        (lambda: _ct(lambda a: a), None),
        (lambda: _ct(lambda a: np.maximum(a, -1000) + 1000), "no air"),  # CT stored without the HU offset
        (lambda: _ct(lambda a: np.full_like(a, -1024)), "constant"),
        (lambda: _ct(lambda a: np.where(a > -500, -950.0, a)), "no body"),
        (lambda: _ct(lambda a: real_like_pet(a)), "no air"),  # a PET in the CT's place
    ],
)
def test_ct_rules(summary, fragment):
    problem = ct_problem(summary())
    assert (problem is None) if fragment is None else (fragment in problem), problem


@pytest.mark.parametrize(
    "summary, fragment",
    [
        (lambda: _pet(lambda p, ct: p), None),
        (lambda: _pet(lambda p, ct: p * 0), "all zero"),
        (lambda: _pet(lambda p, ct: p * 0 - 100), "constant (every voxel -100)"),
        (lambda: _pet(lambda p, ct: p - 3), "mostly negative"),
        (lambda: _pet(lambda p, ct: ct), "HU-like"),
        (lambda: _pet(lambda p, ct: np.abs(p) * 4000), "not in SUV"),  # Bq/ml
    ],
)
def test_pet_rules(summary, fragment):
    problem = pet_problem(summary())
    assert (problem is None) if fragment is None else (fragment in problem), problem


def test_swapped_channels_are_named_as_such_and_single_faults_are_not():
    ct, pet = real_like_ct(), real_like_pet(real_like_ct())
    with pytest.raises(InputDataError, match="ct.nii.gz: CT and PET look swapped"):
        check_pet_ct(IntensitySummary.of(pet), "ct.nii.gz", IntensitySummary.of(ct), "pet.nii.gz")
    with pytest.raises(InputDataError, match="pet.nii.gz: the PET is all zero") as raised:
        check_pet_ct(IntensitySummary.of(ct), "ct.nii.gz", IntensitySummary.of(pet * 0), "pet.nii.gz")
    assert "--no-plausibility-check" in raised.value.problem, "the message says how to override"
    check_ct(IntensitySummary.of(ct), "ct")
    check_pet(IntensitySummary.of(pet), "pet")


@pytest.fixture()
def swapped_study(tmp_path):
    from scripts.synthetic import generate_cohort

    generate_cohort(tmp_path / "raw", 2, seed=4, shape=(32, 32, 40), spacing=(10.0, 10.0, 15.0), negative_share=0.0)
    ct = sorted((tmp_path / "raw").rglob("CTres.nii.gz"))[0]
    pet = ct.with_name("SUV.nii.gz")
    shutil.move(ct, tmp_path / "ct")
    shutil.move(pet, ct)
    shutil.move(tmp_path / "ct", pet)
    return tmp_path / "raw", ct, pet


def test_the_override_accepts_unusual_data_everywhere(swapped_study, tmp_path, bundle_root, capsys):
    from monai.bundle import ConfigParser

    from scripts.data.prepare import main as prepare
    from scripts.evaluation.quantification import main as quantify
    from scripts.transforms import LoadPetCt

    raw, ct, pet = swapped_study
    assert prepare(["--src", str(raw), "--dst", str(tmp_path / "strict"), "--folds", "2"]) == 1
    assert "look swapped" in capsys.readouterr().err
    assert prepare(["--src", str(raw), "--dst", str(tmp_path / "lax"), "--folds", "2", "--no-plausibility-check"]) == 0
    with pytest.raises(InputDataError, match="look swapped"):
        LoadPetCt()([ct, pet])
    assert LoadPetCt(check_plausibility=False)([ct, pet]).shape[0] == 2
    label = ct.with_name("SEG.nii.gz")
    out = tmp_path / "q.json"
    assert quantify(["--pred", str(label), "--pet", str(pet), "--out", str(out)]) == 2 and not out.exists()
    assert quantify(["--pred", str(label), "--pet", str(pet), "--out", str(out), "--no-plausibility-check"]) == 0
    for config in ("train.json", "inference.json"):
        parser = ConfigParser()
        parser.read_config(str(bundle_root / "configs" / config))
        parser["check_plausibility"] = False
        loader = parser.get_parsed_content("preprocessing_transforms")[0]
        assert loader.loader.check_plausibility is False, config
