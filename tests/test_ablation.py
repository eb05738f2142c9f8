"""The ablation command end to end on a tiny synthetic cohort, plus its summary arithmetic.

One module-scoped run (two arms x two seeds: ``none`` from scratch and ``bot`` + MAE pretraining, 1 epoch x 2
iterations each) feeds the end-to-end tests; rerunning it checks the resume.
"""

import csv
import json
import math

import numpy as np
import pytest
import torch

from scripts.ablation import Arm, load_fold, mean_and_std, summarize_arms
from scripts.ablation.__main__ import main
from scripts.ablation.report import SUMMARY_COLUMNS, mean_std_text
from scripts.errors import InputDataError

ARMS = ["none", "bot+ssl"]
SEEDS = [0, 1]
TINY_BUDGET = [
    "--epochs", "1", "--iterations-per-epoch", "2", "--pretrain-epochs", "1", "--pretrain-iterations-per-epoch", "2",
    "--pixdim", "10", "10", "15", "--roi-size", "32", "32", "32", "--features", "8", "16", "32", "64",
    "--strides", "1", "2", "2", "2", "--tta-axes", "--sw-overlap", "0.25", "--sw-batch-size", "4",
    "--num-workers", "0", "--labelled", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset("ablation_data")


def _command(dataset, out, *extra):
    return [
        "--data",
        str(dataset),
        "--out",
        str(out),
        "--arms",
        *ARMS,
        "--seeds",
        *map(str, SEEDS),
        *TINY_BUDGET,
        *extra,
    ]


@pytest.fixture(scope="module")
def ablation(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation_out")
    assert main(_command(dataset, out)) == 0
    return out


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_runs_csv_has_one_row_per_arm_and_seed_scored_on_the_fold_test_set(ablation, dataset):
    rows = _read_csv(ablation / "ablation_runs.csv")
    assert list(rows[0]) == ["arm", "variant", "ssl", "seed", "dice", "fpv_ml", "fnv_ml", "cases"]
    assert sorted((row["arm"], int(row["seed"])) for row in rows) == sorted((a, s) for a in ARMS for s in SEEDS)
    test_cases = len(json.loads((dataset / "datalist_fold0.json").read_text())["validation"])
    assert {int(row["cases"]) for row in rows} == {test_cases}
    assert {(row["arm"], row["variant"], row["ssl"]) for row in rows} == {
        ("none", "none", "False"),
        ("bot+ssl", "bot", "True"),
    }
    for row in rows:
        assert (
            ablation / "runs" / Arm.parse(row["arm"]).folder / f"seed{row['seed']}" / "eval" / "metrics.csv"
        ).is_file()


def test_summary_csv_and_markdown_are_the_mean_and_std_over_seeds_of_the_runs(ablation):
    runs = _read_csv(ablation / "ablation_runs.csv")
    summary = {row["arm"]: row for row in _read_csv(ablation / "ablation.csv")}
    assert list(next(iter(summary.values()))) == list(SUMMARY_COLUMNS)
    assert list(summary) == ARMS
    markdown = (ablation / "ablation.md").read_text()
    for arm in ARMS:
        assert int(summary[arm]["seeds"]) == len(SEEDS)
        for metric in ("dice", "fpv_ml", "fnv_ml"):
            values = [float(row[metric]) for row in runs if row["arm"] == arm]
            assert float(summary[arm][f"{metric}_mean"]) == pytest.approx(np.mean(values), nan_ok=True)
            assert float(summary[arm][f"{metric}_std"]) == pytest.approx(np.std(values, ddof=1), nan_ok=True)
        dice = mean_std_text(float(summary[arm]["dice_mean"]), float(summary[arm]["dice_std"]), 3)
        assert f"| {arm} | {Arm.parse(arm).variant} |" in markdown and dice in markdown
    assert "python -m scripts.ablation --data" in markdown and "--epochs 1" in markdown
    assert "1 epoch x 2 iterations x batch 2 = 4 patches" in markdown and "32 x 32 x 32" in markdown


def test_ssl_arm_fine_tunes_from_the_encoder_pretrained_for_its_variant_and_seed(ablation):
    for seed in SEEDS:
        encoder = ablation / "pretrain" / "bot" / f"seed{seed}" / "models" / "mae" / "encoder.pt"
        assert encoder.is_file()
        record = json.loads((ablation / "runs" / "bot_ssl" / f"seed{seed}" / "run.json").read_text())
        assert record["encoder"] == str(encoder)
        loaded = record["encoder_transfer"]
        assert loaded.startswith("loaded ") and f"encoder tensors from {encoder}" in loaded
        assert int(loaded.split()[1]) > 0
        assert loaded in (ablation / "runs" / "bot_ssl" / f"seed{seed}" / "train.log").read_text()
        scratch = json.loads((ablation / "runs" / "none" / f"seed{seed}" / "run.json").read_text())
        assert scratch["encoder"] is None and scratch["encoder_transfer"] is None
    assert sorted(p.name for p in (ablation / "pretrain").iterdir()) == ["bot"], "pretraining only for +ssl variants"


def test_every_arm_and_seed_reads_one_shared_preprocessed_cache(ablation, dataset):
    labelled = [item["case"] for item in _fold_items(dataset, "training")[:2]]  # --labelled 2
    studies = labelled + [item["case"] for item in _fold_items(dataset, "validation")]
    stored = [json.loads(p.read_text())["study"] for p in (ablation / "preprocessed" / "train").glob("*/entry.json")]
    assert sorted(name.split(" (")[0] for name in stored) == sorted(studies), "each fine-tuning study stored once"
    assert list((ablation / "preprocessed" / "pretrain").glob("*/entry.json")), "pretraining has its own cache"
    assert not list(ablation.glob("runs/*/*/preprocessed")) and not list(ablation.glob("pretrain/*/*/preprocessed"))


def _fold_items(dataset, key):
    return json.loads((dataset / "datalist_fold0.json").read_text())[key]


def test_rerun_skips_finished_runs_and_another_budget_is_refused(ablation, dataset, capsys):
    outputs = sorted(ablation.glob("runs/*/*/eval/metrics.csv")) + sorted(ablation.glob("runs/*/*/models/*/*.pt"))
    stamps = [path.stat().st_mtime_ns for path in outputs]
    runs_before = (ablation / "ablation_runs.csv").read_text()
    capsys.readouterr()
    assert main(_command(dataset, ablation)) == 0
    printed = capsys.readouterr().out
    assert printed.count(": finished,") == len(ARMS) * len(SEEDS)
    assert "=== fine-tuning" not in printed and "=== MAE pretraining" not in printed
    assert [path.stat().st_mtime_ns for path in outputs] == stamps
    assert (ablation / "ablation_runs.csv").read_text() == runs_before

    assert main(_command(dataset, ablation, "--epochs", "2")) == 1
    error = capsys.readouterr().err
    assert "protocol.json" in error and "budget.epochs 1 -> 2" in error


def test_missing_or_invalid_dataset_fails_naming_the_file(dataset, tmp_path, capsys):
    with pytest.raises(InputDataError, match="absent: dataset folder not found"):
        load_fold(tmp_path / "absent", 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputDataError, match="splits_final.json: the split file not found"):
        load_fold(empty, 0)
    (empty / "splits_final.json").write_text((dataset / "splits_final.json").read_text())
    with pytest.raises(InputDataError, match="datalist_fold0.json: the datalist of fold 0 not found"):
        load_fold(empty, 0)
    (empty / "datalist_fold0.json").write_text("{not json")
    with pytest.raises(InputDataError, match="datalist_fold0.json: the datalist of fold 0 is not valid JSON"):
        load_fold(empty, 0)
    with pytest.raises(InputDataError, match="splits_final.json: has 3 fold"):
        load_fold(dataset, 3)
    assert main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 1
    assert "absent: dataset folder not found" in capsys.readouterr().err
    assert main(["--data", str(dataset), "--out", str(tmp_path / "out"), "--labelled", "99"]) == 1
    assert "--labelled 99 is not in" in capsys.readouterr().err
    command = ["--data", str(dataset), "--out", str(tmp_path / "out"), "--pretrain-datalist", str(tmp_path / "no.json")]
    assert main(command) == 1
    assert "no.json: the pretraining datalist not found" in capsys.readouterr().err
    (tmp_path / "empty.json").write_text('{"training": []}')
    assert main([*command[:-1], str(tmp_path / "empty.json")]) == 1
    assert "empty.json: needs a non-empty 'training' list" in capsys.readouterr().err


def test_mean_and_std_on_known_numbers():
    assert mean_and_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, math.sqrt(5 / 3)))
    mean, std = mean_and_std([0.5])
    assert mean == 0.5 and math.isnan(std)
    rows = [
        {"arm": "bot+ssl", "variant": "bot", "ssl": True, "dice": 0.6, "fpv_ml": 1.0, "fnv_ml": 4.0},
        {"arm": "none", "variant": "none", "ssl": False, "dice": 0.5, "fpv_ml": 2.0, "fnv_ml": 0.0},
        {"arm": "bot+ssl", "variant": "bot", "ssl": True, "dice": 0.4, "fpv_ml": 3.0, "fnv_ml": 2.0},
    ]
    bot, scratch = summarize_arms(rows)
    assert (bot["arm"], bot["seeds"], scratch["arm"], scratch["seeds"]) == ("bot+ssl", 2, "none", 1)
    assert bot["dice_mean"] == pytest.approx(0.5) and bot["dice_std"] == pytest.approx(math.sqrt(0.02))
    assert bot["fpv_ml_mean"] == pytest.approx(2.0) and bot["fnv_ml_std"] == pytest.approx(math.sqrt(2.0))
    assert math.isnan(scratch["dice_std"])
    assert mean_std_text(0.5, math.sqrt(0.02), 3) == "0.500 ± 0.141"
    assert mean_std_text(0.5, math.nan, 3) == "0.500"
    assert mean_std_text(math.nan, math.nan, 3) == "-"


@pytest.mark.parametrize(
    ("text", "variant", "ssl", "folder"),
    [("none", "none", False, "none"), ("enc+ssl", "enc", True, "enc_ssl"), ("bot", "bot", False, "bot")],
)
def test_arm_names(text, variant, ssl, folder):
    arm = Arm.parse(text)
    assert (arm.variant, arm.ssl, arm.folder, arm.name) == (variant, ssl, folder, text)


def test_unknown_arm_is_rejected():
    with pytest.raises(ValueError, match="unknown arm 'xlstm'"):
        Arm.parse("xlstm")


def test_overlays_set_the_recipe_of_fine_tuning_and_evaluation(ablation, dataset, bundle_root, tmp_path):
    """``--overlay adamw.json demo.json``: AdamW at demo.json's learning rate and windows, recorded in the protocol."""
    out = tmp_path / "overlaid"
    command = ["--data", str(dataset), "--out", str(out), "--arms", "none", "--seeds", "0", *TINY_BUDGET]
    assert main([*command, "--overlay", "adamw.json", "demo.json"]) == 0
    recorded = json.loads((out / "protocol.json").read_text())["budget"]
    demo = json.loads((bundle_root / "configs" / "demo.json").read_text())
    assert recorded["overlays"] == ["adamw.json", "demo.json"]
    assert recorded["learning_rate"] == demo["learning_rate"], "the overlay's value is the default"
    assert recorded["epochs"] == 1, "an explicit option still wins"
    assert recorded["pos_neg_ratio"] == demo["pos_neg_ratio"] and recorded["hot_patch_weight"] == 1
    plain = json.loads((ablation / "protocol.json").read_text())["budget"]
    assert plain["pos_neg_ratio"] == [1, 2] and plain["hot_patch_weight"] == 0, "train.json's own sampling"
    assert "patch centres (lesion : anywhere : hot background) | 2 : 1 : 1" in (out / "ablation.md").read_text()
    record = json.loads(next((out / "runs").rglob("run.json")).read_text())
    state = torch.load(record["checkpoint"], map_location="cpu", weights_only=True)["optimizer"]["state"]
    assert "exp_avg" in next(iter(state.values())), "AdamW's moments, not SGD's momentum buffer"
    assert (out / "runs" / "none" / "seed0" / "eval" / "metrics.csv").is_file()
