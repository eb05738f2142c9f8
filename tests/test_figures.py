# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the per-study figures: slice choice, geometry, titles with the autoPET metrics, files and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from scripts.atomic_io import save_nifti
from scripts.errors import InputDataError
from scripts.evaluation.autopet_metrics import case_metrics
from scripts.evaluation.figure_volumes import choose_focus, largest_component, load_study, resample_axis_aligned
from scripts.evaluation.figures import figure_title, main, render_figures, render_study_figure

SHAPE = (20, 18, 30)
SPACING = (4.0, 4.0, 5.0)
LAS = np.diag([-SPACING[0], SPACING[1], SPACING[2], 1.0])  # autoPET CTres files are LAS


def _png_text(path: Path) -> tuple[dict[str, str], tuple[int, int]]:
    """The PNG's text fields (Title, Description) and its size in pixels."""
    with Image.open(path) as image:
        image.load()
        return dict(image.text), image.size


def _write_study(folder: Path, gt: np.ndarray | None, pred: np.ndarray | None) -> dict[str, Path]:
    """A tiny body (a box of soft tissue in air, warm PET) with the given masks, all on one LAS grid."""
    ct = np.full(SHAPE, -1000.0, dtype=np.float32)
    ct[3:17, 3:15, 2:28] = 40.0
    pet = np.where(ct > -500, 1.0, 0.0).astype(np.float32)
    paths = {"ct": folder / "case_0000.nii.gz", "pet": folder / "case_0001.nii.gz"}
    if gt is not None:
        pet[gt] = 8.0
        paths["label"] = folder / "labels" / "case.nii.gz"
        save_nifti(gt.astype(np.uint8), LAS, paths["label"])
    if pred is not None:
        paths["pred"] = folder / "pred" / "case.nii.gz"
        save_nifti(pred.astype(np.uint8), LAS, paths["pred"])
    save_nifti(ct, LAS, paths["ct"])
    save_nifti(pet, LAS, paths["pet"])
    return paths


def _two_lesions() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros(SHAPE, dtype=bool)
    gt[5:9, 5:9, 10:14] = True  # 64 voxels, the largest
    gt[12:14, 10:12, 20:22] = True  # 8 voxels
    pred = np.zeros(SHAPE, dtype=bool)
    pred[6:9, 5:9, 10:14] = True  # overlaps the large lesion, misses the small one
    pred[4:6, 12:14, 24:26] = True  # a false positive
    return gt, pred


def test_largest_component_known_answer() -> None:
    mask = np.zeros((12, 12, 12), dtype=bool)
    mask[2:5, 2:5, 4:7] = True  # a 3x3x3 cube ...
    mask[1:6, 1:6, 5] = True  # ... with a 5x5 flare at z = 5: 27 + 16 = 43 voxels, widest at z = 5, centred (3, 3)
    mask[6:11, 6:11, 9] = True  # a 25-voxel plate elsewhere
    found = largest_component(mask)
    assert found is not None
    assert found.voxels == 43
    assert found.voxel == (3, 3, 5)


def test_largest_component_ignores_corner_contacts() -> None:
    mask = np.zeros((10, 10, 6), dtype=bool)
    mask[0:3, 0:3, 0:2] = True  # 18 voxels
    mask[3:6, 3:6, 2] = True  # 9 voxels, touches the first block only at corner (2, 2, 1)-(3, 3, 2)
    mask[6:9, 6:9, 3:5] = True  # 18 voxels, touches the plate only at a corner too
    mask[0:2, 7:9, 4] = True  # 4 voxels, isolated
    found = largest_component(mask)
    assert found is not None and found.voxels == 18  # 26-connectivity would merge 45 voxels
    assert found.voxel[2] == 0  # tie between z = 0 and 1 of the first block: the lowest slice wins
    assert largest_component(np.zeros((4, 4, 4), dtype=bool)) is None


def test_choose_focus_falls_back_to_prediction_then_body_centre() -> None:
    ct = np.full((10, 10, 10), -1000.0)
    ct[2:6, 4:8, 0:10] = 0.0  # body centroid (2.5 .. sampled every 4th voxel)
    gt = np.zeros(ct.shape, dtype=bool)
    pred = np.zeros(ct.shape, dtype=bool)
    pred[7, 7, 7] = True
    assert choose_focus(ct, gt, pred).source == "prediction"
    assert choose_focus(ct, gt, pred).voxel == (7, 7, 7)
    gt[1, 1, 1] = True
    assert choose_focus(ct, gt, pred).source == "ground truth"
    negative = choose_focus(ct, np.zeros_like(gt), np.zeros_like(pred))
    assert negative.source == "body centre" and negative.voxels == 0
    # Voxels sampled at indices 0, 4, 8: body ones are x = 4, y = 4, z = 0/4/8 -> centroid (4, 4, 4).
    assert negative.voxel == (4, 4, 4)


def test_load_study_reorients_to_ras_and_resamples_pet(tmp_path: Path) -> None:
    paths = _write_study(tmp_path, None, None)
    marker = np.zeros(SHAPE, dtype=np.uint8)
    marker[0, 0, 0] = 1  # LAS index 0 on x = patient's far left = last x index in RAS
    save_nifti(marker, LAS, tmp_path / "marker.nii.gz")
    coarse = np.ones((10, 9, 15), dtype=np.float32)  # half the resolution, same field of view
    coarse_affine = LAS.copy()
    coarse_affine[:3, :3] *= 2
    coarse_affine[:3, 3] = [-2.0, 2.0, 2.5]  # coarse voxel i spans fine voxels 2i and 2i + 1
    save_nifti(coarse, coarse_affine, tmp_path / "coarse_pet.nii.gz")
    volumes = load_study(paths["ct"], tmp_path / "coarse_pet.nii.gz", tmp_path / "marker.nii.gz")
    assert volumes.ct.shape == volumes.pet.shape == SHAPE
    assert volumes.spacing == SPACING
    assert volumes.voxel_ml == pytest.approx(4 * 4 * 5 / 1000)
    assert np.argwhere(volumes.pred).tolist() == [[SHAPE[0] - 1, 0, 0]]
    assert volumes.pet[5:15, 5:13, 5:25].min() == pytest.approx(1.0)  # interior of the coarse PET, resampled


def test_render_study_figure_with_ground_truth(tmp_path: Path) -> None:
    gt, pred = _two_lesions()
    paths = _write_study(tmp_path, gt, pred)
    out = render_study_figure(paths["ct"], paths["pet"], tmp_path / "figs" / "case.png", paths["pred"], paths["label"])
    assert out == tmp_path / "figs" / "case.png" and out.is_file()
    text, size = _png_text(out)
    assert size == (1300, 800)
    metrics = case_metrics(gt, pred, 4 * 4 * 5 / 1000)
    assert metrics.fpv_ml > 0 and metrics.fnv_ml > 0  # the title below carries non-trivial values
    expected = f"case  |  Dice {metrics.dice:.3f}  |  FPV {metrics.fpv_ml:.2f} ml  |  FNV {metrics.fnv_ml:.2f} ml"
    assert text["Title"] == expected
    assert "largest ground-truth lesion (5.12 ml)" in text["Description"]  # 64 voxels x 0.08 ml
    assert not list(out.parent.glob(".tmp-*"))


def test_prediction_only_and_negative_studies(tmp_path: Path) -> None:
    _, pred = _two_lesions()
    paths = _write_study(tmp_path, None, pred)
    out = render_study_figure(paths["ct"], paths["pet"], tmp_path / "pred_only.png", pred_path=paths["pred"])
    text, _ = _png_text(out)
    assert text["Title"] == "case  |  prediction 4.48 ml in 2 component(s)"  # (48 + 8) voxels x 0.08 ml
    assert "largest predicted component (3.84 ml)" in text["Description"]

    empty = np.zeros(SHAPE, dtype=bool)
    negative = _write_study(tmp_path / "negative", empty, empty)
    out = render_study_figure(
        negative["ct"], negative["pet"], tmp_path / "negative.png", negative["pred"], negative["label"], (0, 5)
    )
    text, size = _png_text(out)
    assert text["Title"] == "case  |  Dice n/a  |  FPV 0.00 ml  |  FNV n/a"
    assert "body centre" in text["Description"] and size == (1300, 800)


def test_title_without_masks_is_the_name() -> None:
    assert figure_title("study", None, None, 0.1) == "study"


def test_missing_and_bad_files_name_the_file(tmp_path: Path) -> None:
    gt, pred = _two_lesions()
    paths = _write_study(tmp_path, gt, pred)
    missing = tmp_path / "nowhere_0001.nii.gz"
    with pytest.raises(InputDataError, match="nowhere_0001.nii.gz: PET file not found"):
        render_study_figure(paths["ct"], missing, tmp_path / "x.png")
    soft = gt.astype(np.float32) * 0.7
    save_nifti(soft, LAS, tmp_path / "soft.nii.gz")
    with pytest.raises(InputDataError, match="soft.nii.gz: label values other than 0/1"):
        render_study_figure(paths["ct"], paths["pet"], tmp_path / "x.png", label_path=tmp_path / "soft.nii.gz")
    items = [{"image": [str(paths["ct"]), str(paths["pet"])]}]
    with pytest.raises(InputDataError, match=r"empty_dir/case\.nii\.gz: prediction file not found"):
        render_figures(items, tmp_path / "empty_dir", tmp_path / "out")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "out").exists()


def test_render_figures_and_cli_on_a_datalist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, pred = _two_lesions()
    paths = _write_study(tmp_path, gt, pred)
    items = [{"image": [str(paths["ct"]), str(paths["pet"])], "label": str(paths["label"])}]
    written = render_figures(items, paths["pred"].parent, tmp_path / "out")
    assert written == [tmp_path / "out" / "case.png"] and written[0].is_file()

    datalist = tmp_path / "datalist.json"
    entry = {"image": [paths["ct"].name, paths["pet"].name], "label": "labels/case.nii.gz"}
    datalist.write_text(json.dumps({"testing": [entry]}))
    code = main(["--items", str(datalist), "--pred", str(paths["pred"].parent), "--out", str(tmp_path / "cli")])
    assert code == 0
    text, _ = _png_text(tmp_path / "cli" / "case.png")
    assert text["Title"].startswith("case  |  Dice ")
    capsys.readouterr()
    assert main(["--items", str(tmp_path / "absent"), "--out", str(tmp_path / "cli2")]) == 2
    out, err = capsys.readouterr()
    assert not out and "absent" in err and err.startswith("error: ")


@pytest.mark.parametrize("order", [0, 1])
def test_resample_axis_aligned_matches_scipy(order: int) -> None:
    source = np.random.default_rng(0).random((7, 6, 5)).astype(np.float32)
    scale, offset, shape = (0.5, 0.75, 2.0), (-0.25, 0.3, 0.0), (15, 9, 4)
    expected = ndimage.affine_transform(source, scale, offset, output_shape=shape, order=order, cval=0.0)
    found = resample_axis_aligned(source, scale, offset, shape, order)
    interior = (slice(1, 13), slice(0, 7), slice(0, 3))  # away from half-voxel rounding ties at the edges
    np.testing.assert_allclose(found[interior], expected[interior], atol=1e-5)
    assert found[14].max() == 0  # 6.75 lies outside the 7-voxel source
