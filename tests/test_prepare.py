# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Dataset preparation on tiny hand-made volumes: release -> nnU-Net layout, patient folds, datalists, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from scripts.data.datalists import datalist_item
from scripts.data.prepare import prepare_dataset
from scripts.data.splits import check_splits, make_patient_folds, patient_of_case, patients_split_across_folds
from scripts.data.studies import closest_name, sanitise_case_id, unique_case_ids
from scripts.errors import InputDataError

SHAPE = (12, 12, 10)
CT_AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, 20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
# A coarser PET grid (4 x 4 x 6 mm) whose voxel centres span the CT's: x -12..12, y 18..42, z 2..32 mm.
COARSE_PET_SHAPE = (7, 7, 6)
COARSE_PET_AFFINE = np.array([[4.0, 0, 0, -12], [0, 4.0, 0, 18], [0, 0, 6.0, 2], [0, 0, 0, 1]])

# (patient folder or None for a flat study, study folder, has lesion, coarse PET)
RELEASE = [
    ("PETCT_aaa", "study 1", True, False),
    ("PETCT_aaa", "study-2", False, True),
    ("PETCT_bbb", "s1", True, False),
    ("PETCT_ccc", "s1", False, False),
    (None, "fdg_ddd_2001-01-01", True, False),
    (None, "fdg_ddd_2003-05-05", False, False),
    (None, "other_case", True, False),
]
CASES = {
    "PETCT_aaa_study_1": "PETCT_aaa",
    "PETCT_aaa_study-2": "PETCT_aaa",
    "PETCT_bbb_s1": "PETCT_bbb",
    "PETCT_ccc_s1": "PETCT_ccc",
    "fdg_ddd_2001-01-01": "fdg_ddd",
    "fdg_ddd_2003-05-05": "fdg_ddd",
    "other_case": "other_case",
}
STUDY_OF_CASE = dict(zip(CASES, [(p, s) for p, s, _, _ in RELEASE], strict=True))


def quiet(_: str) -> None:
    pass


def save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    nib.save(nib.Nifti1Image(array, affine), str(path))


def linear_pet(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """SUV = 10 + 0.5 x + 0.25 y - 0.1 z in world mm: trilinear resampling reproduces it exactly."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (10 + 0.5 * xyz[..., 0] + 0.25 * xyz[..., 1] - 0.1 * xyz[..., 2]).astype(np.float32)


def noisy_ct(rng: np.random.Generator) -> np.ndarray:
    """A CT in HU: -1000 HU air around a soft-tissue block, plus noise (plausible, so only the faults fail)."""
    ct = np.full(SHAPE, -1000.0, np.float32)
    ct[2:-2, 2:-2, 1:-1] = 40.0
    return (ct + rng.normal(0, 20, SHAPE)).astype(np.float32)


def write_study(folder: Path, seed: int, lesion: bool, coarse_pet: bool = False) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    save(noisy_ct(rng), CT_AFFINE, folder / "CTres.nii.gz")
    if coarse_pet:
        save(linear_pet(COARSE_PET_AFFINE, COARSE_PET_SHAPE), COARSE_PET_AFFINE, folder / "SUV.nii.gz")
    else:
        save(rng.gamma(2.0, 1.0, SHAPE).astype(np.float32), CT_AFFINE, folder / "SUV.nii.gz")
    label = np.zeros(SHAPE, np.uint8)
    if lesion:
        label[4:7, 3:6, 2:5] = 1
    save(label, CT_AFFINE, folder / "SEG.nii.gz")


def study_folder(src: Path, case: str) -> Path:
    patient, study = STUDY_OF_CASE[case]
    return src / patient / study if patient else src / study


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("release") / "src"
    for seed, (patient, study, lesion, coarse) in enumerate(RELEASE):
        write_study(src / patient / study if patient else src / study, seed, lesion, coarse)
    (src / "README.txt").write_text("release notes, not a study\n")
    return src


@pytest.fixture(scope="module")
def converted(release: Path) -> Path:
    dst = release.parent / "Dataset901_autoPET"
    prepare_dataset(release, dst, seed=3, log=quiet)
    return dst


def read(path: Path) -> object:
    return json.loads(path.read_text())


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------------------------- conversion


def test_release_converted_to_nnunet_layout(release: Path, converted: Path) -> None:
    expected = ["dataset.json", "patients.json", "splits_final.json", "datalist_all.json", "imagesTr", "labelsTr"]
    expected += [f"datalist_fold{k}.json" for k in range(5)]
    expected += [f"imagesTr/{case}_000{c}.nii.gz" for case in CASES for c in (0, 1)]
    expected += [f"labelsTr/{case}.nii.gz" for case in CASES]
    assert listing(converted) == sorted(expected)
    assert read(converted / "dataset.json") == {
        "name": "Dataset901_autoPET",
        "description": read(converted / "dataset.json")["description"],
        "channel_names": {"0": "CT", "1": "PET"},
        "labels": {"background": 0, "lesion": 1},
        "numTraining": 7,
        "file_ending": ".nii.gz",
    }
    assert read(converted / "patients.json") == CASES
    for case in CASES:
        folder = study_folder(release, case)
        assert (converted / f"imagesTr/{case}_0000.nii.gz").read_bytes() == (folder / "CTres.nii.gz").read_bytes()
        assert (converted / f"labelsTr/{case}.nii.gz").read_bytes() == (folder / "SEG.nii.gz").read_bytes()
        if case != "PETCT_aaa_study-2":  # same grid: copied byte for byte
            assert (converted / f"imagesTr/{case}_0001.nii.gz").read_bytes() == (folder / "SUV.nii.gz").read_bytes()


def test_coarser_pet_resampled_onto_ct_grid(converted: Path) -> None:
    ct = nib.load(str(converted / "imagesTr/PETCT_aaa_study-2_0000.nii.gz"))
    pet = nib.load(str(converted / "imagesTr/PETCT_aaa_study-2_0001.nii.gz"))
    assert pet.shape == SHAPE
    np.testing.assert_allclose(pet.affine, CT_AFFINE)
    np.testing.assert_allclose(pet.affine, ct.affine)
    np.testing.assert_allclose(pet.get_fdata(), linear_pet(CT_AFFINE, SHAPE), atol=1e-4)


def test_folds_keep_each_patient_in_one_fold(converted: Path) -> None:
    splits = read(converted / "splits_final.json")
    assert len(splits) == 5
    assert sorted(case for fold in splits for case in fold["val"]) == sorted(CASES)
    for fold in splits:
        assert sorted(fold["train"] + fold["val"]) == sorted(CASES)
    assert patients_split_across_folds(splits, CASES) == []
    fold_of = {case: k for k, fold in enumerate(splits) for case in fold["val"]}
    assert fold_of["PETCT_aaa_study_1"] == fold_of["PETCT_aaa_study-2"]
    assert fold_of["fdg_ddd_2001-01-01"] == fold_of["fdg_ddd_2003-05-05"]
    assert sorted(len(fold["val"]) for fold in splits) == [1, 1, 1, 2, 2]


def test_datalists_load_with_monai(converted: Path) -> None:
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    splits = read(converted / "splits_final.json")
    for k, fold in enumerate(splits):
        path = converted / f"datalist_fold{k}.json"
        validation = load_decathlon_datalist(path, True, "validation", base_dir=converted)
        training = load_decathlon_datalist(path, True, "training", base_dir=converted)
        assert [item["case"] for item in validation] == fold["val"]
        assert [item["case"] for item in training] == fold["train"]
        for item in validation + training:
            assert item["patient"] == CASES[item["case"]]
            assert all(Path(p).is_file() for p in item["image"]) and Path(item["label"]).is_file()
    everything = read(converted / "datalist_all.json")
    assert list(everything) == ["training"]
    assert everything["training"] == [datalist_item(case, CASES[case]) for case in sorted(CASES)]
    item = load_decathlon_datalist(converted / "datalist_all.json", True, "training", base_dir=converted)[0]
    loaded = LoadImaged(keys=["image", "label"], ensure_channel_first=True)(item)
    assert tuple(loaded["image"].shape) == (2, *SHAPE)
    ct = nib.load(str(converted / f"imagesTr/{item['case']}_0000.nii.gz")).get_fdata()
    np.testing.assert_allclose(loaded["image"][0].numpy(), ct, rtol=1e-6)


def test_conversion_is_deterministic_and_workers_agree(release: Path, converted: Path, tmp_path: Path) -> None:
    again = tmp_path / "Dataset901_autoPET"
    again.mkdir()
    (again / "old.txt").write_text("replaced")
    prepare_dataset(release, again, seed=3, workers=2, overwrite=True, log=quiet)
    assert listing(again) == listing(converted)
    for path in converted.rglob("*.*"):
        assert (again / path.relative_to(converted)).read_bytes() == path.read_bytes(), path.name


# ---------------------------------------------------------------------------------------------- splits


@pytest.mark.parametrize(
    "case, patient",
    [
        ("fdg_0011f3deaf_03-23-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445", "fdg_0011f3deaf"),
        ("psma_95b833d46f153cd2_2018-04-16", "psma_95b833d46f153cd2"),
        ("PSMA_abc_2019", "PSMA_abc"),
        ("TCIA_001", "TCIA_001"),  # not a tracer prefix: the whole id
        ("fdg_abc", "fdg_abc"),  # no study part: the whole id
        ("other", "other"),
    ],
)
def test_patient_of_case(case: str, patient: str) -> None:
    assert patient_of_case(case) == patient


def cohort(n_patients: int = 40) -> dict[str, str]:
    """Patients with 1-3 studies each (patient i has 1 + i % 3)."""
    return {f"p{i:02d}_s{j}": f"p{i:02d}" for i in range(n_patients) for j in range(1 + i % 3)}


def test_patient_folds_balanced_grouped_and_seeded() -> None:
    patients = cohort()
    splits = make_patient_folds(patients, n_folds=5, seed=0)
    sizes = [len(fold["val"]) for fold in splits]
    assert sum(sizes) == len(patients) == 79 and max(sizes) - min(sizes) <= 3
    assert patients_split_across_folds(splits, patients) == []
    assert check_splits(splits, patients, "splits_final.json") == splits
    reordered = dict(reversed(list(patients.items())))
    assert make_patient_folds(reordered, n_folds=5, seed=0) == splits
    assert make_patient_folds(patients, n_folds=5, seed=1) != splits


def test_patient_folds_need_enough_patients() -> None:
    with pytest.raises(ValueError, match="3 patient"):
        make_patient_folds({"a": "a", "b1": "b", "b2": "b", "c": "c"}, n_folds=5)
    with pytest.raises(ValueError, match="at least 2"):
        make_patient_folds(cohort(), n_folds=1)


@pytest.mark.parametrize(
    "splits, fragment",
    [
        ([{"train": ["b"], "val": ["a", "x"]}, {"train": ["a"], "val": ["b"]}], "not in the dataset: x"),
        ([{"train": ["b"], "val": []}, {"train": [], "val": ["b"]}], "leaves out 1 case of the dataset: a"),
        ([{"train": [], "val": ["a", "b"]}, {"train": ["b"], "val": ["a"]}], "validated in folds 0 and 1"),
        ([{"train": ["a", "b"], "val": ["a"]}], "in both train and val"),
        ({"train": [], "val": []}, "list of folds"),
    ],
)
def test_bad_splits_rejected(splits: object, fragment: str) -> None:
    with pytest.raises(InputDataError, match=fragment) as error:
        check_splits(splits, ["a", "b"], "/data/splits_final.json")
    assert error.value.path == "/data/splits_final.json"


def test_case_ids_sanitised_and_unique() -> None:
    assert sanitise_case_id("PETCT_0a_03-23-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445") == (
        "PETCT_0a_03-23-2003-NA-PET-CT_Ganzkoerper_primaer_mit_KM-10445"
    )
    assert sanitise_case_id("..hidden/") == "hidden" and sanitise_case_id("???") == "case"
    assert unique_case_ids(["a b", "a_b", "a  b"]) == ["a_b", "a_b_2", "a_b_3"]
    assert unique_case_ids(["x", "x", "x_2"]) == ["x", "x_3", "x_2"]
    assert closest_name("SUV.nii.gz", ["Suv.nii.gz", "notes.txt"]) == "Suv.nii.gz"
    assert closest_name("SEG.nii.gz", ["notes.txt"]) is None


# ---------------------------------------------------------------------------------------------- nnU-Net input


def make_nnunet(folder: Path, cases: list[str], test_cases: tuple[str, ...] = ()) -> None:
    for sub in ("imagesTr", "labelsTr") + (("imagesTs",) if test_cases else ()):
        (folder / sub).mkdir(parents=True)
    meta = {
        "channel_names": {"0": "CT", "1": "PET"},
        "labels": {"background": 0, "tumor": 1},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(meta))
    rng = np.random.default_rng(0)
    for case in cases + list(test_cases):
        images = folder / ("imagesTs" if case in test_cases else "imagesTr")
        save(noisy_ct(rng), CT_AFFINE, images / f"{case}_0000.nii.gz")
        save(rng.gamma(2.0, 1.0, SHAPE).astype(np.float32), CT_AFFINE, images / f"{case}_0001.nii.gz")
        if case not in test_cases:
            label = (rng.random(SHAPE) > 0.95).astype(np.uint8) if len(case) % 2 else np.zeros(SHAPE, np.uint8)
            save(label, CT_AFFINE, folder / "labelsTr" / f"{case}.nii.gz")


NNUNET_CASES = [
    "fdg_p1_2001-01-01",
    "fdg_p1_2002-02-02",
    "psma_p2_2010-10-10",
    "fdg_p3_2005",
    "TCIA_004",
    "psma_p5_2011",
]


def test_default_split_has_one_fold_per_patient_below_five_patients(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset903_few"
    cases = ["fdg_p1_2002-02-02", "fdg_p1_2003-03-03", "fdg_p2_2004", "TCIA_004"]  # 3 patients
    make_nnunet(dataset, cases)
    prepare_dataset(dataset, log=quiet)
    splits = read(dataset / "splits_final.json")
    patients = read(dataset / "patients.json")
    assert len(splits) == 3 and patients_split_across_folds(splits, patients) == []


def test_nnunet_dataset_prepared_in_place(tmp_path: Path) -> None:
    from monai.data import load_decathlon_datalist

    dataset = tmp_path / "Dataset902_x"
    make_nnunet(dataset, NNUNET_CASES, test_cases=("fdg_p9_2020",))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in dataset.rglob("*.nii.gz")}
    result = prepare_dataset(dataset, n_folds=3, log=quiet)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in dataset.rglob("*.nii.gz")} == before
    patients = read(dataset / "patients.json")
    assert patients == {case: patient_of_case(case) for case in NNUNET_CASES}
    assert patients["fdg_p1_2002-02-02"] == "fdg_p1" and patients["TCIA_004"] == "TCIA_004"
    splits = read(dataset / "splits_final.json")
    assert len(splits) == 3 and patients_split_across_folds(splits, patients) == []
    assert result.splits == splits and result.test_cases == ["fdg_p9_2020"] and not result.converted
    testing = load_decathlon_datalist(dataset / "datalist_all.json", True, "testing", base_dir=dataset)
    assert testing == [
        {
            "image": [
                str(dataset / "imagesTs/fdg_p9_2020_0000.nii.gz"),
                str(dataset / "imagesTs/fdg_p9_2020_0001.nii.gz"),
            ],
            "case": "fdg_p9_2020",
            "patient": "fdg_p9",
        }
    ]
    assert len(load_decathlon_datalist(dataset / "datalist_all.json", True, "training", base_dir=dataset)) == 6


def test_converted_dataset_reused_in_place_keeps_its_folds(converted: Path, tmp_path: Path) -> None:
    copy = tmp_path / "Dataset901_autoPET"
    shutil.copytree(converted, copy)
    result = prepare_dataset(copy, copy, n_folds=5, seed=99, log=quiet)
    for path in converted.glob("*.json"):  # patients.json groups "PETCT_aaa_study_1" under "PETCT_aaa" again
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name
    assert result.patients == CASES


def test_existing_splits_honoured(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset903_x"
    make_nnunet(dataset, NNUNET_CASES)
    mine = [  # patient fdg_p1 is validated in both folds: honoured, with a warning
        {"train": NNUNET_CASES[1:], "val": NNUNET_CASES[:1]},
        {"train": NNUNET_CASES[:1], "val": NNUNET_CASES[1:]},
    ]
    (dataset / "splits_final.json").write_text(json.dumps(mine))
    original = (dataset / "splits_final.json").read_bytes()
    lines: list[str] = []
    prepare_dataset(dataset, log=lines.append)
    assert lines == ["warning: splits_final.json validates 1 patient in more than one fold"]
    assert (dataset / "splits_final.json").read_bytes() == original
    assert not (dataset / "datalist_fold2.json").exists()
    for k, fold in enumerate(mine):
        datalist = read(dataset / f"datalist_fold{k}.json")
        assert [item["case"] for item in datalist["validation"]] == sorted(fold["val"])
        assert [item["case"] for item in datalist["training"]] == sorted(fold["train"])
    with pytest.raises(InputDataError, match="has 2 folds, not the 5") as error:
        prepare_dataset(dataset, n_folds=5, log=quiet)
    assert error.value.path == str(dataset / "splits_final.json")


def _nnunet_mutations() -> list:
    def rename_pet(d: Path) -> None:
        (d / "imagesTr/fdg_p3_2005_0001.nii.gz").rename(d / "imagesTr/fdg_p3_2005_0001.nii")

    def drop_label(d: Path) -> None:
        (d / "labelsTr/TCIA_004.nii.gz").unlink()

    def move_pet(d: Path) -> None:
        save(np.ones(SHAPE, np.float32), CT_AFFINE + np.diag([0, 0, 0.1, 0]), d / "imagesTr/TCIA_004_0001.nii.gz")

    def swap_channels(d: Path) -> None:
        meta = read(d / "dataset.json")
        meta["channel_names"] = {"0": "PET", "1": "CT"}
        (d / "dataset.json").write_text(json.dumps(meta))

    def bad_split(d: Path) -> None:
        (d / "splits_final.json").write_text(json.dumps([{"train": NNUNET_CASES, "val": ["ghost"]}]))

    def short_patients(d: Path) -> None:
        (d / "patients.json").write_text(json.dumps({case: "p" for case in NNUNET_CASES[1:]}))

    def nan_label(d: Path) -> None:
        save(np.full(SHAPE, 0.5, np.float32), CT_AFFINE, d / "labelsTr/fdg_p3_2005.nii.gz")

    return [
        pytest.param(rename_pet, "imagesTr/fdg_p3_2005_0001.nii.gz", "'fdg_p3_2005_0001.nii'", id="misspelled"),
        pytest.param(drop_label, "imagesTr/TCIA_004_0000.nii.gz", "no label file", id="image-without-label"),
        pytest.param(move_pet, "imagesTr/TCIA_004_0001.nii.gz", "not resampled", id="pet-off-grid"),
        pytest.param(swap_channels, "dataset.json", "CT = 0 and PET = 1", id="channel-order"),
        pytest.param(bad_split, "splits_final.json", "ghost", id="unknown-split-case"),
        pytest.param(short_patients, "patients.json", "no patient for 1 case", id="patients-json"),
        pytest.param(nan_label, "labelsTr/fdg_p3_2005.nii.gz", "other than 0/1", id="label-values"),
    ]


@pytest.mark.parametrize("mutate, culprit, fragment", _nnunet_mutations())
def test_bad_nnunet_input_rejected_without_writing(
    tmp_path: Path, mutate: Callable[[Path], None], culprit: str, fragment: str
) -> None:
    dataset = tmp_path / "Dataset904_x"
    make_nnunet(dataset, NNUNET_CASES)
    mutate(dataset)
    before = listing(dataset)
    with pytest.raises(InputDataError, match=fragment) as error:
        prepare_dataset(dataset, log=quiet)
    assert error.value.path == str(dataset / culprit)
    assert listing(dataset) == before


# ---------------------------------------------------------------------------------------------- bad release input


def _release_mutations() -> list:
    def delete(name: str) -> Callable[[Path], None]:
        return lambda study: (study / name).unlink()

    def rename(old: str, new: str) -> Callable[[Path], None]:
        return lambda study: (study / old).rename(study / new)

    def overwrite(name: str, array: np.ndarray, affine: np.ndarray = CT_AFFINE) -> Callable[[Path], None]:
        return lambda study: save(array, affine, study / name)

    def missing_seg_beside_tcia_extras(study: Path) -> None:
        (study / "SEG.nii.gz").unlink()
        shutil.copy(study / "CTres.nii.gz", study / "CT.nii.gz")
        shutil.copy(study / "SUV.nii.gz", study / "PET.nii.gz")

    def corrupt(study: Path) -> None:
        (study / "CTres.nii.gz").write_bytes(b"not a NIfTI file")

    ones, zero_mask = np.ones(SHAPE, np.float32), np.zeros(SHAPE, np.uint8)
    nan_ct = np.zeros(SHAPE, np.float32)
    nan_ct[1, 2, 3] = np.nan
    far = CT_AFFINE.copy()
    far[:3, 3] += 1000.0
    shifted = CT_AFFINE.copy()
    shifted[0, 3] += 1.0
    two_label = np.zeros(SHAPE, np.uint8)
    two_label[0, 0, 0] = 2
    return [
        pytest.param(delete("SUV.nii.gz"), "SUV.nii.gz", r"missing \(the PET in SUV\)$", id="missing-pet"),
        pytest.param(rename("SUV.nii.gz", "SUV.nii"), "SUV.nii.gz", "'SUV.nii', which looks like it", id="SUV.nii"),
        pytest.param(rename("SUV.nii.gz", "Suv.nii.gz"), "SUV.nii.gz", "'Suv.nii.gz'", id="Suv.nii.gz"),
        pytest.param(rename("CTres.nii.gz", "CTRes.nii.gz"), "CTres.nii.gz", "'CTRes.nii.gz'", id="CTRes.nii.gz"),
        pytest.param(missing_seg_beside_tcia_extras, "SEG.nii.gz", r"lesion mask\)$", id="missing-seg"),
        pytest.param(overwrite("SUV.nii.gz", ones, far), "SUV.nii.gz", "one grid", id="no-overlap"),
        pytest.param(overwrite("CTres.nii.gz", nan_ct), "CTres.nii.gz", "non-finite", id="nan-ct"),
        pytest.param(overwrite("SEG.nii.gz", two_label), "SEG.nii.gz", "other than 0/1: 2", id="label-2"),
        pytest.param(overwrite("SEG.nii.gz", np.zeros((12, 12, 9), np.uint8)), "SEG.nii.gz", "shape", id="seg-shape"),
        pytest.param(overwrite("SEG.nii.gz", zero_mask, shifted), "SEG.nii.gz", "CT grid", id="seg-grid"),
        pytest.param(overwrite("CTres.nii.gz", np.zeros((12, 12), np.float32)), "CTres.nii.gz", "3D", id="2d-ct"),
        pytest.param(overwrite("SUV.nii.gz", np.ones((12, 12, 1), np.float32)), "SUV.nii.gz", "2D", id="flat-pet"),
        pytest.param(overwrite("CTres.nii.gz", np.zeros((0, 12, 10), np.float32)), "CTres.nii.gz", "empty", id="empty"),
        pytest.param(corrupt, "CTres.nii.gz", "cannot be read", id="corrupt"),
    ]


@pytest.mark.parametrize("mutate, culprit, fragment", _release_mutations())
def test_bad_release_input_leaves_no_output(
    release: Path, tmp_path: Path, mutate: Callable[[Path], None], culprit: str, fragment: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(release, src)
    mutate(study_folder(src, "PETCT_bbb_s1"))
    dst = tmp_path / "out"
    with pytest.raises(InputDataError, match=fragment) as error:
        prepare_dataset(src, dst, log=quiet)
    assert error.value.path == str(src / "PETCT_bbb/s1" / culprit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no dst, no temporary folder
    dst.mkdir()
    (dst / "keep.txt").write_text("an existing dataset")
    with pytest.raises(InputDataError, match=fragment):
        prepare_dataset(src, dst, overwrite=True, log=quiet)
    assert listing(dst) == ["keep.txt"] and (dst / "keep.txt").read_text() == "an existing dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_every_bad_study_is_listed(release: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(release, src)
    for case in ("PETCT_ccc_s1", "other_case"):
        save(np.full(SHAPE, 3, np.uint8), CT_AFFINE, study_folder(src, case) / "SEG.nii.gz")
    lines: list[str] = []
    with pytest.raises(InputDataError, match="and 1 more studies") as error:
        prepare_dataset(src, tmp_path / "out", log=lines.append)
    assert error.value.path == str(src / "PETCT_ccc/s1/SEG.nii.gz")
    assert lines[0] == "2 of 7 studies cannot be used:" and "other_case/SEG.nii.gz" in lines[2]


def test_layout_problems(release: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(release, src)
    (src / "PETCT_eee").mkdir()  # an empty study folder
    with pytest.raises(InputDataError, match="missing") as error:
        prepare_dataset(src, tmp_path / "out", log=quiet)
    assert error.value.path == str(src / "PETCT_eee/CTres.nii.gz")
    (src / "PETCT_eee").rmdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "x.txt").write_text("x")
    with pytest.raises(InputDataError, match="--overwrite") as error:
        prepare_dataset(src, dst, log=quiet)
    assert error.value.path == str(dst) and listing(dst) == ["x.txt"]
    with pytest.raises(InputDataError, match="outside --src"):
        prepare_dataset(src, src / "nnunet", log=quiet)
    with pytest.raises(InputDataError, match="give --dst"):
        prepare_dataset(src, log=quiet)
    with pytest.raises(InputDataError, match="too few|cannot fill 9 folds"):
        prepare_dataset(src, tmp_path / "new", n_folds=9, log=quiet)
    (src / "labelsTr").mkdir()
    with pytest.raises(InputDataError, match="looks like an nnU-Net raw dataset") as error:
        prepare_dataset(src, tmp_path / "new", log=quiet)
    assert error.value.path == str(src / "dataset.json")


def test_cli(release: Path, tmp_path: Path, bundle_root: Path) -> None:
    dst = tmp_path / "Dataset905_cli"
    command = [sys.executable, "-m", "scripts.data.prepare", "--src", str(release), "--dst", str(dst), "--workers", "2"]
    done = subprocess.run(command, cwd=bundle_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "7 studies of 5 patients (4 with lesions, 3 negative)" in done.stdout
    assert "PET resampled onto the CT grid for 1 study" in done.stdout
    assert done.stdout.count("  fold ") == 5 and (dst / "datalist_fold4.json").is_file()
    done = subprocess.run(command, cwd=bundle_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"error: {dst}: exists and is not empty" in done.stderr
