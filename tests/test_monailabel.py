"""The bundle under MONAI Label's bundle contract, driven the way its ``BundleInferTask`` drives a bundle.

MONAI Label (not installed here) reads ``configs/inference.json`` alone from its own working directory, forces
``bundle_root``, instantiates ``network_def`` and loads ``models/model.pt`` into it, takes ``preprocessing``,
``inferer`` and ``postprocessing`` with every ``SaveImaged`` removed, and calls ``inferer(image[None], network)``
under ``torch.no_grad()`` on the one image path of a study (``../shared/notes/monai_bundle.md`` section 3.2).
"""

import os
import shutil
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, run
from monai.transforms import Compose, LoadImaged, SaveImaged

TINY = {
    "pixdim": [10.0, 10.0, 15.0],
    "roi_size": [32, 32, 32],
    "features": [8, 16, 32, 64],
    "strides": [1, 2, 2, 2],
    "tta_axes": [0],
}


@pytest.fixture(scope="module")
def label_app_bundle(bundle_root, tmp_path_factory):
    """A copy of the bundle as MONAI Label's app holds it (``model/<name>``), with weights in ``models/model.pt``."""
    bundle = tmp_path_factory.mktemp("app") / "model" / "petct_lesion_segmentation"
    shutil.copytree(bundle_root, bundle, ignore=shutil.ignore_patterns("models", "__pycache__", "eval", "runs"))
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update(TINY)
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    (bundle / "models").mkdir()
    torch.save(network.state_dict(), bundle / "models" / "model.pt")
    return bundle


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    """Synthetic studies in the nnU-Net layout: CT ``<case>_0000.nii.gz``, PET ``_0001``, label ``labelsTr``."""
    return make_tiny_dataset("label_study", n=3, seed=5, shape=(40, 40, 56), negative_share=0.0)


@pytest.fixture(scope="module")
def study(dataset):
    """One study as MONAI Label's datastore hands it over: the CT path, its PET partner beside it."""
    return sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))[0]


def _monai_label_infer(bundle, image_path):
    """What BundleInferTask does with a bundle and one image path; returns the prediction and the parser."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), "device": "$torch.device('cpu')", **TINY})
    sys.path.insert(0, str(bundle))
    try:
        network = parser.get_parsed_content("network_def")
        checkpoint = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
        incompatible = network.load_state_dict(checkpoint.get("model", checkpoint), strict=False)
        network.eval()
        pre = parser.get_parsed_content("preprocessing")
        inferer = parser.get_parsed_content("inferer")
        post = parser.get_parsed_content("postprocessing")
    finally:
        sys.path.remove(str(bundle))
    kept = [t for t in post.transforms if not isinstance(t, SaveImaged)]
    data = Compose(list(pre.transforms))({"image": str(image_path)})
    with torch.no_grad():
        data["pred"] = inferer(data["image"][None], network)[0]
    data = Compose(kept)(data)
    return data, incompatible, pre, post


@pytest.fixture(scope="module")
def label_inference(label_app_bundle, study, tmp_path_factory):
    """The MONAI Label-style inference of ``study``, run once from a foreign working directory."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("label_app_cwd"))  # MONAI Label's working directory is its app, not the bundle
    try:
        return _monai_label_infer(label_app_bundle, study)
    finally:
        os.chdir(previous)


def test_inference_config_meets_the_label_contract(label_inference, study):
    data, incompatible, pre, post = label_inference
    assert not incompatible.missing_keys and not incompatible.unexpected_keys, "models/model.pt fits network_def"
    assert type(post.transforms[-1]) is SaveImaged, "MONAI Label strips SaveImaged; it must come last"
    assert not any(type(t) is LoadImaged for t in pre.transforms), "the PET/CT loader is ours, not LoadImaged"
    ct = nib.load(str(study))
    assert tuple(data["pred"].shape) == (1, *ct.shape), "the mask comes back on the CT grid"
    np.testing.assert_allclose(np.asarray(data["pred"].affine), ct.affine, atol=1e-3)
    assert set(np.unique(np.asarray(data["pred"]))) <= {0.0, 1.0}


def test_monai_label_gives_the_mask_the_bundle_writes(label_app_bundle, label_inference, study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = label_inference[0]
    out = tmp_path / "bundle_masks"
    run(
        config_file=str(label_app_bundle / "configs" / "inference.json"),
        bundle_root=str(label_app_bundle),
        input_path=str(study),
        output_dir=str(out),
        **TINY,
    )
    written = sorted(out.glob("*.nii.gz"))
    assert len(written) == 1
    mask = np.asarray(data["pred"])[0]
    assert 0 < mask.sum() < mask.size, "a constant mask would make the comparison empty"
    np.testing.assert_array_equal(np.asarray(nib.load(str(written[0])).dataobj), mask)


def test_one_ct_path_without_a_pet_partner_fails_naming_the_file(label_app_bundle, study, tmp_path, monkeypatch):
    lonely = tmp_path / "lonely_ct.nii.gz"
    shutil.copy(study, lonely)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception) as raised:
        _monai_label_infer(label_app_bundle, lonely)
    text = str(raised.value)
    cause = raised.value.__cause__
    while cause is not None:
        text += str(cause)
        cause = cause.__cause__
    assert "lonely_ct.nii.gz" in text and "PET" in text


def test_monai_label_training_reads_train_json_alone_with_datastore_items(
    label_app_bundle, dataset, tmp_path, monkeypatch
):
    """BundleTrainTask's single-GPU call: train.json alone, datastore items {image: one path, label}, its overrides."""
    cts = sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))
    items = [{"image": str(ct), "label": str(dataset / "labelsTr" / ct.name.replace("_0000", ""))} for ct in cts]
    root = tmp_path / "app_bundle_run"
    monkeypatch.chdir(tmp_path)
    shutil.copytree(label_app_bundle, root)
    run(
        run_id="run",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "train.json"),
        logging_file=str(root / "configs" / "logging.conf"),
        bundle_root=str(root),
        device="cpu",
        **{"train#trainer#max_epochs": 1, "train#dataset#data": items[:2], "validate#dataset#data": items[2:]},
        **{"iterations_per_epoch": 2, "val_interval": 1, "num_workers": 0, **TINY},
    )
    assert sorted(p.name for p in (root / "models" / "fold0").iterdir()) == ["last_checkpoint_epoch=1.pt", "model.pt"]
