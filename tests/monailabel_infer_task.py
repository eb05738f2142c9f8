"""How monailabel 0.8.5's bundle infer task drives a bundle, step by step, for the tests.

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

from __future__ import annotations

import copy
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigItem, ConfigParser
from monai.transforms import Compose, LoadImaged, SaveImaged
from monailabel.interfaces.utils.transform import run_transforms
from monailabel.utils.others.generic import device_list, name_to_device

MODEL = "petct_lesion_segmentation"


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
