"""The MONAI Label studies folder: one listed CT per study, PET in pet/, labels in labels/final/."""

import json
import os

import nibabel as nib
import numpy as np
import pytest

from scripts.data.monailabel_studies import LABEL_FOLDER, build_studies_folder, main
from scripts.errors import InputDataError
from scripts.transforms import find_pet_partner


def _nifti(path, value=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full((4, 4, 4), value, np.float32), np.eye(4)), str(path))


@pytest.fixture
def release(tmp_path):
    """Two studies of one patient and one of another, autoPET release layout."""
    root = tmp_path / "release"
    for patient, study in (("PETCT_a", "01-01-2010-NA-PET-CT 1"), ("PETCT_a", "02-02-2011-x"), ("PETCT_b", "s")):
        for name, value in (("CTres.nii.gz", -100.0), ("SUV.nii.gz", 2.0), ("SEG.nii.gz", 0.0)):
            _nifti(root / patient / study / name, value)
    return root


@pytest.fixture
def nnunet(tmp_path):
    """Two labelled training cases and one unlabelled test case, nnU-Net raw layout."""
    root = tmp_path / "Dataset001_x"
    for case in ("c1", "c2"):
        _nifti(root / "imagesTr" / f"{case}_0000.nii.gz", -100.0)
        _nifti(root / "imagesTr" / f"{case}_0001.nii.gz", 2.0)
        _nifti(root / "labelsTr" / f"{case}.nii.gz")
    _nifti(root / "imagesTs" / "t1_0000.nii.gz", -100.0)
    _nifti(root / "imagesTs" / "t1_0001.nii.gz", 2.0)
    meta = {"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "lesion": 1}, "numTraining": 2}
    (root / "dataset.json").write_text(json.dumps({**meta, "file_ending": ".nii.gz"}))
    return root


def _top_level_niftis(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".nii.gz"))


def test_release_becomes_one_ct_per_study_with_pet_and_label_beside(release, tmp_path):
    built = build_studies_folder(release, tmp_path / "studies")
    names = ["PETCT_a_01-01-2010-NA-PET-CT_1", "PETCT_a_02-02-2011-x", "PETCT_b_s"]
    assert sorted(built.studies) == names == sorted(built.labelled)
    assert _top_level_niftis(built.folder) == [f"{n}.nii.gz" for n in names]
    for name in names:
        ct = built.folder / f"{name}.nii.gz"
        pet = find_pet_partner(ct)
        assert pet == built.folder / "pet" / f"{name}.nii.gz"
        assert (
            float(nib.load(str(ct)).get_fdata().mean()) == -100.0
            and float(nib.load(str(pet)).get_fdata()[0, 0, 0]) == 2.0
        )
        assert (built.folder / LABEL_FOLDER / f"{name}.nii.gz").is_file()
    assert built.linked and os.path.samefile(
        built.folder / f"{names[-1]}.nii.gz", release / "PETCT_b" / "s" / "CTres.nii.gz"
    )


def test_nnunet_dataset_keeps_test_cases_unlabelled_and_copy_copies(nnunet, tmp_path):
    built = build_studies_folder(nnunet, tmp_path / "studies", copy=True)
    assert _top_level_niftis(built.folder) == ["c1.nii.gz", "c2.nii.gz", "t1.nii.gz"]
    assert sorted(built.labelled) == ["c1", "c2"]
    assert sorted(p.name for p in (built.folder / LABEL_FOLDER).iterdir()) == ["c1.nii.gz", "c2.nii.gz"]
    assert not built.linked and not os.path.samefile(built.folder / "t1.nii.gz", nnunet / "imagesTs" / "t1_0000.nii.gz")
    assert find_pet_partner(built.folder / "t1.nii.gz") == built.folder / "pet" / "t1.nii.gz"


def test_existing_destination_or_broken_source_fails_naming_it_and_leaves_nothing(release, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(InputDataError, match="exists already"):
        build_studies_folder(release, taken)
    (release / "PETCT_b" / "s" / "SUV.nii.gz").unlink()
    assert main(["--src", str(release), "--dst", str(tmp_path / "studies")]) == 1
    assert "SUV.nii.gz" in capsys.readouterr().err
    assert not (tmp_path / "studies").exists() and not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
