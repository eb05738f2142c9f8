"""The bundle inside MONAI Label 0.8.5, driven the way MONAI Label's own tasks drive it.

Real MONAI Label code (``LocalDatastore``, ``BundleTrainTask``, ``run_transforms``) where it installs next to the
bundle's pins; the infer task as ``tests/monailabel_infer_task.py`` repeats it line by line (why there).
``docs/monailabel.md`` records the same bundle in a real server.
"""

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, run
from monailabel.datastore.local import LocalDatastore
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel_infer_task import MODEL, InferTaskAsInMonaiLabel, infer_request, returned_mask

from scripts.data.file_layout import STUDIES_PET_FOLDER
from scripts.data.monailabel_studies import LABEL_FOLDER, build_studies_folder
from scripts.errors import InputDataError

TINY = {
    "pixdim": [10.0, 10.0, 15.0],
    "roi_size": [32, 32, 32],
    "features": [8, 16, 32, 64],
    "strides": [1, 2, 2, 2],
}
TINY_PROFILES = {"full": {"tta_axes": [0], "sw_overlap": 0.5}, "interactive": {"tta_axes": [], "sw_overlap": 0.25}}
TINY_INFERENCE = {**TINY, "profiles": TINY_PROFILES, "num_workers": 0}
# The small set written into the app copy's train.json for a CPU epoch (docs/monailabel.md): MONAI Label's train
# task itself only sets bundle_root, device, max_epochs, the datasets and the handlers (tasks/train/bundle.py
# L255-280).
TRAIN_ON_CPU = {"iterations_per_epoch": 2, "batch_size": 1, "val_interval": 1, "num_workers": 0}
# What clients add to /infer params: A L311-316 reads label_tag and save_label, the writer reads result_*.
CLIENT_PARAMS = {
    "label_tag": "original",
    "save_label": True,
    "result_extension": ".nii.gz",
    "result_compress": False,
    "client_id": "user-xyz",
}


def write_config_values(bundle: Path, name: str, values: dict) -> None:
    """Change top-level values of ``configs/<name>`` in an installed bundle copy, as a user edits it."""
    path = bundle / "configs" / name
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=4))


@pytest.fixture(scope="module")
def label_app_bundle(bundle_root, tmp_path_factory):
    """The bundle as the monaibundle app holds it (``model/<name>``), tiny widths, weights in ``models/model.pt``."""
    bundle = tmp_path_factory.mktemp("app") / "model" / MODEL
    shutil.copytree(bundle_root, bundle, ignore=shutil.ignore_patterns("models", "__pycache__", "eval", "runs"))
    write_config_values(bundle, "inference.json", TINY_INFERENCE)
    write_config_values(bundle, "train.json", {**TINY, **TRAIN_ON_CPU})
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
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
    """One study's CT path, its PET partner beside it."""
    return sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))[0]


@pytest.fixture(scope="module")
def studies(dataset, tmp_path_factory):
    """The nnU-Net dataset converted into a MONAI Label studies folder."""
    return build_studies_folder(dataset, tmp_path_factory.mktemp("studies") / "studies").folder


@pytest.fixture(scope="module")
def datastore(studies):
    """MONAI Label's own datastore over the studies folder, as ``start_server --studies`` opens it."""
    return LocalDatastore(str(studies), extensions=["*.nii.gz", "*.nii"], auto_reload=False)


@pytest.fixture(scope="module")
def infer_task(label_app_bundle, tmp_path_factory):
    """The infer task as the server builds it: from the app's working directory, not the bundle's."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("label_app_cwd"))
    try:
        yield InferTaskAsInMonaiLabel(label_app_bundle)
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def curl_result(infer_task, study, tmp_path_factory):
    """The data dict after ``curl -X POST /infer/<model>?image=<CT path>`` (no params), run once."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("curl_cwd"))
    try:
        return infer_task(infer_request(infer_task, str(study)))
    finally:
        os.chdir(previous)


def test_infer_task_data_dict_runs_through_the_bundle(infer_task, curl_result, study):
    data = curl_result
    assert data["image_path"] == str(study), "MONAI Label's own keys come back untouched"
    assert {"model", "description", "device", "model_filename", "latencies"} <= set(data)
    mask, affine = returned_mask(infer_task, data)
    ct = nib.load(str(study))
    assert mask.shape == ct.shape, "the mask comes back on the CT grid"
    np.testing.assert_allclose(affine, ct.affine, atol=1e-4)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}


@pytest.mark.parametrize("source", ["nnunet", "release"])
def test_datastore_lists_each_study_once_with_its_label_and_never_the_pet(dataset, source, tmp_path):
    src = dataset if source == "nnunet" else dataset.parent / "raw"
    built = build_studies_folder(src, tmp_path / "studies")
    store = LocalDatastore(str(built.folder), extensions=["*.nii.gz", "*.nii"], auto_reload=False)
    cases = sorted(p.name.replace("_0000.nii.gz", "") for p in (dataset / "imagesTr").glob("*_0000.nii.gz"))
    assert sorted(store.list_images()) == sorted(built.studies) and len(cases) == len(built.studies) == 3
    for image_id in store.list_images():
        ct = Path(store.get_image_uri(image_id))
        assert ct.parent == built.folder.resolve() and ct.name == f"{image_id}.nii.gz"
        pet = ct.parent / STUDIES_PET_FOLDER / ct.name
        assert pet.is_file() and nib.load(str(pet)).shape == nib.load(str(ct)).shape
    datalist = store.datalist()
    assert sorted(Path(d["label"]).name for d in datalist) == sorted(f"{c}.nii.gz" for c in built.studies)
    assert all(Path(d["label"]).parent == (built.folder / LABEL_FOLDER).resolve() for d in datalist)


def test_infer_by_datastore_id_with_client_params(infer_task, datastore, studies, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_id = sorted(datastore.list_images())[0]
    data = infer_task(infer_request(infer_task, image_id, datastore, params=CLIENT_PARAMS))
    assert {key: data[key] for key in CLIENT_PARAMS} == CLIENT_PARAMS
    assert data["image_path"] == str((studies / f"{image_id}.nii.gz").resolve())
    mask, affine = returned_mask(infer_task, data)
    ct = nib.load(str(studies / f"{image_id}.nii.gz"))
    assert mask.shape == ct.shape and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    np.testing.assert_allclose(affine, ct.affine, atol=1e-4)


@pytest.mark.slow
def test_monai_label_gives_the_mask_the_bundle_writes(label_app_bundle, infer_task, curl_result, study, tmp_path):
    mask = returned_mask(infer_task, curl_result)[0]
    out = tmp_path / "bundle_masks"
    run(
        config_file=str(label_app_bundle / "configs" / "inference.json"),
        bundle_root=str(label_app_bundle),
        input_path=str(study),
        output_dir=str(out),
    )
    written = sorted(out.glob("*.nii.gz"))
    assert len(written) == 1
    assert 0 < mask.sum() < mask.size, "a constant mask would make the comparison empty"
    saved = nib.load(str(written[0]))
    assert saved.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(saved.dataobj), mask)


def test_interactive_option_selects_the_light_profile(infer_task, study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert infer_task.task_config["interactive"] is False, "/info/ shows the option, off by default"
    for params, flips, overlap in (({}, [0], 0.5), ({"interactive": True}, [], 0.25)):
        data = infer_task.data_for(infer_request(infer_task, str(study), params=params))
        infer_task.pre_transforms(data)  # B L188-191 writes the request's option into the config
        inferer = infer_task.inferer(data)
        assert (list(inferer.flip_axes), inferer.overlap) == (flips, overlap)


def test_missing_pet_partner_names_both_files_and_reaches_a_web_client(
    infer_task, studies, tmp_path, monkeypatch, caplog
):
    import starlette.exceptions  # loaded in every MONAI Label server (FastAPI is built on it)

    monkeypatch.chdir(tmp_path)
    lonely = tmp_path / "lonely"
    shutil.copytree(studies, lonely, ignore=shutil.ignore_patterns(STUDIES_PET_FOLDER))
    store = LocalDatastore(str(lonely), extensions=["*.nii.gz", "*.nii"], auto_reload=False)
    image_id = sorted(store.list_images())[0]
    with pytest.raises(InputDataError) as raised:
        infer_task(infer_request(infer_task, image_id, store))
    ct = store.get_image_uri(image_id)
    assert str(raised.value).startswith(f"{ct}: its PET partner {Path(ct).parent / STUDIES_PET_FOLDER}")
    assert isinstance(raised.value, starlette.exceptions.HTTPException), "FastAPI answers it with its status"
    assert raised.value.status_code == 422 and raised.value.detail == str(raised.value)
    assert f"unusable study: {raised.value}" in caplog.messages, "the server log gets the line too"


@pytest.mark.slow
def test_train_task_completes_an_epoch_from_datastore_items(label_app_bundle, datastore, tmp_path, monkeypatch):
    """The real BundleTrainTask, as the /train endpoint's background job calls it (utils/async_tasks)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONAI_LABEL_RELOAD_APP_LIB", "false")  # keep this process's scripts modules loaded
    bundle = tmp_path / "model" / MODEL
    shutil.copytree(label_app_bundle, bundle)
    task = BundleTrainTask(str(bundle), conf={})
    assert task.is_valid()
    request = {"model": MODEL, "max_epochs": 1, "val_split": 0.34, "device": "cpu", "multi_gpu": False}
    request.update({"bundle_path": str(bundle), "gpus": "all"})  # added by AsyncTask.run and _task_func
    assert task(request, datastore) == {}
    assert sorted(p.name for p in (bundle / "models" / "fold0").iterdir()) == ["last_checkpoint_epoch=1.pt", "model.pt"]
    trained = torch.load(bundle / "models" / "fold0" / "model.pt", map_location="cpu", weights_only=True)
    started = torch.load(bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert trained.keys() == started.keys()
    assert any(not torch.equal(trained[k], started[k]) for k in started), "one epoch changed the weights"
