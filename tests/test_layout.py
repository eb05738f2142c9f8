# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The package layout of bundle/scripts: one home per layer, no import cycles, small modules, one recipe."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "bundle" / "scripts"
CONFIGS = SCRIPTS.parent / "configs"
TOP_LEVEL = {"__init__.py", "errors.py", "atomic_io.py", "workflow_runs.py", "demo.py", "demo_weights.py"}
PACKAGES = {"data", "transforms", "networks", "training", "inference", "evaluation", "mae", "synthetic", "ablation"}
MAX_LINES = 320  # "about 300"
LONG_MODULE_REASON = "Longer than 300 lines because"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SCRIPTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SCRIPTS.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every scripts.* module ``path`` imports, anywhere in the file (functions and TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            names = [name for name in names if name in modules][:1] or [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    """scripts module -> the scripts modules it imports (a package's ``__init__`` counts as the package)."""
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_cycle_finder_finds_a_known_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_sees_function_level_and_type_only_imports():
    graph = import_graph()
    assert "scripts.data.grids" in graph["scripts.transforms.pet_ct_loading"]
    assert "scripts.inference.checkpoints" in graph["scripts.mae.encoder_checkpoint"]


def test_no_import_cycles_in_bundle_scripts():
    cycles = find_cycles(import_graph())
    assert not cycles, f"import cycles (type-only imports included): {cycles}"


def test_layers_import_only_downstream():
    """data -> transforms -> networks -> inference -> evaluation: no layer imports a later one."""
    order = ["data", "transforms", "networks", "training", "inference", "evaluation"]
    for module, targets in import_graph().items():
        layer = module.split(".")[1] if module.count(".") else None
        if layer not in order:
            continue
        for target in targets:
            target_layer = target.split(".")[1] if target.count(".") else None
            if target_layer in order:
                assert order.index(target_layer) <= order.index(layer), f"{module} imports the later {target}"


def test_top_level_holds_only_the_shared_modules_and_the_layer_packages():
    entries = {p.name for p in SCRIPTS.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert {name for name in entries if name.endswith(".py")} == TOP_LEVEL
    assert {name for name in entries if (SCRIPTS / name).is_dir()} == PACKAGES


@pytest.mark.parametrize("path", sorted(SCRIPTS.rglob("*.py")), ids=lambda p: str(p.relative_to(SCRIPTS)))
def test_modules_are_small_or_say_why_not(path):
    lines = len(path.read_text().splitlines())
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= MAX_LINES or LONG_MODULE_REASON in docstring, (
        f"{path.name} has {lines} lines: split it, or give the reason in its docstring ({LONG_MODULE_REASON} ...)"
    )


def test_python_defaults_are_the_configs_recipe():
    """The recipe numbers live in the configs and as Python defaults; both must say the same."""
    from scripts.networks import BiXLSTMResUNet
    from scripts.networks.unet import PAPER_FEATURES, PAPER_ROI_SIZE, PAPER_STRIDES
    from scripts.transforms import BODY_THRESHOLD_HU, CT_CHANNEL, DEFAULT_NORMALIZATION, PAPER_SPACING_MM, PET_CHANNEL
    from scripts.transforms.pipeline import petct_preprocessing

    for name in ("train.json", "inference.json"):
        config = json.loads((CONFIGS / name).read_text())
        assert tuple(config["pixdim"]) == PAPER_SPACING_MM, name
        assert tuple(config["roi_size"]) == PAPER_ROI_SIZE, f"{name}: roi_size and PAPER_ROI_SIZE are both x, y, z"
        assert config["body_threshold_hu"] == BODY_THRESHOLD_HU, name
        ct, pet = DEFAULT_NORMALIZATION[CT_CHANNEL], DEFAULT_NORMALIZATION[PET_CHANNEL]
        assert config["ct_window_hu"] == [ct.lower, ct.upper] and config["ct_mean_std"] == [ct.mean, ct.std], name
        assert config["pet_window_suv"] == [pet.lower, pet.upper] and config["pet_mean_std"] == [pet.mean, pet.std]
        assert tuple(config["features"]) == PAPER_FEATURES and tuple(config["strides"]) == PAPER_STRIDES, name
        network = inspect.signature(BiXLSTMResUNet).parameters
        assert config["network_def"]["in_channels"] == network["in_channels"].default, name
        assert config["num_classes"] == network["out_channels"].default, name
        assert config["xlstm"] == network["xlstm"].default, name
        assert (
            tuple(network["features"].default) == PAPER_FEATURES and tuple(network["strides"].default) == PAPER_STRIDES
        )

    parameters = inspect.signature(petct_preprocessing).parameters
    assert tuple(parameters["pixdim"].default) == PAPER_SPACING_MM
    assert parameters["body_threshold_hu"].default == BODY_THRESHOLD_HU
