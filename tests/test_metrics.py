# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the autoPET metrics: challenge test vectors, the real PSMA fixture, the CLI and the ignite handler."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from scipy import ndimage

from scripts.atomic_io import save_nifti
from scripts.evaluation.autopet_metrics import (
    CONNECTIVITY_18,
    CaseMetrics,
    affine_voxel_volume_ml,
    case_metrics,
    dice_score,
    false_negative_volume,
    false_positive_volume,
    foreground_boxes,
    interactive_auc,
    interactive_scores,
    nan_mean,
    nifti_voxel_volume_ml,
    summarize,
)
from scripts.evaluation.metric_handlers import AutoPETMetric, AutoPETMetricHandler
from scripts.evaluation.metrics import main

NAN = math.nan
LINE = [(0, 2, 2), (1, 2, 2), (2, 2, 2), (3, 2, 2), (4, 2, 2)]

# Test vectors of the autoPET notes (5x5x5 grid, voxel volume 1): GT voxels, predicted voxels, Dice, FPV, FNV.
TEST_VECTORS = [
    pytest.param([(1, 1, 1), (2, 2, 2)], [(1, 1, 1)], 2 / 3, 0.0, 1.0, id="corner neighbours are 2 lesions"),
    pytest.param([(1, 1, 1), (2, 2, 1)], [(1, 1, 1)], 2 / 3, 0.0, 0.0, id="edge neighbours are 1 lesion"),
    pytest.param([], LINE, NAN, 5.0, NAN, id="negative case"),
    pytest.param([(3, 3, 3), (3, 3, 4)], [], 0.0, 0.0, 2.0, id="empty prediction"),
    pytest.param([(1, 1, 1)], [(1, 1, 1), (2, 2, 2)], 2 / 3, 1.0, 0.0, id="corner FP is its own component"),
    pytest.param([], [], NAN, 0.0, NAN, id="negative case, empty prediction"),
    pytest.param([(2, 2, 2)], LINE, 2 / 6, 0.0, 0.0, id="one shared voxel: no FP"),
]


def volume(voxels: list[tuple[int, int, int]], shape: tuple[int, int, int] = (5, 5, 5)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    for voxel in voxels:
        mask[voxel] = 1
    return mask


def assert_same(actual: float, expected: float, tol: float = 1e-9) -> None:
    if math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize(("gt_voxels", "pred_voxels", "dice", "fpv", "fnv"), TEST_VECTORS)
def test_challenge_test_vectors(gt_voxels, pred_voxels, dice, fpv, fnv):
    gt, pred = volume(gt_voxels), volume(pred_voxels)
    metrics = case_metrics(gt, pred, voxel_ml=1.0)
    assert_same(metrics.dice, dice)
    assert_same(metrics.fpv_ml, fpv)
    assert_same(metrics.fnv_ml, fnv)
    assert_same(dice_score(gt, pred), dice)
    assert_same(false_positive_volume(gt, pred, 1.0), fpv)
    assert_same(false_negative_volume(gt, pred, 1.0), fnv)
    assert metrics.gt_ml == len(gt_voxels) and metrics.pred_ml == len(pred_voxels)


def test_volumes_scale_with_voxel_volume_and_components_are_counted():
    gt = volume([(1, 1, 1), (2, 2, 2), (0, 4, 4)])  # three lesions (corner contact does not join)
    pred = volume([(1, 1, 1), (4, 0, 0), (4, 0, 1)])  # hits one lesion, one 2-voxel false positive
    metrics = case_metrics(gt, pred, voxel_ml=0.5)
    assert metrics == CaseMetrics(
        dice=2 / 6,
        fpv_ml=1.0,
        fnv_ml=1.0,
        gt_ml=1.5,
        pred_ml=1.5,
        gt_lesions=3,
        pred_components=2,
        fp_components=1,
        fn_lesions=2,
        voxel_ml=0.5,
    )


def test_voxel_volume_from_header_and_affine():
    assert nifti_voxel_volume_ml([-1.0, 4.07283, 4.07283, 2.0, 0, 0, 0, 0]) == pytest.approx(0.0331759, abs=1e-7)
    affine = np.array([[0.0, -2.0, 0.0, 5.0], [3.0, 0.0, 0.0, 1.0], [0.0, 0.0, -4.0, 2.0], [0, 0, 0, 1.0]])
    assert affine_voxel_volume_ml(affine) == pytest.approx(0.024)


def test_bad_masks_are_rejected():
    with pytest.raises(ValueError, match="only 0 and 1, found 2"):
        case_metrics(volume([]) * 2 + 2, volume([]), 1.0)
    with pytest.raises(ValueError, match="found 0.5"):
        dice_score(np.full((3, 3, 3), 0.5), volume([], (3, 3, 3)))
    with pytest.raises(ValueError, match="differ in shape"):
        case_metrics(volume([]), volume([], (5, 5, 4)), 1.0)
    with pytest.raises(ValueError, match="3D"):
        case_metrics(np.zeros((5, 5)), np.zeros((5, 5)), 1.0)


def reference_metrics(gt: np.ndarray, pred: np.ndarray) -> tuple[float, int, int]:
    """Straightforward definition: label the whole volumes and loop over components."""
    fp = fn = 0
    labels, count = ndimage.label(pred, structure=CONNECTIVITY_18)
    for index in range(1, count + 1):
        component = labels == index
        fp += int(component.sum()) if not (component & gt).any() else 0
    labels, count = ndimage.label(gt, structure=CONNECTIVITY_18)
    for index in range(1, count + 1):
        component = labels == index
        fn += int(component.sum()) if not (component & pred).any() else 0
    dice = 2 * (gt & pred).sum() / (gt.sum() + pred.sum()) if gt.any() else NAN
    return dice, fp, fn


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_boxes", [4096, 2])
def test_box_decomposition_matches_whole_volume_labelling(seed, max_boxes, monkeypatch):
    rng = np.random.default_rng(seed)
    shape = (18, 15, 12)
    gt = ndimage.binary_dilation(rng.random(shape) > 0.985, iterations=1 + seed % 2)
    pred = ndimage.binary_dilation(rng.random(shape) > 0.985) | (
        np.roll(gt, 2, axis=seed % 3) & (rng.random(shape) > 0.3)
    )
    boxes = foreground_boxes(gt | pred, max_boxes=max_boxes)
    cover = np.zeros(shape, dtype=int)
    for box in boxes:
        cover[box] += 1
    assert cover.max() <= 1 and cover[gt | pred].min() == 1  # disjoint, covering every foreground voxel
    assert len(boxes) <= max_boxes
    monkeypatch.setattr("scripts.evaluation.autopet_metrics.MAX_BOXES", max_boxes)  # also used inside case_metrics
    dice, fp, fn = reference_metrics(gt, pred)
    metrics = case_metrics(gt, pred, voxel_ml=1.0)
    assert (metrics.fpv_ml, metrics.fnv_ml) == (fp, fn)
    assert_same(metrics.dice, dice)


def test_boxes_split_at_empty_planes():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[1:3, 1:3, 1:3] = True
    mask[6:9, 5, 7] = True
    assert sorted(foreground_boxes(mask), key=str) == sorted(
        [(slice(1, 3), slice(1, 3), slice(1, 3)), (slice(6, 9), slice(5, 6), slice(7, 8))], key=str
    )
    assert foreground_boxes(np.zeros((4, 4, 4), dtype=bool)) == []


def test_real_psma_case_matches_official_values(shared_dir):
    fixture = shared_dir / "fixtures" / "autopet_psma_case"
    gt = np.asanyarray(nib.load(str(fixture / "label.nii.gz")).dataobj)
    official = {
        "pred_nnunet_baseline.nii.gz": (0.696734, 2.753599, 25.014623),
        "pred_datacentric_baseline.nii.gz": (0.660425, 4.976384, 18.711204),
    }
    for name, (dice, fpv, fnv) in official.items():
        image = nib.load(str(fixture / name))
        metrics = case_metrics(gt, np.asanyarray(image.dataobj), nifti_voxel_volume_ml(image.header["pixdim"]))
        assert metrics.dice == pytest.approx(dice, abs=1e-5)
        assert metrics.fpv_ml == pytest.approx(fpv, abs=1e-5)
        assert metrics.fnv_ml == pytest.approx(fnv, abs=1e-5)
        assert metrics.gt_lesions == 112
        assert metrics.gt_ml == pytest.approx(431.15, abs=0.01)


def test_interactive_auc():
    assert interactive_auc([0.5] * 11) == pytest.approx(5.0)
    assert interactive_auc(np.linspace(0, 1, 11)) == pytest.approx(5.0)
    assert interactive_auc([0] * 10 + [1]) == pytest.approx(0.5)
    assert math.isnan(interactive_auc([NAN] * 11))
    with pytest.raises(ValueError, match="11 click steps"):
        interactive_auc([0.5] * 10)


def test_interactive_scores_of_a_click_blind_model_are_ten_times_the_last_values():
    steps = [case_metrics(volume([(1, 1, 1), (2, 2, 2)]), volume([(1, 1, 1), (4, 4, 0)]), 2.0)] * 11
    scores = interactive_scores(steps)
    assert scores["dice_last"] == pytest.approx(0.5) and scores["auc_dice"] == pytest.approx(5.0)
    assert scores["fpv_ml_last"] == 2.0 and scores["auc_fpv_ml"] == pytest.approx(20.0)
    assert scores["fnv_ml_last"] == 2.0 and scores["auc_fnv_ml"] == pytest.approx(20.0)


def test_summary_skips_nan_and_averages_group_means():
    rows = [
        {"case": "fdg_a", "dice": 0.6, "fpv_ml": 1.0, "fnv_ml": 2.0},
        {"case": "fdg_b", "dice": 0.8, "fpv_ml": 3.0, "fnv_ml": 4.0},
        {"case": "fdg_neg", "dice": NAN, "fpv_ml": 5.0, "fnv_ml": NAN},
        {"case": "psma_a", "dice": 0.2, "fpv_ml": 0.0, "fnv_ml": 9.0},
        {"case": "ct_neg", "dice": NAN, "fpv_ml": 8.0, "fnv_ml": NAN},
    ]
    summary = summarize(rows, ["dice", "fpv_ml", "fnv_ml"], lambda row: row["case"].split("_")[0])
    assert summary["cases"] == 5
    assert summary["metrics"]["dice"] == {"mean": pytest.approx(1.6 / 3), "n": 3}
    assert summary["metrics"]["fpv_ml"] == {"mean": pytest.approx(17 / 5), "n": 5}
    assert summary["metrics"]["fnv_ml"] == {"mean": pytest.approx(5.0), "n": 3}
    assert summary["groups"]["fdg"]["metrics"]["dice"]["mean"] == pytest.approx(0.7)
    assert math.isnan(summary["groups"]["ct"]["metrics"]["dice"]["mean"])
    assert summary["overall"]["dice"] == pytest.approx((0.7 + 0.2) / 2)  # the all-negative group is left out
    assert summary["overall"]["fpv_ml"] == pytest.approx((3.0 + 0.0 + 8.0) / 3)
    assert math.isnan(nan_mean([NAN, NAN]))


# ----------------------------------------------------------------------------------------------- CLI

SPACING = (2.0, 2.5, 4.0)  # 0.02 ml per voxel
AFFINE = np.diag([*SPACING, 1.0])


def write_mask(path: Path, voxels: list[tuple[int, int, int]], affine: np.ndarray = AFFINE, **kw) -> Path:
    return save_nifti(volume(voxels, **kw), affine, path, dtype=np.uint8)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_mask(gt / "fdg_1.nii.gz", [(1, 1, 1), (2, 2, 2)])
    write_mask(pred / "fdg_1.nii.gz", [(1, 1, 1)])
    write_mask(gt / "fdg_2.nii.gz", [])
    write_mask(pred / "fdg_2.nii", LINE)
    write_mask(gt / "psma_1.nii", [(3, 3, 3), (3, 3, 4)])
    write_mask(pred / "psma_1.nii.gz", [(3, 3, 3)])
    return gt, pred


def test_cli_scores_a_folder(cohort, tmp_path, capsys):
    gt, pred = cohort
    out = tmp_path / "result" / "metrics.csv"
    assert main(["--gt", str(gt), "--pred", str(pred), "--out", str(out), "--group-by", "prefix"]) == 0
    rows = {row["case"]: row for row in read_rows(out)}
    assert list(rows) == ["fdg_1", "fdg_2", "psma_1"]
    assert float(rows["fdg_1"]["dice"]) == pytest.approx(2 / 3)
    assert float(rows["fdg_1"]["fnv_ml"]) == pytest.approx(0.02)
    assert math.isnan(float(rows["fdg_2"]["dice"])) and float(rows["fdg_2"]["fpv_ml"]) == pytest.approx(0.1)
    assert float(rows["psma_1"]["dice"]) == pytest.approx(2 / 3) and float(rows["psma_1"]["gt_ml"]) == 0.04
    assert rows["psma_1"]["group"] == "psma"
    summary = json.loads((tmp_path / "result" / "metrics_summary.json").read_text())
    assert summary["cases"] == 3 and summary["positive_cases"] == 2
    assert summary["metrics"]["dice"]["mean"] == pytest.approx(2 / 3)
    assert summary["metrics"]["fpv_ml"]["mean"] == pytest.approx(0.1 / 3)
    assert summary["groups"]["fdg"]["metrics"]["fpv_ml"]["mean"] == pytest.approx(0.05)
    assert summary["overall"]["fpv_ml"] == pytest.approx(0.025)
    assert summary["groups"]["psma"]["metrics"]["fpv_ml"]["n"] == 1
    printed = capsys.readouterr().out
    assert "overall (mean of group means)" in printed and "fdg_2" in printed


def test_cli_scores_a_single_file_and_reads_groups_csv(cohort, tmp_path):
    gt, pred = cohort
    out = tmp_path / "one.csv"
    assert main(["--gt", str(gt / "psma_1.nii"), "--pred", str(pred / "psma_1.nii.gz"), "--out", str(out)]) == 0
    assert [row["case"] for row in read_rows(out)] == ["psma_1"]
    groups = tmp_path / "groups.csv"
    groups.write_text("case,group\nfdg_1,FDG-UKT\nfdg_2,FDG-LMU\npsma_1,PSMA-LMU\n")
    out = tmp_path / "grouped.csv"
    assert main(["--gt", str(gt), "--pred", str(pred), "--out", str(out), "--groups", str(groups), "--quiet"]) == 0
    summary = json.loads((tmp_path / "grouped_summary.json").read_text())
    assert sorted(summary["groups"]) == ["FDG-LMU", "FDG-UKT", "PSMA-LMU"]
    assert summary["groups"]["FDG-LMU"]["metrics"]["dice"]["mean"] is None  # NaN is written as null


def run_cli_expecting_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_cli_names_a_missing_prediction(cohort, tmp_path, capsys):
    gt, pred = cohort
    (pred / "psma_1.nii.gz").unlink()
    out = tmp_path / "m.csv"
    message = run_cli_expecting_error(capsys, "--gt", str(gt), "--pred", str(pred), "--out", str(out))
    assert "no prediction for ground-truth case 'psma_1'" in message and str(pred / "psma_1.nii.gz") in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("bad_prediction", "expected"),
    [
        (lambda path: write_mask(path, [], shape=(5, 5, 6)), "shape (5, 5, 6) differs from the ground truth's"),
        (lambda path: write_mask(path, [], affine=np.diag([2.0, 2.5, 4.5, 1.0])), "affine differs"),
        (lambda path: save_nifti(volume([(1, 1, 1)]) * 255, AFFINE, path, dtype=np.uint8), "other than 0/1: 255"),
        (lambda path: save_nifti(np.zeros((5, 5, 5, 2)), AFFINE, path), "expected a 3D volume"),
    ],
    ids=["shape", "grid", "values", "4D"],
)
def test_cli_rejects_bad_predictions(cohort, tmp_path, capsys, bad_prediction, expected):
    gt, pred = cohort
    bad_prediction(pred / "fdg_1.nii.gz")
    message = run_cli_expecting_error(capsys, "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m.csv"))
    assert message.startswith(f"error: {pred / 'fdg_1.nii.gz'}: ") and expected in message


def test_cli_rejects_file_against_folder_and_non_binary_gt(cohort, tmp_path, capsys):
    gt, pred = cohort
    message = run_cli_expecting_error(capsys, "--gt", str(gt / "fdg_1.nii.gz"), "--pred", str(pred), "--out", "x.csv")
    assert "both be files or both be folders" in message
    save_nifti(np.full((5, 5, 5), 0.5), AFFINE, gt / "fdg_1.nii.gz")
    message = run_cli_expecting_error(capsys, "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m.csv"))
    assert str(gt / "fdg_1.nii.gz") in message and "0.5" in message


def test_cli_interactive_steps(tmp_path, capsys):
    gt, steps = tmp_path / "gt", tmp_path / "steps"
    write_mask(gt / "psma_1.nii.gz", [(1, 1, 1), (3, 3, 3)])  # two lesions
    write_mask(gt / "fdg_neg.nii.gz", [])
    for step in range(11):
        # the second lesion is found from step 5 on; a false positive disappears from step 2 on
        found = [(1, 1, 1)] + ([(3, 3, 3)] if step >= 5 else [])
        write_mask(steps / f"step_{step:02d}" / "psma_1.nii.gz", found + ([(0, 4, 0)] if step < 2 else []))
        write_mask(steps / f"step_{step:02d}" / "fdg_neg.nii.gz", [(0, 0, 0)] if step == 0 else [])
    out = tmp_path / "interactive.csv"
    assert main(["--gt", str(gt), "--pred", str(steps), "--out", str(out), "--interactive"]) == 0
    rows = {row["case"]: row for row in read_rows(out)}
    dice = [2 / 4 if s < 2 else 2 / 3 if s < 5 else 1.0 for s in range(11)]
    assert float(rows["psma_1"]["auc_dice"]) == pytest.approx(np.trapezoid(dice))
    assert float(rows["psma_1"]["dice_last"]) == 1.0
    assert float(rows["psma_1"]["auc_fnv_ml"]) == pytest.approx(0.02 * 4.5)  # missed at steps 0..4
    assert float(rows["psma_1"]["auc_fpv_ml"]) == pytest.approx(0.02 * 1.5)  # present at steps 0, 1
    assert math.isnan(float(rows["fdg_neg"]["auc_dice"]))
    assert float(rows["fdg_neg"]["auc_fpv_ml"]) == pytest.approx(0.02 * 0.5)
    assert len(read_rows(tmp_path / "interactive_steps.csv")) == 22
    summary = json.loads((tmp_path / "interactive_summary.json").read_text())
    assert summary["interactive"] and summary["positive_cases"] == 1
    assert summary["metrics"]["auc_fpv_ml"]["mean"] == pytest.approx(0.02 * 2 / 2)
    (steps / "step_07" / "fdg_neg.nii.gz").unlink()
    message = run_cli_expecting_error(capsys, "--gt", str(gt), "--pred", str(steps), "--out", str(out), "--interactive")
    assert str(steps / "step_07" / "fdg_neg.nii.gz") in message and "no prediction" in message
    (steps / "step_10").rename(steps / "step_11")
    message = run_cli_expecting_error(capsys, "--gt", str(gt), "--pred", str(steps), "--out", str(out), "--interactive")
    assert "missing step folders [10]" in message


def test_cli_module_exits_cleanly_on_bad_input(cohort, tmp_path, bundle_root):
    gt, pred = cohort
    (pred / "fdg_1.nii.gz").unlink()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.evaluation.metrics",
            "--gt",
            str(gt),
            "--pred",
            str(pred),
            "--out",
            str(tmp_path / "m.csv"),
        ],
        cwd=bundle_root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and "fdg_1" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------- ignite / MONAI


def synthetic_studies(count: int = 4) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(gt, pred, affine) triples of varied spacing; the second study is negative."""
    rng = np.random.default_rng(7)
    studies = []
    for index in range(count):
        gt = ndimage.binary_dilation(rng.random((9, 8, 7)) > 0.97)
        pred = ndimage.binary_dilation(rng.random((9, 8, 7)) > 0.97) | (gt & (rng.random(gt.shape) > 0.5))
        if index == 1:
            gt[:] = False
        affine = np.diag([1.5 + index, 2.0, 3.0 - 0.5 * index, 1.0])
        studies.append((gt, pred, affine))
    return studies


def expected_mean(studies, metric: str) -> float:
    values = [getattr(case_metrics(gt, pred, affine_voxel_volume_ml(affine)), metric) for gt, pred, affine in studies]
    return nan_mean(values)


@pytest.mark.parametrize("one_hot", [True, False])
def test_handler_in_an_ignite_engine_matches_numpy(one_hot):
    studies = synthetic_studies()

    def as_tensor(mask: np.ndarray, affine: np.ndarray) -> MetaTensor:
        data = torch.from_numpy(mask.astype(np.float32))[None]
        return MetaTensor(torch.cat([1 - data, data]) if one_hot else data, affine=torch.from_numpy(affine))

    batches = [studies[:2], studies[2:]]  # lists of channel-first MetaTensors, as a decollated evaluator gives

    def step(engine, batch):
        return {"pred": [as_tensor(p, a) for _, p, a in batch], "label": [as_tensor(g, a) for g, _, a in batch]}

    engine = Engine(step)
    for name in ("dice", "fpv", "fnv"):
        AutoPETMetricHandler(name, output_transform=lambda out: (out["pred"], out["label"])).attach(engine, name)
    engine.run(batches, max_epochs=1)
    assert engine.state.metrics["dice"] == pytest.approx(expected_mean(studies, "dice"))
    assert engine.state.metrics["fpv"] == pytest.approx(expected_mean(studies, "fpv_ml"))
    assert engine.state.metrics["fnv"] == pytest.approx(expected_mean(studies, "fnv_ml"))
    details = engine.state.metric_details["dice"]
    assert details.shape == (4, 1) and math.isnan(float(details[1, 0]))


def test_metric_on_batched_tensors_reads_each_affine_or_a_fixed_voxel_volume():
    studies = synthetic_studies()
    pred = MetaTensor(torch.stack([torch.from_numpy(p[None].astype(np.float32)) for _, p, _ in studies]))
    pred.affine = torch.stack([torch.from_numpy(a) for *_, a in studies])
    pred.is_batch = True
    gt = torch.stack([torch.from_numpy(g[None].astype(np.float32)) for g, _, _ in studies])
    metric = AutoPETMetric("fpv")
    metric(y_pred=pred, y=gt)
    assert float(metric.aggregate()) == pytest.approx(expected_mean(studies, "fpv_ml"))
    fixed = AutoPETMetric("fnv", voxel_ml=0.5)
    fixed(y_pred=pred.as_tensor(), y=gt)
    expected = nan_mean(case_metrics(g, p, 0.5).fnv_ml for g, p, _ in studies)
    assert float(fixed.aggregate()) == pytest.approx(expected)


def test_metric_rejects_unusable_inputs():
    plain = torch.zeros(1, 1, 4, 4, 4)
    with pytest.raises(ValueError, match="voxel volume is unknown"):
        AutoPETMetric("fpv")(y_pred=plain, y=plain)
    with pytest.raises(ValueError, match="binary"):
        AutoPETMetric("dice")(y_pred=MetaTensor(torch.full((1, 2, 4, 4, 4), 0.4)), y=MetaTensor(plain))
    with pytest.raises(ValueError, match="one-hot"):
        AutoPETMetric("dice")(y_pred=MetaTensor(torch.zeros(1, 3, 4, 4, 4)), y=MetaTensor(plain))
    with pytest.raises(ValueError, match="metric_name"):
        AutoPETMetric("hd95")


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # MetricsSaver's row mean of a NaN row
def test_handler_from_a_bundle_config_with_metrics_saver(tmp_path):
    studies = synthetic_studies(3)
    data = [
        {
            "image": MetaTensor(torch.from_numpy(p[None].astype(np.float32)), affine=torch.from_numpy(a)),
            "label": MetaTensor(torch.from_numpy(g[None].astype(np.float32)), affine=torch.from_numpy(a)),
        }
        for g, p, a in studies
    ]
    for index, item in enumerate(data):
        item["image"].meta["filename_or_obj"] = f"study_{index}.nii.gz"

    class ProbabilityOfImage(torch.nn.Module):  # a "network" whose lesion probability is its input mask
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([1 - x, x], dim=1)

    handler = {
        "_target_": "scripts.evaluation.metric_handlers.AutoPETMetricHandler",
        "output_transform": "@from_engine",
    }
    config = {
        "from_engine": "$monai.handlers.from_engine(['pred', 'label'])",
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "$torch.device('cpu')",
            "val_data_loader": {"_target_": "DataLoader", "dataset": "$@data", "batch_size": 2},
            "network": "@network",
            "postprocessing": {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            "key_val_metric": {"val_dice": {**handler, "metric_name": "dice"}},
            "additional_metrics": {"val_fpv": {**handler, "metric_name": "fpv"}},
            "val_handlers": [
                {
                    "_target_": "MetricsSaver",
                    "save_dir": str(tmp_path),
                    "metric_details": ["val_dice"],
                    "batch_transform": "$lambda batch: [item['image'].meta for item in batch]",
                }
            ],
        },
    }
    parser = ConfigParser(config)
    parser["data"] = data
    parser["network"] = ProbabilityOfImage()
    evaluator = parser.get_parsed_content("evaluator")
    evaluator.run()
    assert evaluator.state.metrics["val_dice"] == pytest.approx(expected_mean(studies, "dice"))
    assert evaluator.state.metrics["val_fpv"] == pytest.approx(expected_mean(studies, "fpv_ml"))
    raw = (tmp_path / "val_dice_raw.csv").read_text().splitlines()
    assert raw[0].startswith("filename") and raw[2].startswith("study_1.nii.gz,nan")
