# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Lesion-wise detection (``scripts.evaluation.lesion_detection``) against hand-counted answers."""

import nibabel as nib
import numpy as np
import pytest

from scripts.errors import InputDataError
from scripts.evaluation.lesion_detection import (
    StudyDetection,
    detect_files,
    detection_summary,
    study_detection,
    volume_bin,
)


def _masks():
    gt = np.zeros((30, 30, 30), dtype=bool)
    pred = np.zeros_like(gt)
    gt[1:3, 1:3, 1:3] = True  # 8 voxels = 0.8 ml at 0.1 ml/voxel: hit by one voxel
    pred[2, 2, 2] = True
    gt[10:15, 10:15, 10:14] = True  # 100 voxels = 10 ml (bin 1-10): missed
    gt[20:27, 20:27, 20:27] = True  # 343 voxels = 34.3 ml: hit, the prediction spills over
    pred[19:24, 20:27, 20:27] = True
    pred[5, 25, 25] = True  # two false-positive components (corner neighbours are separate)
    pred[6, 26, 26] = True
    return gt, pred


def test_study_detection_counts_hits_and_false_positive_components():
    gt, pred = _masks()
    result = study_detection(gt, pred, voxel_ml=0.1)
    assert sorted(zip(result.lesion_ml, result.lesion_hit, strict=True)) == [
        (pytest.approx(0.8), True),
        (pytest.approx(10.0), False),
        (pytest.approx(34.3), True),
    ]
    assert result.fp_components == 2


def test_volume_bins_have_closed_middle_bin():
    assert [volume_bin(v) for v in (0.2, 1.0, 10.0, 10.01)] == ["<1 ml", "1-10 ml", "1-10 ml", ">10 ml"]


def test_detection_summary_over_studies():
    studies = [
        StudyDetection((0.5, 2.0, 20.0), (False, True, True), 1),
        StudyDetection((), (), 4),  # a negative study: only false positives count
    ]
    summary = detection_summary(studies)
    assert summary["studies"] == 2
    assert summary["fp_components_per_study"] == 2.5
    hits = summary["lesions_hit"]
    assert (hits["<1 ml"]["hit"], hits["<1 ml"]["lesions"]) == (0, 1)
    assert hits["1-10 ml"]["share"] == 1.0 and hits[">10 ml"]["share"] == 1.0
    assert hits["all"]["share"] == pytest.approx(2 / 3)
    assert np.isnan(detection_summary([StudyDetection((), (), 0)])["lesions_hit"]["all"]["share"])


def test_detect_files_reads_masks_and_rejects_another_grid(tmp_path):
    gt, pred = _masks()
    affine = np.diag([2.0, 2.0, 25.0, 1.0])  # 0.1 ml voxels
    nib.save(nib.Nifti1Image(gt.astype(np.uint8), affine), tmp_path / "gt.nii.gz")
    nib.save(nib.Nifti1Image(pred.astype(np.uint8), affine), tmp_path / "pred.nii.gz")
    result = detect_files([("case", tmp_path / "gt.nii.gz", tmp_path / "pred.nii.gz")])["case"]
    assert result.fp_components == 2 and sum(result.lesion_hit) == 2
    assert sum(result.lesion_ml) == pytest.approx(0.1 * gt.sum())
    nib.save(nib.Nifti1Image(pred.astype(np.uint8), np.diag([3.0, 2.0, 25.0, 1.0])), tmp_path / "other.nii.gz")
    with pytest.raises(InputDataError, match="other.nii.gz"):
        detect_files([("case", tmp_path / "gt.nii.gz", tmp_path / "other.nii.gz")])
