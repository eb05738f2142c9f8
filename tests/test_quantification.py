"""Lesion quantification against values computed by hand."""

import json
import math

import nibabel as nib
import numpy as np
import pytest

from scripts.errors import InputDataError
from scripts.evaluation.quantification import quantify, quantify_files, sphere_kernel


def test_volume_suvmax_suvmean_tlg_and_totals_by_hand():
    spacing = (2.0, 2.0, 3.0)  # 12 mm^3 = 0.012 ml per voxel
    mask = np.zeros((30, 30, 30), np.uint8)
    suv = np.ones((30, 30, 30), np.float32)
    mask[5:8, 5:8, 5:8] = 1  # lesion A: 27 voxels of SUV 5, one of them 9
    suv[5:8, 5:8, 5:8] = 5.0
    suv[6, 6, 6] = 9.0
    mask[20:22, 20, 20] = 1  # lesion B: 2 voxels of SUV 3 and 4
    suv[20, 20, 20], suv[21, 20, 20] = 3.0, 4.0
    result = quantify(mask, suv, spacing)
    assert result.lesion_count == 2
    a, b = sorted(result.lesions, key=lambda lesion: -lesion.voxels)
    assert a.voxels == 27 and a.volume_ml == pytest.approx(27 * 0.012)
    assert a.suv_max == 9.0 and a.suv_mean == pytest.approx((26 * 5 + 9) / 27)
    assert a.tlg == pytest.approx((26 * 5 + 9) / 27 * 27 * 0.012)
    assert b.suv_mean == pytest.approx(3.5) and b.tlg == pytest.approx(3.5 * 2 * 0.012)
    assert a.centroid_voxel == pytest.approx((6.0, 6.0, 6.0))
    assert result.mtv_ml == pytest.approx(29 * 0.012)
    assert result.total_tlg == pytest.approx(a.tlg + b.tlg)


def test_components_use_18_connectivity():
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[1, 1, 1] = mask[2, 2, 2] = 1  # corner contact only: two lesions
    mask[4, 4, 1] = mask[4, 3, 2] = 1  # edge contact: one lesion
    assert quantify(mask, np.ones((6, 6, 6), np.float32), (1, 1, 1)).lesion_count == 3


def test_suvpeak_is_the_best_1ml_sphere_mean():
    spacing = (1.0, 1.0, 1.0)
    kernel = sphere_kernel(spacing)
    radius = (3000 / (4 * math.pi)) ** (1 / 3)
    expected_count = sum(
        1 for i in range(-7, 8) for j in range(-7, 8) for k in range(-7, 8) if i * i + j * j + k * k <= radius**2
    )
    assert kernel.sum() == expected_count  # about 1 ml of 1 mm voxels
    suv = np.zeros((41, 41, 41), np.float32)
    suv[20, 20, 20] = 100.0
    mask = np.zeros_like(suv, dtype=np.uint8)
    mask[20, 20, 20] = 1
    lesion = quantify(mask, suv, spacing).lesions[0]
    assert lesion.suv_max == 100.0
    assert lesion.suv_peak == pytest.approx(100.0 / expected_count)
    uniform = np.full((41, 41, 41), 4.0, np.float32)
    big = np.zeros_like(mask)
    big[5:36, 5:36, 5:36] = 1
    assert quantify(big, uniform, spacing).lesions[0].suv_peak == pytest.approx(4.0)


def test_empty_mask_gives_no_lesions():
    result = quantify(np.zeros((5, 5, 5), np.uint8), np.ones((5, 5, 5), np.float32), (1, 1, 1))
    assert (result.lesion_count, result.mtv_ml, result.total_tlg, result.lesions) == (0, 0.0, 0.0, [])


def test_files_written_and_pet_on_a_coarser_grid_is_resampled(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[8:12, 8:12, 8:12] = 1
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "pred.nii.gz")
    coarse = np.diag([4.0, 4.0, 4.0, 1.0])
    coarse[:3, 3] = 1.0  # voxel centres of the 4 mm grid on the 2 mm grid's corners
    suv = np.full((10, 10, 10), 6.0, np.float32)
    suv[0, 0, 0] = 0.0  # background far from the lesion (a constant PET is implausible)
    nib.save(nib.Nifti1Image(suv, coarse), tmp_path / "suv.nii.gz")
    notes: list[str] = []
    result = quantify_files(tmp_path / "pred.nii.gz", tmp_path / "suv.nii.gz", tmp_path / "q.json", log=notes.append)
    assert result.lesion_count == 1 and result.lesions[0].suv_mean == pytest.approx(6.0)
    saved = json.loads((tmp_path / "q.json").read_text())
    assert saved["pet_resampling"].startswith("PET resampled trilinearly onto the mask's grid")
    assert notes == [f"{tmp_path / 'suv.nii.gz'}: {saved['pet_resampling']}"]
    assert saved["lesion_count"] == 1 and saved["mtv_ml"] == pytest.approx(64 * 0.008)
    rows = (tmp_path / "q.csv").read_text().splitlines()
    assert rows[0].startswith("index,voxels,volume_ml,suv_max,suv_mean,suv_peak,tlg") and len(rows) == 2


def test_missing_and_non_binary_inputs_name_the_file(tmp_path):
    with pytest.raises(InputDataError, match="pred.nii.gz: prediction file not found"):
        quantify_files(tmp_path / "pred.nii.gz", tmp_path / "suv.nii.gz", tmp_path / "q.json")
    nib.save(nib.Nifti1Image(np.full((4, 4, 4), 2, np.uint8), np.eye(4)), tmp_path / "pred.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), tmp_path / "suv.nii.gz")
    with pytest.raises(InputDataError, match="pred.nii.gz: label values other than 0/1"):
        quantify_files(tmp_path / "pred.nii.gz", tmp_path / "suv.nii.gz", tmp_path / "q.json")


def test_cli_reports_a_missing_file_on_stderr_and_fails(tmp_path, capsys):
    from scripts.evaluation.quantification import main

    out_file = tmp_path / "q.json"
    args = ["--pred", str(tmp_path / "none.nii.gz"), "--pet", str(tmp_path / "pet.nii.gz")]
    code = main([*args, "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 2 and not out
    assert err.startswith("error: ") and "none.nii.gz" in err
    assert not out_file.exists()
