# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""MAE pretraining pieces: block masking, CT-only studies, masked loss, trainer run, encoder transfer, warm-up."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from monai.data import load_decathlon_datalist
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.utils import set_determinism

from scripts.atomic_io import save_nifti
from scripts.errors import InputDataError
from scripts.mae import (
    ENCODER_CHECKPOINT_FORMAT,
    EncoderWarmup,
    LoadPretrainingStudyd,
    MAEPrepareBatch,
    MAEReconstructor,
    MaskedReconstructionLoss,
    MaskedReconstructionMSE,
    PretrainedEncoderLoader,
    RandBlockMaskd,
    block_grid_mask,
    block_grid_shape,
    encoder_param_groups,
    load_pretrained_encoder,
    masked_block_count,
    pretraining_datalist,
    save_encoder_checkpoint,
)
from scripts.mae.write_pretraining_datalist import main as datalist_main
from scripts.networks import BiXLSTMResUNet

torch.set_flush_denormal(True)

# A 3-stage network whose bottleneck (4x4x4 tokens on a 16^3 input) still runs the xLSTM.
TINY = {
    "features": [8, 16, 16],
    "strides": [1, 2, 2],
    "blocks_per_stage": 1,
    "decoder_blocks_per_stage": 1,
    "xlstm": "bot",
    "xlstm_heads": 2,
}
SIZE = 16
AFFINE = np.diag([3.0, 3.0, 4.0, 1.0])


def tiny_network(seed: int = 0, **overrides) -> BiXLSTMResUNet:
    torch.manual_seed(seed)
    return BiXLSTMResUNet(**{**TINY, **overrides})


def tiny_mae(seed: int = 0, **overrides) -> MAEReconstructor:
    torch.manual_seed(seed)
    return MAEReconstructor(**{**TINY, **overrides})


def smooth_volume(seed: int, channels: int = 2) -> torch.Tensor:
    """A [C, 16, 16, 16] image of a few Gaussian blobs per channel (easy to in-paint), roughly unit scale."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(SIZE)] * 3, indexing="ij"), axis=-1).astype(np.float32)
    image = np.zeros((channels, SIZE, SIZE, SIZE), np.float32)
    for channel in range(channels):
        for _ in range(3):
            centre, width = rng.uniform(3, SIZE - 3, 3), rng.uniform(3, 6)
            image[channel] += np.exp(-((grid - centre) ** 2).sum(-1) / (2 * width**2))
    return torch.from_numpy(image - image.mean(axis=(1, 2, 3), keepdims=True))


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize(
    "shape, block, ratio",
    [
        ((16, 16, 16), 4, 0.75),  # 64 blocks, 48 hidden
        ((32, 16, 8), (8, 4, 2), 0.6),  # anisotropic blocks, 4*4*4 = 64 blocks, 38 hidden
        ((160, 192, 128), 16, 0.75),  # the paper patch with the nnssl default: 10*12*8 = 960 blocks, 720 hidden
    ],
)
def test_block_mask_hides_exactly_the_ratio_of_whole_blocks(shape, block, ratio):
    hidden = block_grid_mask(shape, block, ratio, np.random.RandomState(0))
    assert hidden.shape == shape and hidden.dtype == bool
    grid = block_grid_shape(shape, block)
    sizes = (block,) * 3 if isinstance(block, int) else block
    blocks = hidden.reshape(grid[0], sizes[0], grid[1], sizes[1], grid[2], sizes[2])
    per_block = blocks.mean(axis=(1, 3, 5))
    assert set(np.unique(per_block)) <= {0.0, 1.0}  # every block all hidden or all visible
    expected = round(ratio * np.prod(grid))
    assert per_block.sum() == expected == masked_block_count(int(np.prod(grid)), ratio)
    assert hidden.mean() == pytest.approx(expected / np.prod(grid))


def test_block_mask_on_a_partial_grid_counts_blocks_and_draws_differently():
    shape = (18, 16, 10)  # 3 x 2 x 2 blocks of 8: the last blocks are partial
    first = block_grid_mask(shape, 8, 0.5, np.random.RandomState(1))
    corners = first[::8, ::8, ::8]
    assert corners.shape == (3, 2, 2) and corners.sum() == 6
    draws = {block_grid_mask(shape, 8, 0.5, np.random.RandomState(seed)).tobytes() for seed in range(10)}
    assert len(draws) > 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ratio": 1.0}, "ratio"),
        ({"ratio": 0.0}, "ratio"),
        ({"block_size": 0}, "block_size"),
        ({"block_size": [4, 4]}, "block_size"),
        ({"modality_dropout_prob": 1.5}, "modality_dropout_prob"),
        ({"keys": ["image", "other"]}, "one image key"),
    ],
)
def test_rand_block_mask_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandBlockMaskd(**kwargs)


def test_rand_block_mask_writes_masked_input_clean_target_and_mask():
    image = smooth_volume(0)
    masker = RandBlockMaskd(keys="image", block_size=4, ratio=0.75)
    masker.set_random_state(seed=3)
    out = masker({"image": image.clone(), "case": "a"})
    mask = out["mask"]
    assert mask.shape == (2, SIZE, SIZE, SIZE) and mask.dtype == torch.float32
    assert torch.equal(mask[0], mask[1])  # one mask shared by CT and PET by default
    assert mask.mean().item() == pytest.approx(0.75)
    torch.testing.assert_close(out["target"], image)
    assert torch.all(out["image"][mask.bool()] == 0)
    torch.testing.assert_close(out["image"][~mask.bool()], image[~mask.bool()])
    assert torch.equal(out["channel_valid"], torch.ones(2)) and out["case"] == "a"
    masker.set_random_state(seed=3)
    assert torch.equal(masker({"image": image.clone()})["mask"], mask)  # reproducible from the seed


def test_modality_dropout_hides_one_whole_channel_and_independent_masks_differ():
    image = smooth_volume(1)
    dropper = RandBlockMaskd(block_size=4, ratio=0.5, modality_dropout_prob=1.0)
    dropper.set_random_state(seed=0)
    dropped = set()
    for _ in range(12):
        out = dropper({"image": image.clone()})
        full = [c for c in range(2) if bool(out["mask"][c].all())]
        assert len(full) == 1 and dropper.dropped_channel == full[0]
        assert torch.all(out["image"][full[0]] == 0)
        assert out["mask"][1 - full[0]].mean().item() == pytest.approx(0.5)  # the other keeps its block mask
        dropped.add(full[0])
    assert dropped == {0, 1}
    independent = RandBlockMaskd(block_size=4, ratio=0.5, independent_channels_prob=1.0)
    independent.set_random_state(seed=0)
    mask = independent({"image": image.clone()})["mask"]
    assert not torch.equal(mask[0], mask[1]) and mask[0].mean() == mask[1].mean() == 0.5


def test_ct_only_sample_gets_zero_pet_and_is_never_ct_dropped():
    image = smooth_volume(2)
    image[1] = -0.75  # what a zero PET becomes after z-scoring
    masker = RandBlockMaskd(block_size=4, ratio=0.75, modality_dropout_prob=1.0)
    masker.set_random_state(seed=0)
    for _ in range(5):
        out = masker({"image": image.clone(), "channel_valid": torch.tensor([1.0, 0.0])})
        assert masker.dropped_channel is None  # a single valid channel is never dropped
        assert torch.all(out["image"][1] == 0) and torch.all(out["target"][1] == 0)
        assert out["mask"][0].mean().item() == pytest.approx(0.75)
        torch.testing.assert_close(out["target"][0], image[0])


# ---------------------------------------------------------------- loss


def test_masked_loss_matches_hand_computed_values():
    pred = torch.zeros(2, 2, 2, 2, 2)
    target = torch.zeros_like(pred)
    target[:, 0] = 1.0  # CT error 1 everywhere
    target[:, 1] = 3.0  # PET error 3 everywhere ...
    target[0, 1, 0] = 5.0  # ... except 5 on half of sample 0
    mask = torch.zeros(2, 1, 2, 2, 2)
    mask[:, :, 0] = 1  # the first half of every volume is hidden
    loss = MaskedReconstructionLoss()
    # CT: hidden error 1 -> 1; PET: sample 0 hidden error 5 (25), sample 1 error 3 (9) -> 17; mean 9
    torch.testing.assert_close(loss.per_channel(pred, target, mask), torch.tensor([1.0, 17.0]))
    torch.testing.assert_close(loss(pred, target, mask), torch.tensor(9.0))
    # sample 0 without PET: PET is sample 1 only -> 9; mean of (1, 9) = 5
    valid = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(loss(pred, {"target": target, "mask": mask, "channel_valid": valid}), torch.tensor(5.0))
    # visible voxels at weight 0.5: PET = (4*25 + 4*9 + 0.5*8*9) / (8 + 0.5*8) = 14.33.., CT stays 1
    weighted = MaskedReconstructionLoss(visible_weight=0.5).per_channel(pred, target, mask)
    torch.testing.assert_close(weighted, torch.tensor([1.0, (100 + 36 + 36) / 12]))


def test_ct_only_samples_give_no_pet_loss_and_no_pet_gradient():
    pred = torch.randn(2, 2, 4, 4, 4, requires_grad=True)
    target, mask = torch.randn(2, 2, 4, 4, 4), (torch.rand(2, 2, 4, 4, 4) > 0.5).float()
    ct_only = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = MaskedReconstructionLoss()
    per_channel = loss.per_channel(pred, target, mask, ct_only)
    assert torch.isnan(per_channel[1])  # no PET voxel scored at all
    value = loss(pred, target, mask, ct_only)
    value.backward()
    assert torch.all(pred.grad[:, 1] == 0) and pred.grad[:, 0].abs().sum() > 0
    torch.testing.assert_close(value, per_channel[0])
    nothing = loss(pred, target, mask, torch.zeros(2, 2))
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_masked_loss_rejects_what_it_cannot_score():
    loss = MaskedReconstructionLoss()
    pred = torch.zeros(1, 2, 4, 4, 4)
    with pytest.raises(KeyError, match="mask"):
        loss(pred, {"target": pred})
    with pytest.raises(ValueError, match="needs the mask"):
        loss(pred, pred)
    with pytest.raises(ValueError, match="channel_valid"):
        loss(pred, pred, torch.ones(1, 1, 4, 4, 4), torch.ones(1, 3))
    with pytest.raises(TypeError, match="deep supervision"):
        loss([pred], pred, torch.ones(1, 1, 4, 4, 4))


# ---------------------------------------------------------------- model


def test_mae_reuses_the_segmentation_encoder_names_and_reconstructs_every_channel():
    network = tiny_network()
    for decoder in ("unet", "light"):
        mae = tiny_mae(decoder=decoder)
        assert set(mae.encoder_state_dict()) == set(network.encoder_state_dict())
        assert any(".xlstm_layers.2." in key for key in mae.encoder_state_dict())  # the xLSTM is transferred too
        assert mae(torch.randn(2, 2, SIZE, SIZE, SIZE)).shape == (2, 2, SIZE, SIZE, SIZE)
    shared = MAEReconstructor(network=network, decoder="light")
    assert shared.encoder is network.encoder
    with pytest.raises(ValueError, match="divisible"):
        shared(torch.randn(1, 2, 18, 16, 16))
    with pytest.raises(ValueError, match="either network or its keywords"):
        MAEReconstructor(network=network, features=[8, 16])
    with pytest.raises(ValueError, match="decoder="):
        tiny_mae(decoder="big")


# ---------------------------------------------------------------- CT-only studies and datalists


@pytest.fixture()
def study_folder(tmp_path) -> Path:
    """Two nnU-Net PET/CT studies, one CT-only volume and a label file that must be ignored."""
    rng = np.random.default_rng(0)
    for case in ("case_a", "case_b"):
        save_nifti(rng.uniform(-1000, 1000, (SIZE,) * 3), AFFINE, tmp_path / "imagesTr" / f"{case}_0000.nii.gz")
        save_nifti(rng.uniform(0, 20, (SIZE,) * 3), AFFINE, tmp_path / "imagesTr" / f"{case}_0001.nii.gz")
    save_nifti(np.zeros((SIZE,) * 3, np.uint8), AFFINE, tmp_path / "labelsTr" / "case_a.nii.gz")
    save_nifti(rng.uniform(-1000, 1000, (SIZE,) * 3), AFFINE, tmp_path / "longitudinal" / "p1_ct.nii.gz")
    return tmp_path


def test_datalist_cli_mixes_pet_ct_and_ct_only_items(study_folder):
    output = study_folder / "datalist_pretrain.json"
    status = datalist_main(
        ["--pet-ct", str(study_folder / "imagesTr"), "--ct-only", str(study_folder / "longitudinal")]
        + ["--output", str(output)]
    )
    assert status == 0
    written = json.loads(output.read_text())
    assert written == {
        "training": [
            {"image": ["imagesTr/case_a_0000.nii.gz", "imagesTr/case_a_0001.nii.gz"]},
            {"image": ["imagesTr/case_b_0000.nii.gz", "imagesTr/case_b_0001.nii.gz"]},
            {"image": "longitudinal/p1_ct.nii.gz", "pet": None},
        ],
        "validation": [],
    }
    items = load_decathlon_datalist(output, False, "training", study_folder)
    assert items[2] == {"image": str(study_folder / "longitudinal" / "p1_ct.nii.gz"), "pet": None}
    split = pretraining_datalist([("a", "b")] * 6, ["c"] * 4, validation_fraction=0.3, seed=1)
    assert len(split["training"]) == 7 and len(split["validation"]) == 3
    assert datalist_main(["--ct-only", str(study_folder / "absent"), "--output", str(output)]) == 1


def test_loader_gives_pet_ct_and_ct_only_studies_one_layout(study_folder):
    items = [
        {"image": [str(study_folder / "imagesTr" / f"case_a_000{c}.nii.gz") for c in (0, 1)]},
        {"image": str(study_folder / "imagesTr" / "case_b_0000.nii.gz")},  # PET partner found by name
        {"image": str(study_folder / "longitudinal" / "p1_ct.nii.gz"), "pet": None},
    ]
    loader = LoadPretrainingStudyd(keys="image")
    loaded = [loader(item) for item in items]
    for out in loaded:
        assert out["image"].shape == (2, SIZE, SIZE, SIZE) and "pet" not in out
        assert sorted(out["image"].meta) == sorted(loaded[0]["image"].meta)  # collates with PET/CT studies
    assert [out["channel_valid"].tolist() for out in loaded] == [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]
    assert torch.all(loaded[2]["image"][1] == 0) and loaded[2]["image"][0].abs().sum() > 0
    np.testing.assert_allclose(loaded[2]["image"].affine.numpy(), AFFINE)
    with pytest.raises(InputDataError, match="p2_ct.nii.gz: file not found"):
        loader({"image": str(study_folder / "p2_ct.nii.gz"), "pet": None})
    with pytest.raises(InputDataError, match="needs one CT file"):
        loader({"image": items[0]["image"], "pet": None})


# ---------------------------------------------------------------- a real SupervisedTrainer run


def pretraining_config(datalist: Path, dataset_dir: Path, encoder_path: Path) -> dict:
    """What configs/pretrain.json could look like, reduced to tiny volumes and a few iterations."""
    return {
        "network_def": {"_target_": "scripts.networks.BiXLSTMResUNet", **TINY},
        "network": {"_target_": "scripts.mae.MAEReconstructor", "network": "@network_def", "decoder": "unet"},
        "transforms": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "scripts.mae.LoadPretrainingStudyd", "keys": "image"},
                {"_target_": "scripts.transforms.ClipNormalized", "keys": "image", "channel": 0},
                {"_target_": "scripts.transforms.ClipNormalized", "keys": "image", "channel": 1},
                {"_target_": "RandFlipd", "keys": "image", "prob": 0.5, "spatial_axis": 0},
                {"_target_": "scripts.mae.RandBlockMaskd", "keys": "image", "block_size": 4, "ratio": 0.75},
            ],
        },
        "dataset": {
            "_target_": "Dataset",
            "data": f"$monai.data.load_decathlon_datalist('{datalist}', False, 'training', '{dataset_dir}')",
            "transform": "@transforms",
        },
        "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 3, "shuffle": False},
        "optimizer": {"_target_": "torch.optim.Adam", "params": "$@network.parameters()", "lr": 0.01},
        "trainer": {
            "_target_": "SupervisedTrainer",
            "max_epochs": 4,
            "device": "$torch.device('cpu')",
            "train_data_loader": "@dataloader",
            "network": "@network",
            "loss_function": {"_target_": "scripts.mae.MaskedReconstructionLoss"},
            "optimizer": "@optimizer",
            "prepare_batch": {"_target_": "scripts.mae.MAEPrepareBatch"},
            "decollate": False,
            "train_handlers": [
                {"_target_": "scripts.mae.EncoderCheckpointSaver", "model": "@network", "save_path": str(encoder_path)}
            ],
        },
    }


def test_supervised_trainer_pretrains_on_mixed_pet_ct_and_ct_only_batches(study_folder):
    assert (
        datalist_main(
            ["--pet-ct", str(study_folder / "imagesTr"), "--ct-only", str(study_folder / "longitudinal")]
            + ["--output", str(study_folder / "datalist.json")]
        )
        == 0
    )
    encoder_path = study_folder / "models" / "mae_encoder.pt"
    set_determinism(seed=0)
    parser = ConfigParser(pretraining_config(study_folder / "datalist.json", study_folder, encoder_path))
    trainer = parser.get_parsed_content("trainer")
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda engine: seen.append((engine.state.output["loss"].item(), engine.state.output["label"]["channel_valid"])),
    )
    trainer.run()
    set_determinism(seed=None)
    assert len(seen) == 4 and all(np.isfinite(loss) for loss, _ in seen)
    assert seen[0][1].tolist() == [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]  # one batch holds both kinds of study
    saved = torch.load(encoder_path, weights_only=True)
    assert saved["format"] == ENCODER_CHECKPOINT_FORMAT
    assert set(saved["encoder"]) == set(parser.get_parsed_content("network").encoder_state_dict())


def test_reconstruction_loss_falls_within_a_few_steps():
    set_determinism(seed=0)
    volumes = [smooth_volume(seed) for seed in range(2)]
    masker = RandBlockMaskd(block_size=4, ratio=0.6)
    masker.set_random_state(seed=0)
    samples = [masker({"image": volume.clone()}) for volume in volumes for _ in range(2)]
    batch = {key: torch.stack([sample[key] for sample in samples]) for key in ("image", "target", "mask")}
    mae = tiny_mae(decoder="light")
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=30,
        train_data_loader=[batch],
        network=mae,
        optimizer=torch.optim.Adam(mae.parameters(), lr=0.01),
        loss_function=MaskedReconstructionLoss(),
        prepare_batch=MAEPrepareBatch(),
        decollate=False,
    )
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: losses.append(engine.state.output["loss"]))
    trainer.run()
    set_determinism(seed=None)
    print(f"masked reconstruction MSE: step 1 {losses[0].item():.4f}, step 30 {losses[-1].item():.4f}")
    assert losses[-1].item() < 0.3 * losses[0].item()


def test_evaluator_reports_the_held_out_masked_error():
    masker = RandBlockMaskd(block_size=4, ratio=0.75)
    masker.set_random_state(seed=1)
    samples = [
        masker({"image": smooth_volume(seed), "channel_valid": torch.tensor([1.0, seed % 2])}) for seed in (5, 6)
    ]
    batch = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
    mae = tiny_mae().eval()
    evaluator = SupervisedEvaluator(  # decollate=True (the default): the metric re-stacks the samples
        device=torch.device("cpu"),
        val_data_loader=[batch],
        network=mae,
        prepare_batch=MAEPrepareBatch(),
        key_val_metric={"val_masked_mse": MaskedReconstructionMSE()},
    )
    evaluator.run()
    with torch.no_grad():
        expected = MaskedReconstructionLoss()(
            mae(batch["image"]), batch["target"], batch["mask"], batch["channel_valid"]
        )
    assert evaluator.state.metrics["val_masked_mse"] == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------- transfer


@pytest.fixture()
def pretrained(tmp_path):
    """A briefly trained tiny MAE (so its encoder differs from any fresh one) and its encoder checkpoint."""
    mae = tiny_mae(seed=1)
    optimizer = torch.optim.SGD(mae.parameters(), lr=0.1)
    x = smooth_volume(3)[None]
    for _ in range(2):
        optimizer.zero_grad()
        mae(x).square().mean().backward()
        optimizer.step()
    return mae, save_encoder_checkpoint(mae, tmp_path / "encoder.pt")


def test_transfer_loads_every_encoder_tensor_and_reproduces_the_encoder(pretrained):
    mae, path = pretrained
    network = tiny_network(seed=7)
    decoder_before = {key: value.clone() for key, value in network.decoder.state_dict().items()}
    report = load_pretrained_encoder(network, path)
    assert report.num_loaded == len(network.encoder_state_dict()) == len(mae.encoder_state_dict())
    assert report.complete and report.left == sorted("decoder." + key for key in decoder_before)
    for key, value in network.decoder.state_dict().items():
        assert torch.equal(value, decoder_before[key])
    mae.eval(), network.eval()
    x = torch.randn(1, 2, SIZE, SIZE, SIZE)
    with torch.no_grad():
        for ours, theirs in zip(network.encoder(x), mae.encoder(x), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_transfer_accepts_full_mae_and_ddp_style_checkpoints(pretrained, tmp_path):
    mae, _ = pretrained
    full = {"model": mae.state_dict(), "optimizer": {"state": {}, "param_groups": []}}  # CheckpointSaver, 2 objects
    torch.save(full, tmp_path / "full.pt")
    torch.save({"module." + key: value for key, value in mae.state_dict().items()}, tmp_path / "ddp.pt")
    for name in ("full.pt", "ddp.pt"):
        network = tiny_network(seed=5)
        assert load_pretrained_encoder(network, tmp_path / name).num_loaded == len(mae.encoder_state_dict())
        torch.testing.assert_close(network.encoder_state_dict(), mae.encoder_state_dict())


def test_wrong_checkpoints_fail_loudly_naming_file_and_tensors(pretrained, tmp_path):
    mae, _ = pretrained
    decoder_only = {key: value for key, value in mae.state_dict().items() if key.startswith("decoder.")}
    cases = {
        "random.pt": ({"weights": torch.randn(3), "epoch": 4}, "not an MAE or encoder checkpoint"),
        "decoder_only.pt": (decoder_only, "no 'encoder.\\*' tensors"),
        "tensor.pt": (torch.randn(3), "holds a Tensor"),
        "wide.pt": (tiny_mae(features=[8, 16, 32]).state_dict(), r"differ in shape: encoder\..*\(checkpoint"),
    }
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(InputDataError, match=f"{name}: .*{message}"):
            load_pretrained_encoder(tiny_network(), tmp_path / name)
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(InputDataError, match="notes.pt: not a PyTorch checkpoint"):
        load_pretrained_encoder(tiny_network(), tmp_path / "notes.pt")
    with pytest.raises(InputDataError, match="absent.pt: pretrained encoder checkpoint not found"):
        load_pretrained_encoder(tiny_network(), tmp_path / "absent.pt")
    with pytest.raises(InputDataError, match="absent.pt: pretrained encoder checkpoint not found"):
        PretrainedEncoderLoader(tiny_network(), tmp_path / "absent.pt")


def test_incomplete_cover_fails_unless_allowed(tmp_path):
    path = save_encoder_checkpoint(tiny_mae(xlstm="none"), tmp_path / "no_xlstm.pt")
    with pytest.raises(InputDataError, match=r"no_xlstm.pt: .*missing: encoder\.xlstm_layers\.2\."):
        load_pretrained_encoder(tiny_network(), path)
    report = load_pretrained_encoder(tiny_network(), path, require_full=False)
    assert not report.complete and report.missing and all(".xlstm_layers." in key for key in report.missing)
    assert report.num_loaded + len(report.missing) == len(tiny_network().encoder_state_dict())


def test_loader_handler_loads_at_start_but_not_on_resume_or_without_checkpoint(pretrained):
    mae, path = pretrained
    network = tiny_network(seed=9)
    engine = Engine(lambda engine, batch: None)
    PretrainedEncoderLoader(network, str(path)).attach(engine)
    engine.run([0], max_epochs=1)
    torch.testing.assert_close(network.encoder_state_dict(), mae.encoder_state_dict())

    resumed, fresh = tiny_network(seed=9), tiny_network(seed=9).encoder_state_dict()
    resumed_engine = Engine(lambda engine, batch: None)
    resumed_engine.state.iteration = 5
    assert PretrainedEncoderLoader(resumed, str(path))(resumed_engine) is None
    assert PretrainedEncoderLoader(resumed, "")(None) is None
    torch.testing.assert_close(resumed.encoder_state_dict(), fresh)


# ---------------------------------------------------------------- warm-up


def run_fine_tuning(network, optimizer, warmup, epochs=3):
    """Trains ``epochs`` one-iteration epochs; returns encoder and decoder snapshots after each epoch."""
    x = smooth_volume(4)[None]
    label = (x[:, 1:] > 0.2).float()

    def step(engine, batch):
        optimizer.zero_grad(set_to_none=False)
        torch.nn.functional.binary_cross_entropy_with_logits(network(x)[:, 1:], label).backward()
        optimizer.step()

    engine = Engine(step)
    warmup.attach(engine)
    snapshots = []
    engine.add_event_handler(
        Events.EPOCH_COMPLETED,
        lambda engine: snapshots.append(
            ([p.detach().clone() for p in network.encoder.parameters()], network.decoder.heads[0].weight.clone())
        ),
    )
    engine.run([0], max_epochs=epochs)
    return snapshots


def test_freeze_warmup_keeps_the_encoder_fixed_then_trains_it():
    network = tiny_network(deep_supervision=False)
    before = [p.detach().clone() for p in network.encoder.parameters()]
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    snapshots = run_fine_tuning(network, optimizer, EncoderWarmup(network, optimizer, epochs=2, mode="freeze"))
    for epoch, (encoder, _) in enumerate(snapshots, start=1):
        unchanged = all(torch.equal(a, b) for a, b in zip(before, encoder, strict=True))
        assert unchanged == (epoch <= 2), f"epoch {epoch}"
    assert not torch.equal(snapshots[0][1], snapshots[1][1])  # the decoder trains during the warm-up
    assert all(p.requires_grad for p in network.parameters())


def test_lr_scale_warmup_scales_the_encoder_learning_rate_then_restores_it():
    network = tiny_network(deep_supervision=False)
    optimizer = torch.optim.SGD(encoder_param_groups(network), lr=0.1)
    assert [group["name"] for group in optimizer.param_groups] == ["encoder", "rest"]
    warmup = EncoderWarmup(network, optimizer, epochs=2, mode="lr_scale", lr_scale=0.1)
    seen = []
    engine = Engine(lambda engine, batch: seen.append([group["lr"] for group in optimizer.param_groups]))
    warmup.attach(engine)
    engine.run([0], max_epochs=3)
    assert seen == [pytest.approx([0.01, 0.1])] * 2 + [pytest.approx([0.1, 0.1])]
    with pytest.raises(ValueError, match="encoder_param_groups"):
        EncoderWarmup(network, torch.optim.SGD(network.parameters(), lr=0.1), epochs=2, mode="lr_scale")
    with pytest.raises(ValueError, match="mode="):
        EncoderWarmup(network, optimizer, epochs=2, mode="slow")
