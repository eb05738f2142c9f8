"""The bundle configs: each stands alone from any directory, they share one recipe, and name their run aliases."""

import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

WORKFLOWS = {
    ("train.json",): "training",
    ("train.json", "pretrain.json"): "training",
    ("inference.json",): "inference",
    ("inference.json", "evaluate.json"): "evaluating",
}
CONFIG_FILES = sorted(p.name for p in (Path(__file__).parents[1] / "bundle" / "configs").glob("*.json"))
STANDALONE = ("train.json", "inference.json")  # pretrain.json is an overlay on train.json
# Ids every standalone config declares identically (MONAI Label reads train.json and inference.json alone, so they
# cannot pull them from a shared file); the preprocessing chain itself is one function, scripts.transforms.
RECIPE_IDS = (
    "imports",
    "bundle_root",
    "device",
    "amp",
    "image",
    "label",
    "pred",
    "image_label",
    "num_classes",
    "pixdim",
    "roi_size",
    "ct_window_hu",
    "ct_mean_std",
    "pet_window_suv",
    "pet_mean_std",
    "body_threshold_hu",
    "check_plausibility",
    "xlstm",
    "features",
    "strides",
    "network_def",
)
SEGMENTATION_IDS = ("preprocessing_transforms", "sw_batch_size", "stitch_on_cpu_above_voxels", "inferer")
CHECKPOINT_IDS = ("last_checkpoint", "prune_checkpoints", "resume_from", "resume_loader")


def raw(bundle_root, name):
    return json.loads((bundle_root / "configs" / name).read_text())


def parse(bundle_root, *names):
    parser = ConfigParser()
    parser.read_config([str(bundle_root / "configs" / name) for name in names])
    parser.resolve_macro_and_relative_ids()
    return parser


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("configs, alias", sorted(WORKFLOWS.items()))
def test_spelled_out_run_alias_runs_the_same_steps(bundle_root, configs, alias, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any working directory: no macro may point at another file
    parser = parse(bundle_root, *configs)
    assert parser.get(alias) == parser.get("run")


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_no_config_refers_to_another_file(bundle_root, name):
    macros = [s for s in _strings(raw(bundle_root, name)) if s.startswith("%") and "::" in s]
    assert not macros, f"{name} pulls items from other files, which breaks MONAI Label and other working directories"


@pytest.mark.parametrize("config", STANDALONE[1:])
def test_standalone_configs_share_one_recipe(bundle_root, config):
    train, other = raw(bundle_root, "train.json"), raw(bundle_root, config)
    for key in RECIPE_IDS:
        assert other[key] == train[key], f"{config} and train.json disagree on {key}"


def test_training_validates_with_the_inference_preprocessing_and_inferer(bundle_root):
    train, inference = raw(bundle_root, "train.json"), raw(bundle_root, "inference.json")
    for key in SEGMENTATION_IDS:
        assert inference[key] == train[key], f"inference.json and train.json disagree on {key}"


def test_inference_profiles_full_by_default_as_validation_and_a_cheaper_interactive_one(bundle_root):
    """MONAI Label's ``interactive`` option (displayable_configs) picks fewer flips and less window overlap."""
    train = parse(bundle_root, "train.json")
    full = parse(bundle_root, "inference.json")
    assert full.get_parsed_content("sw_overlap") == train.get_parsed_content("sw_overlap") == 0.5
    assert full.get_parsed_content("tta_axes") == [0, 1, 2]
    interactive = parse(bundle_root, "inference.json")
    interactive["displayable_configs"]["interactive"] = True
    interactive.parse()
    assert interactive.get_parsed_content("tta_axes") == [] and interactive.get_parsed_content("sw_overlap") == 0.25


def test_pretraining_normalises_like_training_and_checkpoints_alike(bundle_root):
    train = raw(bundle_root, "train.json")
    pretrain = ConfigParser.load_config_files(
        [str(bundle_root / "configs" / n) for n in ("train.json", "pretrain.json")]
    )
    for key in CHECKPOINT_IDS:
        assert pretrain[key] == train[key], f"pretrain.json and train.json disagree on {key}"
    own = {"loader", "label_key"}
    shared = {k: v for k, v in train["preprocessing_transforms"].items() if k not in own}
    assert {k: v for k, v in pretrain["preprocessing_transforms"].items() if k not in own} == shared
    assert pretrain["preprocessing_transforms"]["label_key"] is None


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
def test_verify_net_in_out_passes_for_each_variant(bundle_root, variant, monkeypatch, tmp_path):
    """The model zoo's shape check: metadata's input shape through network_def gives 2 channels, float32."""
    from monai.bundle import verify_net_in_out

    monkeypatch.chdir(tmp_path)
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        config_file=str(bundle_root / "configs" / "inference.json"),
        device="cpu",
        xlstm=variant,
    )


def test_evaluation_scores_a_fold_with_its_own_model_only(bundle_root):
    """The other folds trained on this fold's validation studies: an ensemble here would leak."""
    parser = parse(bundle_root, "inference.json", "evaluate.json")
    parser["bundle_root"] = "/runs/b"
    parser["fold"] = 3
    assert parser.get_parsed_content("checkpoints") == ["/runs/b/models/fold3/model.pt"]
    assert parser.get_parsed_content("input_path").endswith("datalist_fold3.json")
    inference = parse(bundle_root, "inference.json")
    inference["bundle_root"] = str(bundle_root / "no_such_run")
    assert inference.get_parsed_content("checkpoints") == [str(bundle_root / "no_such_run" / "models" / "model.pt")]


@pytest.mark.parametrize("config", [("train.json",), ("train.json", "pretrain.json")])
def test_seed_override_seeds_the_run(bundle_root, config):
    small = {"features": [4, 8], "strides": [1, 2]}

    def first_weights(seed):
        parser = parse(bundle_root, *config)
        parser.update({"seed": seed, **small})
        parser.get_parsed_content("initialize")
        return next(iter(parser.get_parsed_content("network_def").parameters())).detach().clone()

    assert torch.equal(first_weights(3), first_weights(3))
    assert not torch.equal(first_weights(3), first_weights(4))


@pytest.mark.parametrize("overlay", ["multi_gpu_train.json", "multi_gpu_pretrain.json"])
def test_ddp_runs_no_collective_in_forward(bundle_root, overlay):
    """Forward passes run no collective: the only buffers are constant masks, which need no syncing, and ranks then
    never depend on running the same number of forward passes."""
    assert raw(bundle_root, overlay)["network"]["forward_sync_buffers"] is False
    for variant in ("bot", "enc"):
        parser = parse(bundle_root, "train.json")
        parser.update({"xlstm": variant, "features": [4, 8, 8, 8], "strides": [1, 2, 2, 2]})
        buffers = dict(parser.get_parsed_content("network_def").named_buffers())
        assert buffers and all(name.endswith("causal_mask") for name in buffers)


def test_deep_supervision_weights_follow_nnunet(bundle_root):
    """Lowest-resolution output weighs 0, the rest 1, 1/2, 1/4, ... normalised to sum 1 (one per decoder output)."""
    for names, levels in ((("train.json",), 5), (("train.json", "adamw.json", "demo.json"), 4)):
        weights = parse(bundle_root, *names).get_parsed_content("loss").weights
        assert len(weights) == levels, names
        assert weights[-1] == 0.0 and sum(weights) == pytest.approx(1.0)
        assert all(a == pytest.approx(2 * b) for a, b in zip(weights[:-2], weights[1:-1], strict=True))


def test_demo_overlay_is_one_recipe_for_training_and_inference(bundle_root):
    train = parse(bundle_root, "train.json", "adamw.json", "demo.json")
    infer = parse(bundle_root, "inference.json", "demo.json")
    demo = raw(bundle_root, "demo.json")
    for key in ("pixdim", "features", "strides", "xlstm", "tta_axes", "sw_overlap"):
        assert train.get(key) == infer.get(key) == demo[key], key
    # Training crops roi_size patches; both inferers (validation and inference) slide inferer#roi_size windows.
    assert train.get("roi_size") == demo["roi_size"] != demo["inferer#roi_size"]
    assert train.get("inferer#roi_size") == infer.get("inferer#roi_size") == demo["inferer#roi_size"]
    network = infer.get_parsed_content("network_def")
    assert sum(p.numel() for p in network.parameters()) < 2.5e6  # the shipped weights stay a few MB in float16
    with torch.no_grad():
        out = network.eval()(torch.zeros(1, 2, *demo["inferer#roi_size"]))
    assert out.shape == (1, 2, *demo["inferer#roi_size"])
