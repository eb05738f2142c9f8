"""Sanity check that the training recipe can learn: each variant overfits one synthetic study.

configs/train.json + adamw.json run through MONAI's ConfigWorkflow with tiny widths on one synthetic study that is
both the training and the validation set: the real network, loss (deep supervision + Dice/CE), patch sampling (the
preprocessed cache, then 1:2 lesion/background crops from it) and validation (whole-study sliding window, Dice).
Only the augmentations are left out: they exist to generalise, and a fit of one study is what is checked here. A
recipe that works reaches whole-study Dice >= 0.9 within a few hundred iterations; the negative control (the same
run on randomly shuffled label voxels) must not, so the check cannot pass by itself. ~150-200 iterations suffice
today.
The study is chosen among generated ones as one whose lesions are all visible on its grid (see
readable_lesion_voxels); the xLSTM variants train at this learning rate only since the mLSTM kernel clamps its
input gates (they diverged to NaN gradients before).
"""

import json

import nibabel as nib
import numpy as np
import pytest
from ignite.engine import Events
from monai.bundle import ConfigParser, ConfigWorkflow
from scipy import ndimage

from scripts.synthetic import generate_cohort

TARGET_DICE = 0.9
AUGMENTATIONS = {
    "RandAffined",
    "Rand3DElasticd",
    "scripts.transforms.elastic.FastRand3DElasticd",
    "RandFlipd",
    "RandScaleIntensityd",
    "RandScaleIntensityFixedMeand",
    "RandAdjustContrastd",
    "RandGaussianNoised",
}
OVERFIT = {
    "pixdim": [10.0, 10.0, 15.0],
    "roi_size": [24, 24, 24],
    "features": [8, 16, 32, 64],
    "strides": [1, 2, 2, 2],
    "num_workers": 0,
    "cache_rate": 1.0,
    "learning_rate": 0.02,
    "warmup_epochs": 0,
    "iterations_per_epoch": 50,
    "max_epochs": 6,  # at most 300 iterations; a run stops at the first validation reaching the target
    "val_interval": 1,
    "tta_axes": [],
}


def readable_lesion_voxels(folder) -> int:
    """Lesion voxels of a study whose every lesion a reader would see on its grid (>= 3 voxels, PET >= 2x its
    surroundings), else 0: the generator still marks sub-voxel and faint lesions (issue 8, section 1)."""
    seg = np.asarray(nib.load(str(folder / "SEG.nii.gz")).dataobj) > 0
    suv = np.asarray(nib.load(str(folder / "SUV.nii.gz")).dataobj)
    components, count = ndimage.label(seg)
    for index in range(1, count + 1):
        lesion = components == index
        ring = ndimage.binary_dilation(lesion, iterations=2) & ~seg
        if lesion.sum() < 3 or suv[lesion].mean() < 2 * np.median(suv[ring]):
            return 0
    return int(seg.sum())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Of 24 synthetic positive studies, the readable one with the most lesion voxels (calibrated lesions are small
    at this coarse grid: most studies hold 4-20 lesion voxels)."""
    work = tmp_path_factory.mktemp("overfit")
    folders = generate_cohort(
        work / "raw", 24, seed=5, shape=(48, 48, 64), spacing=(10.0, 10.0, 15.0), negative_share=0
    )
    readable = {folder: readable_lesion_voxels(folder) for folder in folders}
    folder = max(folders, key=readable.get)
    assert readable[folder] >= 20, f"no readable study with >= 20 lesion voxels: {sorted(readable.values())}"
    return folder


def _datalist(study, label, path):
    item = {"image": [str(study / "CTres.nii.gz"), str(study / "SUV.nii.gz")], "label": str(label)}
    path.write_text(json.dumps({"training": [item], "validation": [item]}))
    return path


def _sampling_only(bundle_root):
    """train.json's random transforms without the augmentations: the lesion/background crops (from the
    preprocessed cache) and typing."""
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "train.json"))
    transforms = parser.get("train#random_transforms")
    kept = [t for t in transforms if t["_target_"] not in AUGMENTATIONS]
    crops = ("RandCropByPosNegLabeld", "scripts.transforms.stored_patches.RandCropStoredByPosNegd")
    assert any(t["_target_"] in crops for t in kept), "the lesion/background patch sampling"
    return kept


def _overfit(bundle_root, variant, datalist, root):
    """Train until the whole-study validation Dice reaches the target; return (best Dice, iterations run)."""
    workflow = ConfigWorkflow(
        workflow_type="train",
        config_file=[str(bundle_root / "configs" / name) for name in ("train.json", "adamw.json")],
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        **OVERFIT,
        xlstm=variant,
        bundle_root=str(root),
        dataset_dir=str(datalist.parent),
        datalist=str(datalist),
        resume=False,
    )
    workflow.parser["train#random_transforms"] = _sampling_only(bundle_root)
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")

    def stop_when_fitted(engine):
        if engine.state.metrics["val_mean_dice"] >= TARGET_DICE:
            trainer.terminate()

    evaluator.add_event_handler(Events.EPOCH_COMPLETED, stop_when_fitted)
    workflow.run()
    workflow.finalize()
    return float(evaluator.state.best_metric), trainer.state.iteration


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["none", "bot", "enc"])
def test_each_variant_overfits_one_study(variant, study, bundle_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    datalist = _datalist(study, study / "SEG.nii.gz", tmp_path / "datalist.json")
    dice, iterations = _overfit(bundle_root, variant, datalist, tmp_path / "run")
    assert dice >= TARGET_DICE, f"{variant}: whole-study Dice {dice:.3f} after {iterations} iterations"


@pytest.mark.slow
def test_shuffled_labels_do_not_reach_the_target(study, bundle_root, tmp_path, monkeypatch):
    """Negative control: the same lesion voxels shuffled at random over the body cannot be fitted by the same recipe."""
    monkeypatch.chdir(tmp_path)
    image = nib.load(str(study / "SEG.nii.gz"))
    labels = np.asarray(image.dataobj)
    body = np.asarray(nib.load(str(study / "CTres.nii.gz")).dataobj) > -500  # inside the training body crop
    assert labels[~body].sum() == 0
    shuffled = labels.copy()
    shuffled[body] = np.random.default_rng(0).permutation(labels[body])
    assert shuffled.sum() == labels.sum() and (shuffled != labels).any()
    path = tmp_path / "SEG_shuffled.nii.gz"
    nib.save(nib.Nifti1Image(shuffled, image.affine, image.header), str(path))
    datalist = _datalist(study, path, tmp_path / "datalist.json")
    dice, iterations = _overfit(bundle_root, "none", datalist, tmp_path / "run")
    assert iterations == OVERFIT["iterations_per_epoch"] * OVERFIT["max_epochs"], "it ran the whole budget"
    assert dice < 0.5, f"shuffled labels reached Dice {dice:.3f}: the check would pass for a broken recipe"
