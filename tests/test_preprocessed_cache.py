"""The preprocessed cache: store each study once, read patches from it, the same as the uncached chain.

Tiny synthetic studies (48 x 48 x 64 at 10 x 10 x 15 mm). Covers building and reuse, refusal of other settings,
rebuilding on changed sources, refusal of damaged entries, a build killed by a signal, several processes reading
and building at once, pretraining's CT-only studies, and the equality of patches and of a short training's
validation Dice with the uncached chain.
"""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import DataLoader, Dataset, load_decathlon_datalist
from monai.transforms import Compose, RandCropByPosNegLabeld, RandSpatialCropd, SpatialPadd

from scripts.data.preprocessed_cache import PreprocessedCache
from scripts.data.preprocessed_dataset import PreprocessedDataset
from scripts.errors import InputDataError
from scripts.mae import LoadPretrainingStudyd, RandBlockMaskd, pretraining_datalist
from scripts.mae.keys import VALID_KEY
from scripts.transforms import ClassLocationsd, petct_preprocessing
from scripts.transforms.stored_patches import LoadStoredd, RandCropStoredByPosNegd, RandSpatialCropStoredd

PIXDIM = (10.0, 10.0, 15.0)
ROI = (32, 32, 32)
KEYS = ["image", "label"]
TINY = {"pixdim": list(PIXDIM), "roi_size": list(ROI), "features": [8, 16, 32, 64], "strides": [1, 2, 2, 2]}


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset("preprocessed_cache", n=6, seed=3)


def _items(folder, key="training", fold=0):
    return load_decathlon_datalist(str(folder / f"datalist_fold{fold}.json"), True, key, str(folder))


@pytest.fixture(scope="module")
def items(dataset):
    return _items(dataset) + _items(dataset, "validation")


def _chain(pixdim=PIXDIM, **settings):
    return petct_preprocessing(pixdim=pixdim, **settings)


def _cache(folder, chain=None, max_samples=10000):
    locations = ClassLocationsd(keys="label", max_samples=max_samples)
    return PreprocessedCache(folder, _chain() if chain is None else chain, "image", "label", locations)


@pytest.fixture(scope="module")
def built(items, tmp_path_factory):
    """A cache holding every study, and the number of entries its first build_missing stored."""
    cache = _cache(tmp_path_factory.mktemp("built") / "cache")
    return cache, cache.build_missing(items)


def _uncached_crop(roi):
    return [
        ClassLocationsd(keys="label"),
        RandCropByPosNegLabeld(KEYS, "label", roi, 1, 2, fg_indices_key="fg_indices", bg_indices_key="bg_indices",
                               allow_smaller=True),
        SpatialPadd(KEYS, roi),
    ]  # fmt: skip


def _entries(cache):
    return sorted(p for p in cache.cache_dir.iterdir() if not p.name.startswith(".") and p.is_dir())


# ------------------------------------------------------------------------------------------- build, reuse
def test_build_stores_every_study_once_with_its_settings(built, items):
    cache, count = built
    assert count == len(items)
    entries = _entries(cache)
    assert len(entries) == len(items)
    negatives = 0
    for folder in entries:
        names = {p.name for p in folder.iterdir()}
        assert {"entry.json", "image_0.npy", "image_1.npy", "fg_indices.npy", "bg_indices.npy"} <= names
        assert np.load(folder / "image_0.npy", mmap_mode="r").flags["F_CONTIGUOUS"], "z slowest on disk"
        label = json.loads((folder / "entry.json").read_text())["label"]["channels"][0]
        if label == {"constant": 0.0}:  # a negative study: an all-zero label needs no file
            negatives += 1
            assert "label_0.npy" not in names and np.load(folder / "fg_indices.npy").size == 0
        else:
            assert np.load(folder / "label_0.npy", mmap_mode="r").dtype == np.uint8
    assert 0 < negatives < len(entries)
    assert not list((cache.cache_dir / ".building").glob("*/*")), "no leftovers of a finished build"
    settings = json.loads((cache.cache_dir / "settings.json").read_text())["settings"]
    spacing = next(t for t in settings["preprocessing"] if t["type"] == "MetaSafeSpacingd")
    assert spacing["spacing_transform"]["pixdim"] == list(PIXDIM)
    assert settings["class_locations"]["max_samples"] == 10000


def test_a_second_cache_on_the_same_folder_reuses_every_entry(built, items):
    cache, _ = built
    marks = {p: p.stat().st_mtime_ns for p in cache.cache_dir.glob("*/entry.json")}
    again = _cache(cache.cache_dir)
    assert again.build_missing(items) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.cache_dir.glob("*/entry.json")} == marks


# ------------------------------------------------------------------------------------------------ equality
def test_a_stored_study_equals_the_uncached_chain_with_the_same_class_locations(built, items):
    cache, _ = built
    for item in items:
        expected = ClassLocationsd(keys="label")(Compose(_chain())(item))
        study = cache.study(item)
        np.testing.assert_array_equal(study.image.read(), expected["image"].numpy())
        np.testing.assert_array_equal(study.label.read(), expected["label"].numpy())
        stored = cache.sample(item)
        np.testing.assert_array_equal(stored["fg_indices"], expected["fg_indices"])
        np.testing.assert_array_equal(stored["bg_indices"], expected["bg_indices"])
        whole = LoadStoredd(KEYS)(stored)
        np.testing.assert_allclose(whole["image"].affine.numpy(), expected["image"].affine.numpy())
        assert whole["image"].meta["filename_or_obj"] == str(expected["image"].meta["filename_or_obj"])
        assert stored["case"] == item["case"]


@pytest.mark.parametrize("roi", [ROI, (32, 48, 40)], ids=["inside", "padded"])
def test_a_stored_patch_equals_the_uncached_patch_with_the_same_random_state(built, items, roi):
    cache, _ = built
    stored = Compose([RandCropStoredByPosNegd(KEYS, "label", roi, 1, 2)])
    uncached = Compose(_chain() + _uncached_crop(roi))
    padded = 0
    for seed, item in enumerate(items * 2):
        patch = stored.set_random_state(seed)(cache.sample(item))
        expected = uncached.set_random_state(seed)(item)[0]
        for key in KEYS:
            assert tuple(patch[key].shape[1:]) == roi
            assert torch.equal(patch[key].as_tensor(), expected[key].as_tensor()), (item["case"], seed, key)
            np.testing.assert_allclose(patch[key].affine.numpy(), expected[key].affine.numpy())
        padded += int(any(s < r for s, r in zip(cache.study(item).image.shape[1:], roi, strict=True)))
    assert (padded > 0) == (roi != ROI), "the padded case must pad, the other must not"


def test_train_json_augmentation_gives_the_same_samples_from_stored_and_uncached_data(built, items, bundle_root):
    cache, _ = built
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "train.json"))
    parser.update(TINY)
    random_transforms = parser.get_parsed_content("train#random_transforms")
    for transform in random_transforms:  # make the spatial augmentation fire, so that it is compared too
        if type(transform).__name__ in ("RandAffined", "FastRand3DElasticd"):
            transform.prob = 1.0
    assert type(random_transforms[0]) is RandCropStoredByPosNegd
    stored = Compose(random_transforms)
    uncached = Compose(_chain() + _uncached_crop(ROI) + random_transforms[1:])
    for seed, item in enumerate(items[:3]):
        sample = stored.set_random_state(seed)(cache.sample(item))
        expected = uncached.set_random_state(seed)(item)[0]
        for key in KEYS:
            np.testing.assert_allclose(sample[key].numpy(), expected[key].numpy(), rtol=0, atol=1e-5)


def _centre(crop, seed, sample):
    crop.set_random_state(seed)(dict(sample))
    return crop.center


def test_hot_patches_are_centred_on_the_uptake_train_json_marks_as_hot_background(items, bundle_root, tmp_path):
    """train.json's class locations mark PET >= hot_background_suv outside lesions; hot > 0 centres that share."""
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "train.json"))
    parser.update(TINY)
    locations = parser.get_parsed_content("preprocessed_cache#class_locations")
    assert locations.hot_above == pytest.approx((4.0 - 7.06) / 7.96), "SUV 4 in normalised PET units"
    cache = PreprocessedCache(tmp_path / "cache", _chain(), "image", "label", locations)
    item = items[0]
    cache.build_missing([item])
    sample = cache.sample(item)
    hot = sample["hot_indices"]
    pet = cache.study(item).image.read()[1].ravel()
    assert hot.size > 0 and (pet[hot] >= locations.hot_above).all()
    shape = tuple(cache.study(item).image.shape[1:])
    hot_set = {tuple(c) for c in np.stack(np.unravel_index(hot, shape), axis=1).tolist()}
    crop = RandCropStoredByPosNegd(KEYS, "label", (3, 3, 3), pos=1, neg=1, hot=2)  # small: centres stay put
    centred = sum(_centre(crop, seed, sample) in hot_set for seed in range(200))
    assert 70 <= centred <= 130, f"{centred} of 200 patches on hot background, expected about 100"
    without = {k: v for k, v in sample.items() if k != "hot_indices"}
    plain, hot_off = (
        RandCropStoredByPosNegd(KEYS, "label", ROI, 1, 2),
        RandCropStoredByPosNegd(KEYS, "label", ROI, 1, 2, hot=0),
    )
    for seed in range(20):
        assert _centre(plain, seed, without) == _centre(hot_off, seed, sample), "hot=0 draws as before"
    assert "hot_indices" not in hot_off(dict(sample)), "the index keys are consumed"
    with pytest.raises(KeyError, match="hot_indices"):
        crop({k: v for k, v in sample.items() if k != "hot_indices"})


def test_cropping_before_padding_gives_the_patches_of_padding_first_when_the_study_covers_the_patch(items):
    """The configs used to pad, locate and crop; a patch that fits in the study comes out the same either way."""
    pad_first = Compose(
        _chain()
        + [
            SpatialPadd(KEYS, ROI),
            ClassLocationsd(keys="label"),
            RandCropByPosNegLabeld(KEYS, "label", ROI, 1, 2, fg_indices_key="fg_indices", bg_indices_key="bg_indices"),
        ]
    )
    crop_first = Compose(_chain() + _uncached_crop(ROI))
    for seed, item in enumerate(items):
        a, b = pad_first.set_random_state(seed)(item)[0], crop_first.set_random_state(seed)(item)[0]
        assert all(s >= r for s, r in zip(a["image"].shape[1:], ROI, strict=True))
        assert torch.equal(a["image"].as_tensor(), b["image"].as_tensor())
        assert torch.equal(a["label"].as_tensor(), b["label"].as_tensor())


# ------------------------------------------------------------------------------ settings and stale sources
def test_a_cache_built_with_other_settings_is_refused_naming_each_setting(built):
    cache, _ = built
    other = _chain(pixdim=(12.0, 12.0, 15.0), ct_window_hu=(-900.0, 1127.8))
    with pytest.raises(InputDataError) as raised:
        _cache(cache.cache_dir, other)
    message = str(raised.value)
    assert str(cache.cache_dir / "settings.json") in message
    assert (
        "MetaSafeSpacingd.spacing_transform.pixdim: [10.0, 10.0, 15.0] (stored) -> [12.0, 12.0, 15.0] (this run)"
        in message
    )
    assert "ClipNormalized.normalization.lower: -832.1 (stored) -> -900.0 (this run)" in message
    with pytest.raises(InputDataError, match=r"class_locations\.max_samples: 10000 \(stored\) -> 500"):
        _cache(cache.cache_dir, max_samples=500)
    with pytest.raises(InputDataError, match=r"CropBodyd\.cropper\.select_fn\.threshold"):
        _cache(cache.cache_dir, _chain(body_threshold_hu=-400.0))


def test_a_changed_source_file_or_a_needed_label_rebuilds_only_that_entry(dataset, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(dataset, folder)
    items = _items(folder)
    cache = _cache(tmp_path / "cache")
    unlabelled = {k: v for k, v in items[0].items() if k != "label"}
    assert cache.study(unlabelled).label is None, "an item without a label is stored without one"
    assert cache.study(items[0]).label is not None, "an item with a label gets it (the entry is rebuilt)"
    cache.build_missing(items)
    marks = {p: p.stat().st_mtime_ns for p in cache.cache_dir.glob("*/entry.json")}
    pet_path = items[1]["image"][1]
    pet = nib.load(pet_path)
    nib.save(nib.Nifti1Image(np.asarray(pet.dataobj) * 2.0 + 1.0, pet.affine, pet.header), pet_path)
    assert cache.build_missing(items) == 1
    changed = [p for p, mark in marks.items() if p.stat().st_mtime_ns != mark]
    assert changed == [cache.study(items[1]).folder / "entry.json"]
    np.testing.assert_array_equal(cache.study(items[1]).image.read(), Compose(_chain())(items[1])["image"].numpy())
    assert not list((cache.cache_dir / ".building").glob("*/*")), "the replaced entry leaves nothing behind"


# --------------------------------------------------------------------------------------------- damage
def test_a_truncated_array_is_refused_naming_the_study(dataset, tmp_path):
    items = _items(dataset)
    cache = _cache(tmp_path / "cache")
    cache.build_missing(items)
    study = cache.study(items[0])
    damaged = study.folder / "image_1.npy"
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    with pytest.raises(InputDataError) as raised:
        PreprocessedDataset(items, _cache(tmp_path / "cache"))
    message = str(raised.value)
    assert str(damaged) in message and items[0]["case"] in message and f"delete {study.folder}" in message
    reader = PreprocessedDataset(items[1:], cache, LoadStoredd(KEYS))  # the others build and read fine
    with pytest.raises(InputDataError) as raised:  # a sample read without the full check fails just as clearly
        LoadStoredd(KEYS)(cache.sample(items[0]))
    assert items[0]["case"] in str(raised.value) and "image_1.npy" in str(raised.value)
    assert len(reader) == len(items) - 1


def test_a_damaged_or_incomplete_entry_record_is_refused_naming_the_study(dataset, tmp_path):
    items = _items(dataset)
    cache = _cache(tmp_path / "cache")
    first, second = cache.study(items[0]), cache.study(items[1])
    (first.folder / "entry.json").write_text('{"format": 1, "sett')
    (second.folder / "entry.json").unlink()
    with pytest.raises(InputDataError, match=f"{items[0]['case']}.*damaged"):
        cache.study(items[0])
    with pytest.raises(InputDataError, match=f"{items[1]['case']}.*incomplete"):
        cache.study(items[1])


def _build_command(bundle_root, root, folder):
    return [
        sys.executable, "-m", "scripts.data.build_cache", "--config_file", str(bundle_root / "configs" / "train.json"),
        "--bundle_root", str(root), "--dataset_dir", str(folder), "--fold", "0", "--pixdim", "[10.0, 10.0, 15.0]",
        "--workers", "0",
    ]  # fmt: skip


def _kill_while_writing(command, cwd, cache_dir, env):
    """Run ``command`` until a builder has written a first file of an entry, then SIGKILL it; that entry's
    temporary folder, or None when the kill came after the entry was moved into place."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, written = time.monotonic() + 300, []
    while not written and process.poll() is None and time.monotonic() < deadline:
        written = list((cache_dir / ".building").glob("*/*/*"))  # .building/<entry id>/<temporary folder>/<file>
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return written[0].parent if written and written[0].parent.exists() else None


@pytest.mark.slow
def test_a_build_killed_mid_way_leaves_no_complete_looking_entry_and_a_rerun_finishes(
    make_tiny_dataset, bundle_root, tmp_path
):
    folder = make_tiny_dataset("killed_build", n=4, seed=8, shape=(128, 128, 200), negative_share=0.0)
    root = tmp_path / "bundle_run"
    cache_dir = root / "preprocessed" / "train"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = _build_command(bundle_root, root, folder)
    for _attempt in range(6):  # the kill can land just after an entry was moved into place: then try again
        leftover = _kill_while_writing(command, bundle_root, cache_dir, env)
        if leftover is not None:
            break
    assert leftover is not None, "the build was never caught while writing an entry"
    killed_id = leftover.parent.name
    assert any(leftover.iterdir()), "it was killed with part of the entry written"
    assert not (cache_dir / killed_id).exists(), "a killed build leaves no entry in place"

    rerun = subprocess.run(command, cwd=bundle_root, env=env, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert not list((cache_dir / ".building").glob("*/*")), "the rerun removes the leftovers"
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "train.json"))
    parser.update({"bundle_root": str(root), "dataset_dir": str(folder), "pixdim": list(PIXDIM)})
    cache = parser.get_parsed_content("preprocessed_cache")
    items = _items(folder) + _items(folder, "validation")
    assert all(cache.study(item, build=False, check_files=True) is not None for item in items)
    killed = next(item for item in items if cache.study(item).entry_id == killed_id)
    np.testing.assert_array_equal(cache.study(killed).image.read(), Compose(_chain())(killed)["image"].numpy())


# ----------------------------------------------------------------------------------------- concurrency
def _build_all(cache_dir, items):
    return _cache(cache_dir).build_missing(items)


def test_two_processes_building_the_same_studies_build_each_once(items, tmp_path):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        counts = pool.starmap(_build_all, [(tmp_path / "cache", items)] * 2)
    assert sum(counts) == len(items), f"each entry is built by exactly one process, got {counts}"
    cache = _cache(tmp_path / "cache")
    assert all(cache.study(item, build=False, check_files=True) is not None for item in items)


def _open_cache(cache_dir, spacing):
    try:
        _cache(cache_dir, _chain(pixdim=spacing))
    except InputDataError as error:
        return str(error)
    return "opened"


def test_of_two_processes_starting_with_other_settings_on_one_folder_one_is_refused(tmp_path):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        outcomes = pool.starmap(_open_cache, [(tmp_path / "cache", PIXDIM), (tmp_path / "cache", (12.0, 12.0, 15.0))])
    assert sorted(outcome == "opened" for outcome in outcomes) == [False, True], outcomes
    assert "pixdim" in next(outcome for outcome in outcomes if outcome != "opened")
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_file()] == ["settings.json"], "no temporary left"


def test_two_loader_workers_build_and_read_at_once(items, tmp_path):
    cache = _cache(tmp_path / "cache")
    dataset = PreprocessedDataset(items, cache, LoadStoredd(KEYS), build_workers=2)
    assert len(_entries(cache)) == len(items)
    loader = DataLoader(dataset, batch_size=1, num_workers=2, shuffle=False)
    for item, batch in zip(items, loader, strict=True):
        expected = Compose(_chain())(item)
        np.testing.assert_array_equal(batch["image"][0].numpy(), expected["image"].numpy())
        np.testing.assert_array_equal(batch["label"][0].numpy(), expected["label"].numpy())
        assert batch["case"] == [item["case"]]


# ----------------------------------------------------------------------------------------- pretraining
def test_pretraining_stores_ct_only_studies_without_a_pet_file_and_reads_the_same_patches(items, tmp_path):
    pairs = [item["image"] for item in items[:3]]
    ct_only = [item["image"][0] for item in items[3:5]]
    studies = pretraining_datalist(pairs, ct_only)["training"]
    chain = petct_preprocessing(loader=LoadPretrainingStudyd(keys="image"), label_key=None, pixdim=PIXDIM)
    cache = PreprocessedCache(tmp_path / "cache", chain, "image", None)
    dataset = PreprocessedDataset(studies, cache)
    roi = (32, 48, 40)
    stored_crop = Compose([RandSpatialCropStoredd("image", roi), RandBlockMaskd("image", block_size=8)])
    uncached = Compose(chain + [SpatialPadd("image", roi), RandSpatialCropd("image", roi, random_size=False),
                                RandBlockMaskd("image", block_size=8)])  # fmt: skip
    for seed, study in enumerate(studies):
        sample = dataset[seed]
        files = sorted(p.name for p in cache.study(study).folder.glob("image_*.npy"))
        ct_only_study = study.get("pet", "absent") is None
        assert files == (["image_0.npy"] if ct_only_study else ["image_0.npy", "image_1.npy"])
        assert torch.equal(sample[VALID_KEY], torch.tensor([1.0, 0.0] if ct_only_study else [1.0, 1.0]))
        assert "pet" not in sample
        patch = stored_crop.set_random_state(seed)(sample)
        expected = uncached.set_random_state(seed)(dict(study))
        for key in ("image", "target", "mask"):
            assert torch.equal(torch.as_tensor(patch[key]), torch.as_tensor(expected[key])), (seed, key)
        if ct_only_study:
            assert not patch["image"][1].any() and not patch["target"][1].any(), "no PET is shown or scored"


# -------------------------------------------------------------------------------------------- configs
def test_train_and_pretrain_read_from_a_cache_under_the_bundle_root_and_inference_does_not(bundle_root):
    for name, cache_folder in (("train.json", "train"), ("pretrain.json", "pretrain")):
        config = json.loads((bundle_root / "configs" / name).read_text())
        assert config["preprocessed_cache"]["preprocessing"] == "@preprocessing_transforms"
        assert config["preprocessed_cache"]["cache_dir"] == "@cache_dir"
        parser = ConfigParser()  # pretrain.json is an overlay on train.json
        files = ["train.json"] if name == "train.json" else ["train.json", name]
        parser.read_config([str(bundle_root / "configs" / file) for file in files])
        parser["bundle_root"] = "/runs/b"
        assert parser.get_parsed_content("cache_dir") == f"/runs/b/preprocessed/{cache_folder}"
        datasets = [config["train"]["dataset"]] + ([config["validate"]["dataset"]] if "validate" in config else [])
        for dataset in datasets:
            assert dataset["_target_"] == "scripts.data.preprocessed_dataset.PreprocessedDataset"
            assert dataset["cache"] == "@preprocessed_cache"
    inference = json.loads((bundle_root / "configs" / "inference.json").read_text())
    assert "preprocessed_cache" not in inference and "cache_dir" not in inference
    assert inference["preprocessing"]["transforms"] == "@preprocessing_transforms", "the original files, read once"


@pytest.mark.slow
def test_a_short_training_validates_to_the_same_dice_from_stored_and_uncached_data(dataset, bundle_root, tmp_path):
    def train(root, uncached):
        overrides = {**TINY, "num_workers": 0, "val_interval": 1, "max_epochs": 1, "iterations_per_epoch": 2}
        if uncached:  # the same chains in memory: preprocessing, class locations, crop, the same augmentation
            parser = ConfigParser()
            parser.read_config(str(bundle_root / "configs" / "train.json"))
            parser.update({**overrides, "dataset_dir": str(dataset)})
            chain = parser.get_parsed_content("preprocessing_transforms")
            augmentation = parser.get_parsed_content("train#random_transforms")[1:]
            training = _items(dataset)
            overrides["train#dataset"] = Dataset(training, Compose(chain + _uncached_crop(ROI) + augmentation))
            overrides["validate#dataset"] = Dataset(_items(dataset, "validation"), Compose(chain))
        workflow = ConfigWorkflow(
            workflow_type="train",
            config_file=str(bundle_root / "configs" / "train.json"),
            meta_file=str(bundle_root / "configs" / "metadata.json"),
            logging_file=str(bundle_root / "configs" / "logging.conf"),
            **{**overrides, "bundle_root": str(root), "dataset_dir": str(dataset)},
        )
        workflow.initialize()
        workflow.run()
        evaluator = workflow.parser.get_parsed_content("validate#evaluator")
        weights = [p.detach().clone() for p in workflow.parser.get_parsed_content("network").parameters()]
        workflow.finalize()
        return evaluator.state.metrics, weights, root / "preprocessed" / "train"

    stored_metrics, stored_weights, cache_dir = train(tmp_path / "stored", uncached=False)
    uncached_metrics, uncached_weights, unused = train(tmp_path / "uncached", uncached=True)
    assert len(list(cache_dir.glob("*/entry.json"))) == len(_items(dataset) + _items(dataset, "validation"))
    assert not unused.exists(), "the uncached run stores nothing"
    assert stored_metrics["val_mean_dice"] == pytest.approx(uncached_metrics["val_mean_dice"], abs=1e-6)
    assert set(stored_metrics) == set(uncached_metrics)
    for a, b in zip(stored_weights, uncached_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
