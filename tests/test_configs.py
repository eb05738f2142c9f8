"""The bundle configs: they parse, share their common parts instead of copying them, and name their run aliases."""

import json
import os

import pytest
from monai.bundle import ConfigParser

WORKFLOWS = {
    "train.json": "training",
    "pretrain.json": "training",
    "inference.json": "inference",
    "evaluate.json": "evaluating",
}
SHARED_IDS = ("network_def", "preprocessing_transforms", "pixdim", "roi_size", "features", "strides", "xlstm")


def parse(bundle_root, *names):
    parser = ConfigParser()
    parser.read_config([str(bundle_root / "configs" / name) for name in names])
    previous = os.getcwd()
    os.chdir(bundle_root)
    try:
        parser.resolve_macro_and_relative_ids()
    finally:
        os.chdir(previous)
    return parser


@pytest.mark.parametrize("config, alias", sorted(WORKFLOWS.items()))
def test_spelled_out_run_alias_runs_the_same_steps(bundle_root, config, alias):
    parser = parse(bundle_root, config)
    assert parser.get(alias) == parser.get("run")


@pytest.mark.parametrize("config", sorted(WORKFLOWS))
def test_shared_parts_come_from_common_json(bundle_root, config):
    raw = json.loads((bundle_root / "configs" / config).read_text())
    for key in SHARED_IDS:
        assert raw[key] == f"%configs/common.json::{key}", f"{config} must take {key} from common.json, not copy it"
    parser = parse(bundle_root, config)
    common = json.loads((bundle_root / "configs" / "common.json").read_text())
    assert parser.get("network_def") == common["network_def"]


def test_adamw_overlay_replaces_optimizer_and_schedule(bundle_root):
    parser = parse(bundle_root, "train.json", "adamw.json")
    assert parser.get("optimizer#_target_") == "torch.optim.AdamW"
    assert parser.get("lr_scheduler#_target_") == "monai.optimizers.WarmupCosineSchedule"


def test_fold_override_selects_the_fold_datalist(bundle_root):
    parser = parse(bundle_root, "train.json")
    parser["dataset_dir"] = "/data/set"
    parser["fold"] = 3
    assert parser.get_parsed_content("datalist") == "/data/set/datalist_fold3.json"


def test_metadata_verifies_offline_against_the_model_zoo_schema(bundle_root, shared_dir, tmp_path):
    pytest.importorskip("jsonschema")
    from monai.bundle import verify_metadata

    schema = shared_dir / "schema" / "meta_schema_20240725.json"
    verify_metadata(meta_file=str(bundle_root / "configs" / "metadata.json"), filepath=str(schema))
    metadata = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    assert metadata["version"] in metadata["changelog"]


def test_metadata_pins_the_same_versions_as_requirements(bundle_root):
    """The zoo installs exactly what metadata.json lists: it must match what the project is tested with."""
    repo = bundle_root.parent
    pins = {}
    for line in (repo / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    metadata = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    assert metadata["monai_version"] == pins.pop("monai")
    assert metadata["numpy_version"] == pins.pop("numpy")
    assert metadata["pytorch_version"] == "2.13.0"
    assert {k.lower(): v for k, v in metadata["required_packages_version"].items()} == pins


@pytest.mark.parametrize("variant", ["bot", "enc", "none"])
def test_verify_net_in_out_passes_for_each_variant(bundle_root, variant, monkeypatch):
    """The model zoo's shape check: metadata's input shape through network_def gives 2 channels, float32."""
    from monai.bundle import verify_net_in_out

    monkeypatch.chdir(bundle_root)
    verify_net_in_out(
        net_id="network_def",
        meta_file="configs/metadata.json",
        config_file="configs/inference.json",
        device="cpu",
        xlstm=variant,
    )
