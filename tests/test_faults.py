"""The fault catalogue: every bad input we know of, tried against every entry point that reads it.

Faults come in classes (study files, prediction masks, checkpoints, destinations, leaks); each class is a list of
fault makers, and every entry point of that class is parametrised over the whole list, so a new maker is tried
everywhere at once. Each case asserts the exit status (or the raised error), that the one ``error: <file>: <problem>``
line names the file at fault and the problem, and that nothing under the destination changed.

Cost: in-process entry points take well under a second per case; the ``python -m monai.bundle run`` subprocesses
(the only way to see what a user sees) are grouped: one inference run holds every study fault at once.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np
import pytest
import torch
from tiny_overrides import TINY_NETWORK

from scripts.errors import InputDataError, error_lines

TINY = {**TINY_NETWORK, "tta_axes": []}
NETWORK = {"in_channels": 2, "out_channels": 2, "features": TINY["features"], "strides": TINY["strides"]}


class StudyFiles(NamedTuple):
    ct: Path
    pet: Path
    label: Path

    def role(self, name: str) -> Path:
        return getattr(self, name)


# ------------------------------------------------------------------------------------------------ fault makers


def _rewrite(path: Path, change: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
    image = nib.load(str(path))
    array = np.asanyarray(image.dataobj)
    new, affine = change(np.array(array), image.affine.copy())
    nib.save(nib.Nifti1Image(np.asarray(new).astype(array.dtype), affine), str(path))


def _values(role: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[StudyFiles], None]:
    return lambda files: _rewrite(files.role(role), lambda array, affine: (change(array), affine))


def _affines(roles: tuple[str, ...], change: Callable[[np.ndarray], np.ndarray]) -> Callable[[StudyFiles], None]:
    def mutate(files: StudyFiles) -> None:
        for role in roles:
            _rewrite(files.role(role), lambda array, affine: (array, change(affine)))

    return mutate


def _with_nan(array: np.ndarray) -> np.ndarray:
    array = array.astype(np.float32)
    array[tuple(s // 2 for s in array.shape)] = np.nan
    return array


def _truncate(role: str) -> Callable[[StudyFiles], None]:
    def mutate(files: StudyFiles) -> None:
        path = files.role(role)
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])

    return mutate


def _swap(files: StudyFiles) -> None:
    ct, pet = files.ct.read_bytes(), files.pet.read_bytes()
    files.ct.write_bytes(pet)
    files.pet.write_bytes(ct)


def _moved(offset_mm: float, axis: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    def change(affine: np.ndarray) -> np.ndarray:
        affine[axis, 3] += offset_mm
        return affine

    return change


def _absurd_voxels(affine: np.ndarray) -> np.ndarray:
    new = np.diag([0.05, 0.05, 500.0, 1.0])
    new[:3, 3] = affine[:3, 3]
    return new


def _label_two(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array[0, 0, 0] = 2
    return array


@dataclass(frozen=True)
class Fault:
    """A bad input: how to make it, which file is at fault (ct / pet / label) and a regex of the problem.

    ``quantified``: what ``scripts.evaluation.quantification`` (mask = the label, plus the PET) must say instead,
    as (role, regex); None where the fault does not concern it (a CT-only fault). "same" keeps the defaults.
    """

    id: str
    make: Callable[[StudyFiles], None]
    culprit: str
    problem: str
    quantified: tuple[str, str] | None | str = "same"

    def for_quantification(self) -> tuple[str, str] | None:
        if self.quantified == "same":
            return None if self.culprit == "ct" else (self.culprit, self.problem)
        return self.quantified  # type: ignore[return-value]


STUDY_FAULTS = [
    Fault("nan-pet", _values("pet", _with_nan), "pet", "non-finite"),
    Fault("missing-pet", lambda files: files.pet.unlink(), "pet", "missing|not found"),
    Fault("renamed-pet", lambda files: files.pet.rename(f"{files.pet}.bak"), "pet", "missing|not found"),
    Fault("ct-not-nifti", lambda files: files.ct.write_bytes(b"not a NIfTI file"), "ct", "cannot be read"),
    Fault("truncated-pet", _truncate("pet"), "pet", "cannot be read"),
    Fault("swapped-ct-and-pet", _swap, "ct", "look swapped", quantified=("pet", "HU-like")),
    Fault("all-zero-pet", _values("pet", lambda a: a * 0), "pet", "all zero"),
    Fault("pet-minus-100-everywhere", _values("pet", lambda a: a * 0 - 100), "pet", "constant"),
    Fault("mostly-negative-pet", _values("pet", lambda a: a - 20), "pet", "mostly negative"),
    Fault("pet-in-bq-per-ml", _values("pet", lambda a: a * 5000), "pet", "not in SUV"),
    Fault("ct-without-air", _values("ct", lambda a: a + 1200), "ct", "no air"),
    Fault(
        "voxels-0.05x0.05x500-mm",
        _affines(("ct", "pet", "label"), _absurd_voxels),
        "ct",
        "no PET/CT scanner writes",
        quantified=("label", "no PET/CT scanner writes"),
    ),
    Fault(
        "pet-5-m-away",
        _affines(("pet",), _moved(5000.0)),
        "pet",
        "one grid",
        quantified=("label", "lies elsewhere"),
    ),
    Fault(
        "label-shifted-40-mm",
        _affines(("label",), _moved(40.0)),
        "label",
        "grid",
        quantified=("label", "lies elsewhere"),
    ),
    Fault("label-not-binary", _values("label", _label_two), "label", "0/1"),
    Fault("flat-ct", _values("ct", lambda a: a[:, :, :1]), "ct", "2D"),
    Fault("empty-pet", _values("pet", lambda a: a[:0]), "pet", "empty"),
]


def _ids(faults: list[Fault]) -> list[str]:
    return [fault.id for fault in faults]


# --------------------------------------------------------------------------------------------------- helpers


def assert_one_line(stderr: str, path: Path, problem: str) -> str:
    """The error lines of ``stderr`` name ``path`` exactly once, with ``problem``; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    mine = [line for line in lines if line.startswith(f"error: {path}: ")]
    assert len(mine) == 1, f"expected one error line for {path}, got {lines}"
    assert re.search(problem, mine[0]), mine[0]
    assert "()" not in mine[0], f"an empty reason: {mine[0]}"
    return mine[0]


def files_under(folder: Path) -> list[str]:
    """The files under ``folder`` (MONAI's CheckpointSaver creates its empty folder when it is built)."""
    return [name for name in listing(folder) if (folder / name).is_file()]


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones included), relative, sorted; [] when it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def copy_study(source: StudyFiles, ct: Path, pet: Path, label: Path) -> StudyFiles:
    for src, dst in zip(source, (ct, pet, label), strict=True):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return StudyFiles(ct, pet, label)


def bundle_run(bundle_root: Path, configs: list[str], overrides: dict, cwd: Path, env: dict | None = None):
    """``python -m monai.bundle run`` exactly as a user types it (no wrapper of ours)."""
    files = "[" + ",".join(repr(str(bundle_root / "configs" / name)) for name in configs) + "]"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value)]
    environment = {key: value for key, value in os.environ.items() if key != "PETCT_DEBUG"}
    environment.update({"OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=environment)


# -------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A tiny synthetic autoPET release: 3 studies of 3 patients, 32 x 32 x 40 voxels of 10 x 10 x 15 mm."""
    from scripts.synthetic import generate_cohort

    root = tmp_path_factory.mktemp("fault_release") / "release"
    generate_cohort(root, 3, seed=5, shape=(32, 32, 40), spacing=(10.0, 10.0, 15.0), negative_share=0.0)
    return root


def release_studies(release: Path) -> list[StudyFiles]:
    return [
        StudyFiles(ct, ct.with_name("SUV.nii.gz"), ct.with_name("SEG.nii.gz")) for ct in sorted(release.rglob("CTres*"))
    ]


@pytest.fixture(scope="module")
def good_study(release) -> StudyFiles:
    return release_studies(release)[0]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Weights of the tiny network (untrained: inference only needs them to load)."""
    from scripts.networks import BiXLSTMResUNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fault_weights") / "model.pt"
    torch.save(BiXLSTMResUNet(**NETWORK, deep_supervision=True).state_dict(), path)
    return path


# ----------------------------------------------------------------------------- study faults x entry points


@pytest.mark.parametrize("fault", STUDY_FAULTS, ids=_ids(STUDY_FAULTS))
def test_prepare_names_the_study_fault_and_writes_nothing(fault, release, tmp_path, capsys):
    from scripts.data.prepare import main

    src = tmp_path / "src"
    shutil.copytree(release, src)
    files = release_studies(src)[1]
    fault.make(files)
    status = main(["--src", str(src), "--dst", str(tmp_path / "dst"), "--folds", "2"])
    assert status == 1
    assert_one_line(capsys.readouterr().err, files.role(fault.culprit), fault.problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"], "no dataset and no staging folder"


def _stored_then_augmented(bundle_root, config_names, cache_dir):
    """What a training run does with one item: build its preprocessed-cache entry, then the random transforms."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(bundle_root / "configs" / name) for name in config_names])
    parser.update({**TINY, "cache_dir": str(cache_dir)})
    cache = parser.get_parsed_content("preprocessed_cache")
    augment = parser.get_parsed_content("train#preprocessing")
    return lambda item: augment(cache.sample(item))


@pytest.fixture(scope="module")
def training_chain(bundle_root, tmp_path_factory):
    """The training data path as train.json builds it (preprocessed cache, then the random transforms)."""
    return _stored_then_augmented(bundle_root, ["train.json"], tmp_path_factory.mktemp("train_cache"))


@pytest.fixture(scope="module")
def pretraining_chain(bundle_root, tmp_path_factory):
    names = ["train.json", "pretrain.json"]
    return _stored_then_augmented(bundle_root, names, tmp_path_factory.mktemp("pretrain_cache"))


def _faulty_copy(good_study: StudyFiles, fault: Fault, folder: Path) -> StudyFiles:
    files = copy_study(good_study, folder / "CTres.nii.gz", folder / "SUV.nii.gz", folder / "SEG.nii.gz")
    fault.make(files)
    return files


@pytest.mark.parametrize("fault", STUDY_FAULTS, ids=_ids(STUDY_FAULTS))
def test_training_loader_names_the_study_fault(fault, good_study, training_chain, tmp_path):
    files = _faulty_copy(good_study, fault, tmp_path / "study")
    with pytest.raises(Exception) as raised:
        training_chain({"image": [str(files.ct), str(files.pet)], "label": str(files.label)})
    assert_one_line("\n".join(error_lines(raised.value) or []), files.role(fault.culprit), fault.problem)


PRETRAINING_FAULTS = [fault for fault in STUDY_FAULTS if fault.culprit != "label"]


@pytest.mark.parametrize("fault", PRETRAINING_FAULTS, ids=_ids(PRETRAINING_FAULTS))
def test_pretraining_loader_names_the_study_fault(fault, good_study, pretraining_chain, tmp_path):
    files = _faulty_copy(good_study, fault, tmp_path / "study")
    with pytest.raises(Exception) as raised:
        pretraining_chain({"image": [str(files.ct), str(files.pet)]})
    assert_one_line("\n".join(error_lines(raised.value) or []), files.role(fault.culprit), fault.problem)


CT_FAULTS = [fault for fault in STUDY_FAULTS if fault.culprit == "ct" and fault.id != "swapped-ct-and-pet"]


@pytest.mark.parametrize("fault", CT_FAULTS, ids=_ids(CT_FAULTS))
def test_pretraining_loader_names_the_fault_of_a_ct_only_study(fault, good_study, pretraining_chain, tmp_path):
    files = _faulty_copy(good_study, fault, tmp_path / "study")
    with pytest.raises(Exception) as raised:
        pretraining_chain({"image": str(files.ct), "pet": None})
    assert_one_line("\n".join(error_lines(raised.value) or []), files.ct, fault.problem)


QUANTIFIED_FAULTS = [fault for fault in STUDY_FAULTS if fault.for_quantification() is not None]


@pytest.mark.parametrize("fault", QUANTIFIED_FAULTS, ids=_ids(QUANTIFIED_FAULTS))
def test_quantification_names_the_fault_and_writes_nothing(fault, good_study, tmp_path, capsys):
    from scripts.evaluation.quantification import main

    files = _faulty_copy(good_study, fault, tmp_path / "study")
    out = tmp_path / "out" / "lesions.json"
    status = main(["--pred", str(files.label), "--pet", str(files.pet), "--out", str(out)])
    role, problem = fault.for_quantification()  # type: ignore[misc]
    assert status == 2
    assert_one_line(capsys.readouterr().err, files.role(role), problem)
    assert listing(tmp_path / "out") == []


# The inference entry point: one real `monai.bundle run` over a batch holding every study fault beside good studies.


@pytest.fixture(scope="module")
def inference_batch(release, tiny_checkpoint, bundle_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("fault_batch")
    data = work / "data"
    good = release_studies(release)
    cases = {}
    for index, files in enumerate(good[:2]):
        case = f"good{index}"
        cases[case] = copy_study(
            files,
            data / f"imagesTr/{case}_0000.nii.gz",
            data / f"imagesTr/{case}_0001.nii.gz",
            data / f"labelsTr/{case}.nii.gz",
        )
    for fault in STUDY_FAULTS:
        case = "fault_" + re.sub(r"\W", "_", fault.id)
        files = copy_study(
            good[0],
            data / f"imagesTr/{case}_0000.nii.gz",
            data / f"imagesTr/{case}_0001.nii.gz",
            data / f"labelsTr/{case}.nii.gz",
        )
        fault.make(files)
        cases[case] = files
    root = work / "bundle"
    (root / "models").mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, root / "models" / "model.pt")
    out = work / "out"
    overrides = {**TINY, "bundle_root": str(root), "input_path": str(data), "output_dir": str(out)}
    result = bundle_run(bundle_root, ["inference.json"], overrides, cwd=work)
    return result, cases, out


@pytest.mark.parametrize("fault", STUDY_FAULTS, ids=_ids(STUDY_FAULTS))
def test_inference_batch_names_each_broken_study(fault, inference_batch):
    result, cases, out = inference_batch
    files = cases["fault_" + re.sub(r"\W", "_", fault.id)]
    assert_one_line(result.stderr, files.role(fault.culprit), fault.problem)


def test_inference_batch_processes_the_good_studies_and_fails_at_the_end(inference_batch):
    result, cases, out = inference_batch
    assert result.returncode == 1, result.stderr[-3000:]
    assert listing(out) == ["good0.nii.gz", "good1.nii.gz"], "good masks only; nothing half-written, no staging"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(STUDY_FAULTS)
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: "), "the run ends with the error lines"
    assert "Traceback" not in result.stdout, "no traceback in the log either"
    log = result.stdout.splitlines()
    first_forward = next(i for i, line in enumerate(log) if "Engine run resuming" in line)
    header_faults = [i for i, line in enumerate(log) if "skipping study fault_missing_pet" in line]
    assert header_faults and header_faults[0] < first_forward, "header faults are found before computing"


def test_a_batch_of_only_broken_studies_fails_before_computing_naming_each(release, tmp_path):
    from scripts.errors import BatchInputError
    from scripts.inference.study_batch import StudyBatch

    src = tmp_path / "src"
    shutil.copytree(release, src)
    studies = release_studies(src)
    for files in studies:
        files.pet.unlink()
    with pytest.raises(BatchInputError) as raised:
        StudyBatch(src, tmp_path / "out")
    assert [error.path for error in raised.value.errors] == [str(files.pet) for files in studies]
    assert len(raised.value.lines()) == len(studies) and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------- prediction masks x entry points


OFF_GRID = "lies elsewhere|not the same grid|outside the field of view"


def _coarser_with_a_far_lesion(files: StudyFiles) -> None:
    def change(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        array = np.zeros_like(array)
        array[-3:, -3:, -3:] = 1  # beyond the PET once the voxels are twice as large
        affine[:3, :3] *= 2.0
        return array, affine

    _rewrite(files.label, change)


MASK_FAULTS = [
    Fault("mask-missing", lambda files: files.label.unlink(), "label", "not found|does not exist"),
    Fault(
        "mask-not-nifti", lambda files: files.label.write_bytes(b"<html>not a mask</html>"), "label", "cannot be read"
    ),
    Fault("mask-not-binary", _values("label", _label_two), "label", "0/1"),
    Fault(
        "mask-shifted-40-mm", _affines(("label",), _moved(40.0, axis=2)), "label", "lies elsewhere|not the same grid"
    ),
    Fault("mask-5-m-away", _affines(("label",), _moved(5000.0)), "label", "lies elsewhere|not the same grid"),
]


@pytest.mark.parametrize("fault", MASK_FAULTS, ids=_ids(MASK_FAULTS))
@pytest.mark.parametrize("entry", ["metrics", "quantification"])
def test_prediction_fault_is_named_and_nothing_is_written(entry, fault, good_study, tmp_path, capsys):
    files = _faulty_copy(good_study, fault, tmp_path / "study")
    out = tmp_path / "out" / "result.json"
    if entry == "metrics":
        from scripts.evaluation.metrics import main

        status = main(
            ["--gt", str(good_study.label), "--pred", str(files.label), "--out", str(out.with_suffix(".csv"))]
        )
    else:
        from scripts.evaluation.quantification import main

        status = main(["--pred", str(files.label), "--pet", str(files.pet), "--out", str(out)])
    assert status == 2
    assert_one_line(capsys.readouterr().err, files.label, fault.problem)
    assert listing(tmp_path / "out") == []


# ------------------------------------------------------------------------------ checkpoints x entry points


def _save(content) -> Callable[[Path, Path], None]:
    return lambda good, path: torch.save(content, path)


def _truncated(good: Path, path: Path) -> None:
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def _other_network(good: Path, path: Path) -> None:
    from scripts.networks import BiXLSTMResUNet

    other = BiXLSTMResUNet(**{**NETWORK, "features": [4, 8, 16, 32]}, deep_supervision=True)
    torch.save({"model": other.state_dict()}, path)


CHECKPOINT_FAULTS = {
    # id: (maker, {entry point: regex of the problem}, default regex)
    "empty": (lambda good, path: path.write_bytes(b""), {}, r"empty file \(0 bytes\)"),
    "truncated": (_truncated, {}, "truncated checkpoint"),
    "text-file": (lambda good, path: path.write_text("weights: none\n"), {}, "not a PyTorch checkpoint"),
    "unsafe-pickle": (_save({"model": np.arange(3)}), {"resume": "weights_only|cannot resume"}, "weights_only"),
    "a-bare-tensor": (_save(torch.zeros(3)), {"resume": "cannot resume"}, "not a state dict"),
    "foreign-keys": (
        _save({"weights": {"w": torch.zeros(2)}}),
        {"inference": "no network state dict", "resume": "cannot resume", "transfer": "not an MAE or encoder"},
        "",
    ),
    "another-network": (
        _other_network,
        {"inference": "does not match the network", "resume": "cannot resume", "transfer": "differ in shape"},
        "",
    ),
}


def _load_for(entry: str, path: Path) -> None:
    from ignite.engine import Engine

    from scripts.inference.checkpoints import ResumeCheckpointLoader
    from scripts.inference.ensemble import load_fold_ensemble
    from scripts.mae import load_pretrained_encoder
    from scripts.networks import BiXLSTMResUNet

    network = BiXLSTMResUNet(**NETWORK, deep_supervision=True)
    if entry == "inference":
        load_fold_ensemble(network, [path])
    elif entry == "transfer":
        load_pretrained_encoder(network, path)
    else:
        trainer = Engine(lambda engine, batch: None)
        loader = ResumeCheckpointLoader(str(path), {"model": network, "trainer": trainer})
        loader.attach(trainer)
        trainer.run([0], max_epochs=1)


@pytest.mark.parametrize("fault", sorted(CHECKPOINT_FAULTS))
@pytest.mark.parametrize("entry", ["inference", "resume", "transfer"])
def test_checkpoint_fault_names_the_file_and_what_is_wrong(entry, fault, tiny_checkpoint, tmp_path):
    make, by_entry, default = CHECKPOINT_FAULTS[fault]
    path = tmp_path / "checkpoint.pt"
    make(tiny_checkpoint, path)
    before = path.read_bytes()
    with pytest.raises(InputDataError) as raised:
        _load_for(entry, path)
    assert raised.value.path == str(path)
    assert raised.value.problem.strip() and "()" not in raised.value.problem
    assert re.search(by_entry.get(entry, default), raised.value.problem), raised.value.problem
    assert path.read_bytes() == before, "the checkpoint is left as it was"


# ------------------------------------------------------------------------------ destinations x entry points


def _file_in_the_way(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.parent.joinpath("a_file").write_text("keep me")
    return out.parent / "a_file" / "out"


def _is_a_file(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("keep me")
    return out


def _non_empty(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("keep me")
    return out


DESTINATION_FAULTS = {
    "destination-is-a-file": (_is_a_file, "is a file|not a folder"),
    "file-in-the-way": (_file_in_the_way, "is a file|cannot be created|Not a directory"),
    "non-empty-without-overwrite": (_non_empty, "not empty"),
}


@pytest.mark.parametrize("fault", sorted(DESTINATION_FAULTS))
@pytest.mark.parametrize("entry", ["prepare", "inference"])
def test_destination_fault_is_named_before_anything_is_computed(
    entry, fault, release, tiny_checkpoint, bundle_root, tmp_path, capsys
):
    make, problem = DESTINATION_FAULTS[fault]
    dst = make(tmp_path / "work" / "out")
    before = {path: path.read_bytes() for path in (tmp_path / "work").rglob("*") if path.is_file()}
    if entry == "prepare":
        from scripts.data.prepare import main

        assert main(["--src", str(release), "--dst", str(dst), "--folds", "2"]) == 1
        assert_one_line(capsys.readouterr().err, dst, problem)
    elif fault != "non-empty-without-overwrite":  # a mask folder may hold other files: not a fault for inference
        root = tmp_path / "b"
        (root / "models").mkdir(parents=True)
        shutil.copyfile(tiny_checkpoint, root / "models" / "model.pt")
        overrides = {**TINY, "bundle_root": str(root), "input_path": str(release), "output_dir": str(dst)}
        error = workflow_error(bundle_root, ["inference.json"], overrides, "infer")
        assert_one_line("\n".join(error_lines(error) or []), dst, problem)
    after = {path: path.read_bytes() for path in (tmp_path / "work").rglob("*") if path.is_file()}
    assert after == before


# ----------------------------------------------------------------------------------------------------- leaks


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_prepare_removes_staging_folders_of_killed_runs_and_reports_them(release, tmp_path, capsys):
    from scripts.data.prepare import main

    dst = tmp_path / "dataset"
    stale = tmp_path / f".tmp-{_dead_pid()}-dataset"
    (stale / "imagesTr").mkdir(parents=True)
    (stale / "imagesTr" / "half.nii.gz").write_bytes(b"\0" * 1000)
    running = tmp_path / f".tmp-{os.getpid()}-dataset-of-a-running-run"
    running.mkdir()
    assert main(["--src", str(release), "--dst", str(dst), "--folds", "2"]) == 0
    out = capsys.readouterr().out
    assert f"removed {stale}" in out and "interrupted run" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dataset", running.name]), "a live run's is kept"
    assert (dst / "dataset.json").is_file()


def test_an_interrupted_replacement_gets_its_dataset_back(release, tmp_path, capsys):
    from scripts.atomic_io import remove_stale_staging

    pid = _dead_pid()
    old = tmp_path / f".old-{pid}-dataset"
    old.mkdir()
    (old / "dataset.json").write_text("{}")
    lines: list[str] = []
    remove_stale_staging(tmp_path, "dataset", lines.append)
    assert (tmp_path / "dataset" / "dataset.json").read_text() == "{}" and not old.exists()
    assert lines and "interrupted" in lines[0]


def test_inference_removes_mask_staging_files_of_killed_runs(tmp_path, caplog):
    from scripts.atomic_io import check_writable_folder, remove_stale_staging

    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".tmp-{_dead_pid()}-case.nii.gz"
    stale.write_bytes(b"half a mask")
    (out / "case.nii.gz").write_bytes(b"a finished mask")
    check_writable_folder(out)
    removed = remove_stale_staging(out)
    assert removed == [stale] and listing(out) == ["case.nii.gz"]


def test_prepare_into_a_closed_pipe_ends_quietly_with_the_dataset_complete(release, tmp_path, bundle_root):
    dst = tmp_path / "dataset"
    command = f"{sys.executable} -m scripts.data.prepare --src {release} --dst {dst} --folds 2 | head -c 1"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}; echo status=${{PIPESTATUS[0]}} >&2"],
        cwd=bundle_root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stderr.strip().endswith("status=0")
    assert len(list((dst / "imagesTr").glob("*.nii.gz"))) == 6 and (dst / "datalist_fold0.json").is_file()


# ------------------------------------------------------------------- one line from the workflows (subprocess)


def _datalist(folder: Path, training: list[StudyFiles], validation: list[StudyFiles]) -> Path:
    def item(files: StudyFiles) -> dict:
        return {"image": [str(files.ct), str(files.pet)], "label": str(files.label)}

    path = folder / "datalist.json"
    path.write_text(json.dumps({"training": [item(f) for f in training], "validation": [item(f) for f in validation]}))
    return path


@pytest.fixture(scope="module")
def broken_and_good(release, tmp_path_factory) -> tuple[StudyFiles, StudyFiles]:
    folder = tmp_path_factory.mktemp("fault_workflow")
    broken = _faulty_copy(release_studies(release)[0], STUDY_FAULTS[0], folder / "broken")
    return broken, release_studies(release)[1]


def test_training_run_ends_with_one_line_and_writes_no_checkpoint(broken_and_good, bundle_root, tmp_path):
    broken, good = broken_and_good
    datalist = _datalist(tmp_path, [broken], [good])
    overrides = {**TINY, "bundle_root": str(tmp_path / "b"), "dataset_dir": str(tmp_path), "datalist": str(datalist)}
    result = bundle_run(
        bundle_root, ["train.json"], {**overrides, "max_epochs": 1, "iterations_per_epoch": 1}, tmp_path
    )
    assert result.returncode == 1
    assert_one_line(result.stderr, broken.pet, "non-finite")
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stdout
    assert files_under(tmp_path / "b" / "models") == []


def workflow_error(bundle_root: Path, configs: list[str], overrides: dict, kind: str) -> BaseException:
    """Run a bundle workflow in this process (cheaper than a subprocess) and return what it raised."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        workflow_type=kind,
        config_file=[str(bundle_root / "configs" / name) for name in configs],
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        **overrides,
    )
    with pytest.raises(Exception) as raised:
        workflow.initialize()
        workflow.run()
    return raised.value


def test_resume_from_a_truncated_checkpoint_names_it(broken_and_good, tiny_checkpoint, bundle_root, tmp_path):
    _, good = broken_and_good
    datalist = _datalist(tmp_path, [good], [good])
    checkpoint = tmp_path / "b" / "models" / "fold0" / "last_checkpoint_epoch=1.pt"
    checkpoint.parent.mkdir(parents=True)
    _truncated(tiny_checkpoint, checkpoint)
    before = checkpoint.read_bytes()
    overrides = {**TINY, "bundle_root": str(tmp_path / "b"), "dataset_dir": str(tmp_path), "datalist": str(datalist)}
    error = workflow_error(bundle_root, ["train.json"], {**overrides, "max_epochs": 2}, "train")
    assert_one_line("\n".join(error_lines(error) or []), checkpoint, "truncated checkpoint")
    assert files_under(tmp_path / "b" / "models") == ["fold0/last_checkpoint_epoch=1.pt"]
    assert checkpoint.read_bytes() == before


def test_pretraining_run_names_the_broken_study(broken_and_good, bundle_root, tmp_path):
    broken, _ = broken_and_good
    datalist = tmp_path / "pretrain.json"
    datalist.write_text(json.dumps({"training": [{"image": [str(broken.ct), str(broken.pet)]}], "validation": []}))
    overrides = {**TINY, "bundle_root": str(tmp_path / "b"), "datalist": str(datalist), "max_epochs": 1}
    error = workflow_error(bundle_root, ["train.json", "pretrain.json"], overrides, "train")
    assert_one_line("\n".join(error_lines(error) or []), broken.pet, "non-finite")
    assert files_under(tmp_path / "b" / "models") == []


def test_inference_with_an_empty_checkpoint_names_it_and_writes_nothing(release, bundle_root, tmp_path):
    root = tmp_path / "b"
    (root / "models").mkdir(parents=True)
    (root / "models" / "model.pt").write_bytes(b"")
    out = tmp_path / "out"
    overrides = {**TINY, "bundle_root": str(root), "input_path": str(release), "output_dir": str(out)}
    error = workflow_error(bundle_root, ["inference.json"], overrides, "infer")
    assert_one_line("\n".join(error_lines(error) or []), root / "models" / "model.pt", r"empty file \(0 bytes\)")
    assert not out.exists()


def test_evaluation_scores_the_good_studies_and_names_the_broken_one(
    broken_and_good, tiny_checkpoint, bundle_root, tmp_path
):
    broken, good = broken_and_good
    datalist = _datalist(tmp_path, [good], [good, broken])
    (tmp_path / "datalist_fold0.json").write_text(datalist.read_text())
    root = tmp_path / "b"
    (root / "models" / "fold0").mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, root / "models" / "fold0" / "model.pt")
    overrides = {**TINY, "bundle_root": str(root), "dataset_dir": str(tmp_path), "save_figures": False}
    error = workflow_error(bundle_root, ["inference.json", "evaluate.json"], overrides, "infer")
    assert_one_line("\n".join(error_lines(error) or []), broken.pet, "non-finite")
    rows = (root / "eval" / "fold0" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2, "the good study is scored"


@pytest.mark.slow
def test_multi_gpu_training_ends_with_one_line_per_rank(broken_and_good, release, bundle_root, tmp_path):
    broken, good = broken_and_good
    datalist = _datalist(tmp_path, [broken], release_studies(release)[1:3])  # one validation study per rank
    files = "[" + ",".join(repr(str(bundle_root / "configs" / n)) for n in ("train.json", "multi_gpu_train.json")) + "]"
    command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nnodes=1", "--nproc_per_node=2"]
    command += ["-m", "monai.bundle", "run", "--config_file", files]
    overrides = {**TINY, "bundle_root": str(tmp_path / "b"), "dataset_dir": str(tmp_path), "datalist": str(datalist)}
    for key, value in {**overrides, "max_epochs": 1, "iterations_per_epoch": 1}.items():
        command += [f"--{key}", json.dumps(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PETCT_DEBUG", None)
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"error: {broken.pet}: ")]
    assert len(ours) == 2, result.stderr[-3000:]
    # torchrun then adds its own report (a launcher traceback we cannot reach), whose per-rank field is our line
    assert result.stderr.count(f"traceback : error: {broken.pet}: ") == 2
    assert "InputDataError" not in result.stderr, "no traceback of ours from any rank"
    assert files_under(tmp_path / "b" / "models") == []


# ------------------------------------------------------------------------- the hook itself (no MONAI at all)


HOOK_CASES = {
    "wrapped-twice": (
        "try:\n    raise InputDataError('/data/pet.nii.gz', 'NaN')\nexcept Exception as e:\n"
        "    try:\n        raise RuntimeError('applying transform') from e\n    except Exception as f:\n"
        "        raise RuntimeError('Failed to evaluate ConfigExpression') from f",
        1,
        ["error: /data/pet.nii.gz: NaN"],
    ),
    "from-a-dataloader-worker": (
        "raise RuntimeError('Caught RuntimeError in DataLoader worker process 0.\\nOriginal Traceback:\\n"
        "scripts.errors.InputDataError: /data/ct.nii.gz: the CT has no air\\n')",
        1,
        ["error: /data/ct.nii.gz: the CT has no air"],
    ),
    "several-studies": (
        "raise BatchInputError([InputDataError('/a', 'x'), InputDataError('/b', 'y')])",
        1,
        ["error: /a: x", "error: /b: y"],
    ),
    "closed-stdout": ("raise BrokenPipeError(32, 'Broken pipe')", 1, []),
}


@pytest.mark.parametrize("case", sorted(HOOK_CASES))
def test_uncaught_input_errors_end_with_their_lines_only(case, bundle_root):
    code, status, lines = HOOK_CASES[case]
    program = "import scripts\nfrom scripts.errors import BatchInputError, InputDataError\n" + code
    env = {key: value for key, value in os.environ.items() if key != "PETCT_DEBUG"}
    result = subprocess.run([sys.executable, "-c", program], cwd=bundle_root, capture_output=True, text=True, env=env)
    assert result.returncode == status
    assert result.stderr.splitlines() == lines


def test_debug_switch_brings_the_traceback_back(bundle_root):
    code = HOOK_CASES["wrapped-twice"][0]
    program = "import scripts\nfrom scripts.errors import BatchInputError, InputDataError\n" + code
    env = {**os.environ, "PETCT_DEBUG": "1"}
    result = subprocess.run([sys.executable, "-c", program], cwd=bundle_root, capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "InputDataError: /data/pet.nii.gz: NaN" in result.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_bundle_log_records_carry_the_line_instead_of_the_traceback(debug, monkeypatch):
    """What ignite's and MONAI's handlers log while the error propagates (active in monai.bundle runs)."""
    import io
    import logging

    from scripts.errors import _OneLineRecords

    monkeypatch.setattr(logging, "_logRecordFactory", _OneLineRecords(logging.getLogRecordFactory()))
    if debug:
        monkeypatch.setenv("PETCT_DEBUG", "1")
    else:
        monkeypatch.delenv("PETCT_DEBUG", raising=False)
    stream = io.StringIO()
    logger = logging.getLogger("test_faults.records")
    logger.addHandler(logging.StreamHandler(stream))
    try:
        try:
            raise RuntimeError("applying transform") from InputDataError("/data/pet.nii.gz", "NaN")
        except RuntimeError as error:
            logger.exception("Exception: %s", error)
            logger.error("Engine run is terminating due to exception: %s", error)
    finally:
        logger.handlers.clear()
    text = stream.getvalue()
    assert ("Traceback" in text) is debug
    if not debug:
        assert text.splitlines() == [
            "Exception: applying transform -> error: /data/pet.nii.gz: NaN",
            "Engine run is terminating due to exception: applying transform -> error: /data/pet.nii.gz: NaN",
        ]


def test_other_errors_keep_their_traceback(bundle_root):
    program = "import scripts\nraise KeyError('a programming error')"
    result = subprocess.run([sys.executable, "-c", program], cwd=bundle_root, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" in result.stderr and "KeyError" in result.stderr
