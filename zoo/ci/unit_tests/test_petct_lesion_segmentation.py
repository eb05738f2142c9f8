# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Unit test for the model zoo's ci/unit_tests/: the bundle's configs run end to end on tiny synthetic PET/CT.

Run from the root of the model zoo's repository, with the bundle at models/petct_lesion_segmentation:
    python ci/unit_tests/runner.py --b petct_lesion_segmentation
Each workflow is a ConfigWorkflow of the shipped configs with overrides that shrink the network, the grid and the
schedule; check_properties() must report nothing, then the workflow runs and writes its outputs to a temporary folder.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

import nibabel as nib
import numpy as np
from monai.bundle import ConfigWorkflow

BUNDLE_ROOT = os.environ.get("PETCT_BUNDLE_ROOT", "models/petct_lesion_segmentation")
SPACING_MM = (10.0, 10.0, 15.0)
SHAPE = (24, 24, 20)
CASES = ["case_0", "case_1", "case_2", "case_3"]

TINY = {  # a small network on a coarse grid, so that a CPU runs each workflow in seconds
    "bundle_root": BUNDLE_ROOT,
    "pixdim": list(SPACING_MM),
    "roi_size": [32, 32, 32],
    "features": [8, 16, 32, 64],
    "strides": [1, 2, 2, 2],
    "num_workers": 0,
}
TRAIN = {**TINY, "max_epochs": 1, "iterations_per_epoch": 2, "batch_size": 1, "val_interval": 1, "resume": False}
INFER = {**TINY, "network": "$@network_def.to(@device)", "tta_axes": [0]}  # untrained weights: no checkpoint read


def write_study(folder, case, seed):
    """One synthetic study in the nnU-Net layout: CT (HU) and PET (SUV) on one grid, and its lesion mask."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in SHAPE], indexing="ij"))
    body = (grid**2).sum(axis=0) < 0.8
    centre = rng.uniform(-0.3, 0.3, size=3).reshape(3, 1, 1, 1)
    lesion = ((grid - centre) ** 2).sum(axis=0) < 0.08
    ct = np.where(body, 40.0, -1000.0) + rng.normal(0.0, 10.0, SHAPE)
    pet = np.where(lesion, 8.0, np.where(body, 1.2, 0.05)) + rng.uniform(0.0, 0.1, SHAPE)
    affine = np.diag([*SPACING_MM, 1.0])
    files = {
        f"imagesTr/{case}_0000.nii.gz": ct.astype(np.float32),
        f"imagesTr/{case}_0001.nii.gz": pet.astype(np.float32),
        f"labelsTr/{case}.nii.gz": lesion.astype(np.uint8),
    }
    for name, array in files.items():
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        nib.save(nib.Nifti1Image(array, affine), os.path.join(folder, name))
    return {"image": list(files)[:2], "label": list(files)[2], "case": case}


def run_workflow(workflow):
    """initialize, check that no required property is missing, run, finalize."""
    workflow.initialize()
    missing = workflow.check_properties()
    if missing:
        raise ValueError(f"check_properties() reports: {missing}")
    workflow.run()
    workflow.finalize()


def test_order(name1, name2):
    """Train first, then evaluate, then infer (the order the model zoo's runner uses when a test file has one)."""

    def rank(name):
        return next((i for i, word in enumerate(("train", "eval", "infer")) if word in name), 3)

    return rank(name1) - rank(name2)


class TestPetCtLesionSegmentation(unittest.TestCase):
    def setUp(self):
        self.dataset_dir = tempfile.mkdtemp()
        self.output_dir = tempfile.mkdtemp()
        items = [write_study(self.dataset_dir, case, seed) for seed, case in enumerate(CASES)]
        datalist = {"training": items[:2], "validation": items[2:]}
        with open(os.path.join(self.dataset_dir, "datalist_fold0.json"), "w") as f:
            json.dump(datalist, f, indent=4)
        if BUNDLE_ROOT not in sys.path:
            sys.path = [BUNDLE_ROOT] + sys.path  # the bundle's scripts package

    def tearDown(self):
        shutil.rmtree(self.dataset_dir)
        shutil.rmtree(self.output_dir)

    def workflow(self, workflow_type, configs, override):
        return ConfigWorkflow(
            workflow_type=workflow_type,
            config_file=[os.path.join(BUNDLE_ROOT, "configs", name) for name in configs],
            logging_file=os.path.join(BUNDLE_ROOT, "configs", "logging.conf"),
            meta_file=os.path.join(BUNDLE_ROOT, "configs", "metadata.json"),
            **{"dataset_dir": self.dataset_dir, **override},
        )

    def test_train_config(self):
        ckpt_dir = os.path.join(self.output_dir, "models")
        override = {**TRAIN, "ckpt_dir": ckpt_dir, "output_dir": os.path.join(self.output_dir, "runs")}
        run_workflow(self.workflow("train", ["train.json"], override))
        self.assertEqual(sorted(os.listdir(ckpt_dir)), ["last_checkpoint_epoch=1.pt", "model.pt"])

    def test_eval_config(self):
        override = {**INFER, "output_dir": self.output_dir}
        run_workflow(self.workflow("eval", ["inference.json", "evaluate.json"], override))
        with open(os.path.join(self.output_dir, "metrics.csv")) as f:
            scored = [line.split(",")[0] for line in f.read().splitlines()[1:]]
        self.assertEqual(sorted(scored), CASES[2:])

    def test_infer_config(self):
        override = {**INFER, "input_path": os.path.join(self.dataset_dir, "imagesTr"), "output_dir": self.output_dir}
        run_workflow(self.workflow("infer", ["inference.json"], override))
        for case in CASES:
            mask = nib.load(os.path.join(self.output_dir, f"{case}.nii.gz"))
            self.assertEqual(mask.shape, SHAPE)
            self.assertEqual(mask.get_data_dtype(), np.uint8)


if __name__ == "__main__":
    loader = unittest.TestLoader()
    loader.sortTestMethodsUsing = test_order
    unittest.main(testLoader=loader)
