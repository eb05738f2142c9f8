"""The bundle inside MONAI Label 0.8.5, driven the way MONAI Label's own tasks drive it.

Real MONAI Label code runs here wherever it installs without touching the bundle's pins
(``requirements-monailabel.txt``, installed with ``--no-deps``): ``LocalDatastore`` lists the studies and hands
over image paths, ``BundleTrainTask`` trains, ``run_transforms`` runs the transform lists, ``device_list`` and
``name_to_device`` pick the device. The infer task classes (``monailabel.tasks.infer``) cannot be imported next
to the bundle's pins: ``monailabel/transform/post.py`` imports torchvision at module level (PyPI's torchvision
0.28.0 is a CUDA build whose import fails next to the CPU torch; the CPU build is not on PyPI) and
``monailabel/transform/writer.py`` imports itk (1.5 GB). So :class:`InferTaskAsInMonaiLabel` repeats what
``BundleInferTask`` (``tasks/infer/bundle.py``, "B") and ``BasicInferTask.__call__``
(``tasks/infer/basic_infer.py``, "BI") of monailabel 0.8.5 do, step by step, with their line numbers; the request
is built as ``endpoints/infer.py`` ("E") and ``interfaces/app.py`` ("A") build it. Not repeated: B's
``unload_module("scripts")`` (L107, L194), which would re-import the package under the other tests' feet.
``docs/monailabel.md`` records the same bundle in a real server.
"""

import copy
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigItem, ConfigParser, run
from monai.transforms import Compose, LoadImaged, SaveImaged
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.utils.transform import run_transforms
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.utils.others.generic import device_list, name_to_device

from scripts.data.file_layout import STUDIES_PET_FOLDER
from scripts.data.monailabel_studies import LABEL_FOLDER, build_studies_folder
from scripts.errors import InputDataError

MODEL = "petct_lesion_segmentation"
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


@contextmanager
def bundle_on_path(bundle: Path):
    """B L106, L193, L218: the task puts the bundle first on ``sys.path`` while it parses, then removes it."""
    sys.path.insert(0, str(bundle))
    try:
        yield
    finally:
        sys.path.remove(str(bundle))


class InferTaskAsInMonaiLabel:
    """``BundleInferTask`` + ``BasicInferTask.__call__`` of monailabel 0.8.5 (see the module docstring)."""

    def __init__(self, bundle: Path):
        self.bundle = bundle
        self.config = ConfigParser()  # B L309-313: inference.json alone, bundle_root forced to the bundle path
        self.config.read_config(str(bundle / "configs" / "inference.json"))
        self.config.config.update({"bundle_root": str(bundle)})
        self.config.config["use_click"] = False  # B L113, for a segmentation (not deepedit) task
        with bundle_on_path(bundle):  # B L118-121: network_def, built once
            self.network_def = self.config.get_parsed_content("network_def", instantiate=True)
        metadata = json.loads((bundle / "configs" / "metadata.json").read_text())  # B L132-147
        self.key_image = next(iter(metadata["network_data_format"]["inputs"]))
        self.key_pred = next(iter(metadata["network_data_format"]["outputs"]))
        channels = metadata["network_data_format"]["outputs"][self.key_pred]["channel_def"]
        self.labels = {v.lower(): int(k) for k, v in channels.items() if v.lower() != "background"}
        self.description = metadata.get("description")
        models = sorted((p.name for p in (bundle / "models").glob("*.pt")), key=len)
        self.task_config = {"device": device_list(), "model_filename": models}  # BI L101-111, B L165-167
        self.displayable = {}
        if self.config.get("displayable_configs"):  # B L169-172
            self.displayable = self.config.get_parsed_content("displayable_configs", instantiate=True)
            self.task_config.update(self.displayable)

    def data_for(self, request: dict) -> dict:
        """BI L270-285: the task config, the request over it, the device resolved, the image path added."""
        req = copy.deepcopy(self.task_config)
        req.update(request)
        req["device"] = name_to_device(req.get("device", "cuda"))
        data = copy.deepcopy(req)
        data.update({"image_path": req.get("image")})
        return data

    def _update_device(self, data: dict) -> None:  # B L301-307
        self.config.config.update({"device": data["device"]})
        if self.config.ref_resolver.items.get("device"):
            self.config.ref_resolver.items["device"] = ConfigItem(config=data["device"], id="device")

    def pre_transforms(self, data: dict) -> list:
        """B L186-219: request values written into displayable_configs, then ``preprocessing`` unpacked."""
        if self.displayable:
            self.config["displayable_configs"].update({c: data[c] for c in self.displayable})
            self.config.parse()
        with bundle_on_path(self.bundle):
            self._update_device(data)
            pre = self.config.get_parsed_content("preprocessing", instantiate=True)
        pre = list(pre.transforms) if isinstance(pre, Compose) else pre
        assert not any(isinstance(t, LoadImaged) for t in pre), "B L205-216 would rewrap LoadImaged; ours is custom"
        return pre

    def inferer(self, data: dict):  # B L221-233
        with bundle_on_path(self.bundle):
            self._update_device(data)
            return self.config.get_parsed_content("inferer", instantiate=True)

    def post_transforms(self, data: dict) -> list:
        """B L255-272: ``postprocessing`` unpacked, every SaveImaged dropped (``Restored`` follows, see below)."""
        with bundle_on_path(self.bundle):
            self._update_device(data)
            post = self.config.get_parsed_content("postprocessing", instantiate=True)
        post = list(post.transforms) if isinstance(post, Compose) else post
        return [t for t in post if not isinstance(t, SaveImaged)]

    def network(self, device: str) -> torch.nn.Module:
        """BI L462-486: a copy of network_def, ``models/model.pt`` loaded non-strictly (B L160), eval mode."""
        network = copy.deepcopy(self.network_def).to(torch.device(device))
        checkpoint = torch.load(self.bundle / "models" / "model.pt", map_location=torch.device(device))
        network.load_state_dict(checkpoint.get("model", checkpoint), strict=False)
        return network.eval()

    def __call__(self, request: dict) -> dict:
        """BI L296-323: pre-transforms, inferer, (no inversion for bundles: BI L314 with B's None), post-transforms."""
        data = self.data_for(request)
        data = run_transforms(data, self.pre_transforms(data), log_prefix="PRE", use_compose=False)
        inferer = self.inferer(data)  # BI L491-525 (run_inferer)
        network = self.network(data["device"])
        inputs = data[self.key_image]
        inputs = inputs if torch.is_tensor(inputs) else torch.from_numpy(inputs)
        inputs = inputs[None].to(torch.device(data["device"]))
        with torch.no_grad():
            outputs = inferer(inputs, network)
        data[self.key_pred] = outputs[0]
        return run_transforms(data, self.post_transforms(data), log_prefix="POST")


def infer_request(task: InferTaskAsInMonaiLabel, image: str, datastore=None, params: dict | None = None) -> dict:
    """E L148-163 then A L280-289: ``{model, image}`` and the params, the description, the datastore's image path."""
    request = {"model": MODEL, "image": image}
    request.update(params or {})
    request["description"] = task.description
    if not os.path.exists(image):
        request["image"] = datastore.get_image_uri(request["image"])
    return request


def returned_mask(task: InferTaskAsInMonaiLabel, data: dict) -> tuple[np.ndarray, np.ndarray]:
    """The array and affine MONAI Label writes, given that the bundle already restored the CT grid.

    ``Restored(keys=pred, ref_image=image)`` (B L268-269; transform/post.py L117-165) resizes the prediction only
    when its shape differs from the image meta's ``spatial_shape`` (L127-134), drops a single channel (L157) and
    takes the image's ``original_affine`` (L163); the ``Writer`` (transform/writer.py L183-233) writes that array
    with that affine, in its own dtype unless the request sets ``result_dtype``.
    """
    pred, image = data[task.key_pred], data[task.key_image]
    assert tuple(pred.shape[1:]) == tuple(int(s) for s in image.meta["spatial_shape"]), "Restored would resize"
    assert pred.shape[0] == 1
    return np.asarray(pred)[0], np.asarray(image.meta["original_affine"])


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
