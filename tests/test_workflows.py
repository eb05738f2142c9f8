"""The bundle workflows end to end through MONAI's ConfigWorkflow, on tiny synthetic PET/CT.

train (2 iterations) -> resume -> infer (flip TTA) -> evaluate, each with ``check_properties()`` empty, as the
model zoo's CI runs bundles. One module-scoped cohort keeps the suite fast.
"""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
from tiny_overrides import TINY_NETWORK

TINY = {**TINY_NETWORK, "val_interval": 1}


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset("workflow")


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory, bundle_root):
    """A bundle root holding the checkpoints of a 2-iteration training of fold 0."""
    root = tmp_path_factory.mktemp("bundle_run")
    workflow = _workflow(bundle_root, "train", "train.json", root, dataset, max_epochs=1, iterations_per_epoch=2)
    workflow.run()
    workflow.finalize()
    return root


def _workflow(bundle_root, workflow_type, config, root, dataset, **override):
    """A ConfigWorkflow built from a foreign working directory: the configs must not depend on it."""
    configs = [str(bundle_root / "configs" / name) for name in ([config] if isinstance(config, str) else config)]
    workflow = ConfigWorkflow(
        workflow_type=workflow_type,
        config_file=configs,
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        **{**TINY, "bundle_root": str(root), "dataset_dir": str(dataset), **override},
    )
    workflow.initialize()
    assert not workflow.check_properties(), workflow.check_properties()
    return workflow


@pytest.fixture(autouse=True)
def _foreign_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_train_writes_best_and_last_checkpoints(trained):
    files = sorted(p.name for p in (trained / "models" / "fold0").iterdir())
    assert "model.pt" in files
    assert "last_checkpoint_epoch=1.pt" in files
    last = torch.load(trained / "models" / "fold0" / "last_checkpoint_epoch=1.pt", weights_only=False)
    assert {"model", "optimizer", "lr_scheduler", "trainer"} <= set(last)
    assert last["trainer"]["iteration"] == 2 and last["trainer"]["epoch_length"] == 2
    assert list((trained / "runs" / "fold0").glob("events.out.tfevents.*")), "TensorBoard events are written"


def test_resume_continues_from_the_last_epoch(trained, dataset, bundle_root):
    workflow = _workflow(bundle_root, "train", "train.json", trained, dataset, max_epochs=2, iterations_per_epoch=2)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    epochs_run = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: epochs_run.append(engine.state.epoch))
    workflow.run()
    workflow.finalize()
    assert epochs_run == [2], "resuming must run only the missing epoch, not start again from epoch 0"
    assert trainer.state.iteration == 4
    last = sorted(p.name for p in (trained / "models" / "fold0").glob("last_checkpoint_*"))
    assert last == ["last_checkpoint_epoch=2.pt"], "the resumed session's checkpoint replaces the previous one"


def test_stale_checkpoints_are_every_last_checkpoint_but_the_newest(tmp_path):
    import os

    from scripts.training.last_checkpoints import PruneStaleCheckpoints, stale_checkpoints

    # an old run reached epoch 10; a fresh --resume False run has just written epoch 2
    times = {"last_checkpoint_epoch=9.pt": 90, "last_checkpoint_epoch=10.pt": 100, "last_checkpoint_epoch=2.pt": 200}
    for name, mtime in {**times, "model.pt": 300}.items():
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (mtime, mtime))
    stale = sorted(p.name for p in stale_checkpoints(tmp_path))
    assert stale == ["last_checkpoint_epoch=10.pt", "last_checkpoint_epoch=9.pt"], "the newest file is kept"
    PruneStaleCheckpoints(tmp_path)()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint_epoch=2.pt", "model.pt"]


def test_inference_on_one_study_writes_its_mask_on_the_original_ct_grid(trained, dataset, bundle_root, tmp_path):
    """A single study given by its CT path (the PET partner found by name), full 8-flip TTA."""
    item = json.loads((dataset / "datalist_all.json").read_text())["training"][0]
    ct_path = dataset / item["image"][0]
    out = tmp_path / "pred"
    workflow = _workflow(
        bundle_root, "infer", "inference.json", trained, dataset, input_path=str(ct_path), output_dir=str(out)
    )
    workflow.run()
    workflow.finalize()
    assert [p.name for p in out.iterdir()] == [f"{item['case']}.nii.gz"]
    ct = nib.load(str(ct_path))
    mask = nib.load(str(out / f"{item['case']}.nii.gz"))
    assert mask.shape == ct.shape
    np.testing.assert_allclose(mask.affine, ct.affine, atol=1e-4)
    assert mask.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}


def test_evaluate_scores_every_validation_study(trained, dataset, bundle_root, tmp_path):
    out = tmp_path / "eval"
    configs = ["inference.json", "evaluate.json"]
    workflow = _workflow(bundle_root, "eval", configs, trained, dataset, output_dir=str(out), tta_axes=[0])
    workflow.run()
    workflow.finalize()
    validation = json.loads((dataset / "datalist_fold0.json").read_text())["validation"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("case,dice,fpv_ml,fnv_ml")
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted(item["case"] for item in validation)
    summary = json.loads((out / "metrics_summary.json").read_text())
    assert summary["cases"] == len(validation)
    cases = sorted(item["case"] for item in validation)
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == cases
    assert sorted(p.name for p in (out / "lesions").glob("*_lesions.json")) == [f"{c}_lesions.json" for c in cases]


@pytest.fixture(scope="module")
def pretraining_datalist(dataset, tmp_path_factory):
    """Four PET/CT pairs and the other studies as CT-only scans."""
    from scripts.mae import pretraining_datalist

    cases = json.loads((dataset / "datalist_all.json").read_text())["training"]
    pairs = [[str(dataset / p) for p in item["image"]] for item in cases[:4]]
    ct_only = [str(dataset / item["image"][0]) for item in cases[4:]]
    path = tmp_path_factory.mktemp("pretrain") / "pretrain_datalist.json"
    path.write_text(json.dumps(pretraining_datalist(pairs, ct_only)))
    return path


def _torchrun(bundle_root, configs, overrides, cwd):
    import subprocess
    import sys
    from pathlib import Path

    files = "[" + ",".join(repr(str(bundle_root / "configs" / name)) for name in configs) + "]"
    command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nnodes=1", "--nproc_per_node=2"]
    command += ["-m", "monai.bundle", "run", "--config_file", files]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    return log


def test_multi_gpu_overlay_trains_two_ranks_with_torchrun_on_cpu(dataset, bundle_root, tmp_path):
    """DDP through torchrun with gloo: both ranks step, and only rank 0 writes a checkpoint."""
    root = tmp_path / "ddp"
    overrides = {**TINY, "bundle_root": str(root), "dataset_dir": str(dataset), "max_epochs": 1}
    overrides["iterations_per_epoch"] = 2
    log = _torchrun(bundle_root, ["train.json", "multi_gpu_train.json"], overrides, cwd=tmp_path)
    completed = [line for line in log.splitlines() if "SupervisedTrainer" in line and "Epoch[1] Complete" in line]
    assert len(completed) == 2, "both ranks must finish their epoch"
    assert sorted(p.name for p in (root / "models" / "fold0").iterdir()) == ["last_checkpoint_epoch=1.pt", "model.pt"]
    assert log.count("validation at epoch 1:") == 1, "rank 0 alone prints the validation line"
    assert (root / "runs" / "fold0" / "training_curves.png").is_file(), "and draws the curves"
    state = torch.load(root / "models" / "fold0" / "model.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in state), "rank 0 saves the unwrapped network"


def test_multi_gpu_pretraining_writes_one_encoder_that_fine_tuning_loads(pretraining_datalist, bundle_root, tmp_path):
    """DDP MAE pretraining through torchrun with gloo: both ranks step, rank 0 writes the encoder once."""
    from scripts.mae import load_pretrained_encoder
    from scripts.networks import BiXLSTMResUNet

    root = tmp_path / "ddp_mae"
    overrides = {**TINY, "bundle_root": str(root), "datalist": str(pretraining_datalist), "max_epochs": 1}
    overrides.update(iterations_per_epoch=2, mask_block_size=8)
    log = _torchrun(bundle_root, ["train.json", "pretrain.json", "multi_gpu_pretrain.json"], overrides, cwd=tmp_path)
    completed = [line for line in log.splitlines() if "SupervisedTrainer" in line and "Epoch[1] Complete" in line]
    assert len(completed) == 2, "both ranks must finish their epoch"
    files = sorted(p.name for p in (root / "models" / "mae").iterdir())
    assert files == ["encoder.pt", "last_checkpoint_epoch=1.pt"]
    network = BiXLSTMResUNet(features=TINY["features"], strides=TINY["strides"], xlstm="bot")
    report = load_pretrained_encoder(network, root / "models" / "mae" / "encoder.pt")
    assert report.complete and report.num_loaded == len(network.encoder_state_dict())


def test_training_from_an_mae_encoder_loads_it_whole_and_warmup_keeps_it_frozen(dataset, bundle_root, tmp_path):
    from scripts.mae import MAEReconstructor, save_encoder_checkpoint

    torch.manual_seed(1)
    mae = MAEReconstructor(features=TINY["features"], strides=TINY["strides"])
    checkpoint = save_encoder_checkpoint(mae, tmp_path / "mae_encoder.pt")
    root = tmp_path / "finetune"
    workflow = _workflow(
        bundle_root,
        "train",
        "train.json",
        root,
        dataset,
        max_epochs=1,
        iterations_per_epoch=2,
        pretrained_encoder=str(checkpoint),
        encoder_warmup_epochs=1,
    )
    workflow.run()
    workflow.finalize()
    trained = torch.load(root / "models" / "fold0" / "model.pt", weights_only=True)
    pretrained = mae.encoder_state_dict()
    assert pretrained and set(pretrained) <= set(trained)
    assert any(".xlstm" in key or "bixlstm" in key.lower() or "pairs" in key for key in pretrained)
    for key, value in pretrained.items():
        torch.testing.assert_close(trained[key], value, msg=f"{key} changed: not loaded, or not frozen")


def test_a_checkpoint_that_does_not_cover_the_encoder_fails_loudly(dataset, bundle_root, tmp_path):
    from scripts.errors import InputDataError

    wrong = tmp_path / "not_an_encoder.pt"
    torch.save({"model": {"decoder.head.weight": torch.zeros(2, 8, 1, 1, 1)}}, wrong)
    workflow = _workflow(
        bundle_root,
        "train",
        "train.json",
        tmp_path / "run",
        dataset,
        max_epochs=1,
        iterations_per_epoch=1,
        pretrained_encoder=str(wrong),
    )
    with pytest.raises(RuntimeError) as raised:  # MONAI wraps errors raised inside config expressions
        workflow.run()
    cause = raised.value
    while cause is not None and not isinstance(cause, InputDataError):
        cause = cause.__cause__
    assert cause is not None and "not_an_encoder.pt" in str(cause) and "encoder" in cause.problem


def test_pretrain_on_pet_ct_and_ct_only_writes_an_encoder_that_fine_tuning_loads(
    dataset, pretraining_datalist, bundle_root, tmp_path
):
    from scripts.mae import load_pretrained_encoder
    from scripts.networks import BiXLSTMResUNet

    root = tmp_path / "mae_run"
    workflow = _workflow(
        bundle_root,
        "train",
        ["train.json", "pretrain.json"],
        root,
        dataset,
        datalist=str(pretraining_datalist),
        max_epochs=1,
        iterations_per_epoch=2,
        mask_block_size=8,
    )
    workflow.run()
    workflow.finalize()
    encoder = root / "models" / "mae" / "encoder.pt"
    assert encoder.is_file() and (root / "models" / "mae" / "last_checkpoint_epoch=1.pt").is_file()
    network = BiXLSTMResUNet(features=TINY["features"], strides=TINY["strides"])
    report = load_pretrained_encoder(network, encoder)
    assert report.complete and report.num_loaded == len(network.encoder_state_dict())
