"""The MONAI model zoo's CI on this bundle, as the zoo runs it (see zoo/README.md).

``zoo/checks.py`` copies bundle/ and zoo/ci/ into a temporary tree laid out like the zoo's repository and runs the
zoo's tools there at the zoo's settings: isort, black --skip-magic-trailing-comma, flake8 with its plugins, the
pre-commit hooks, and vermin for the minimum Python version (3.10, the zoo CI's). A failing check shows the tool's
own output; ``bash run.sh format`` applies every fix a formatter can make. The planted-fault tests show that each
check rejects what the zoo rejects (and, for isort, that ``scripts`` sorts as a third-party package, as in the zoo).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ZOO_CHECKS = ["isort", "black", "flake8", "pre-commit", "vermin"]


@pytest.fixture(scope="module")
def checks():
    """zoo/checks.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("zoo_checks", REPO / "zoo" / "checks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.parametrize("name", ZOO_CHECKS)
def test_bundle_passes_the_zoo_check(name):
    result = subprocess.run(
        [sys.executable, str(REPO / "zoo" / "checks.py"), "check", name],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"the model zoo's {name} check fails (`bash run.sh format` fixes what a formatter can):\n"
        f"{result.stdout[-8000:]}{result.stderr[-2000:]}"
    )


def test_the_zoo_checks_cover_every_python_and_json_file_of_the_bundle(checks, tmp_path):
    files = checks.build_zoo_tree(tmp_path)
    place = checks.ZOO_PLACES["bundle"]
    python = {name for name in files if name.endswith(".py")}
    assert len([name for name in python if name.startswith(place)]) >= 70
    assert f"{place}/configs/metadata.json" in files and f"{place}/models/README.md" in files
    assert "ci/unit_tests/test_petct_lesion_segmentation.py" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith((".pt", ".nii.gz"))]
    by_hook = {hook.name: set(checks.hook_files(hook, files, tmp_path)) for hook in checks.ZOO_HOOKS}
    assert by_hook["check-docstring-first"] == python
    assert by_hook["pretty-format-json"] == {name for name in files if name.endswith(".json")}
    text = {name for name in files if name.endswith((".py", ".json", ".md", ".txt", ".conf", "LICENSE"))}
    assert by_hook["end-of-file-fixer"] >= text, "the text hooks see every text file"


PLANTED = {  # check -> (file content the zoo rejects, what the tool's output names)
    "isort": ("import torch\n\nfrom scripts.errors import InputDataError\n\nprint(torch, InputDataError)\n", "planted"),
    "black": ("x = max(\n    1,\n    2,\n)\n", "would reformat"),
    "flake8": ("def default():\n    return 1\n\n\ndef f(x=default()):\n    return x\n", "B008"),
    "pre-commit": ('"""Module."""\n\nLIMIT = 3\n"""The limit."""\n', "Multiple module docstrings"),
    "vermin": ("import enum\n\n\nclass Order(enum.StrEnum):\n    FIRST = 'first'\n", "enum.StrEnum"),
}


def _planted_tree(checks, root: Path, content: str) -> list[str]:
    """A zoo-like tree with the settings and one planted module in the bundle's ``scripts``."""
    for name in checks.SETTINGS_FILES:
        shutil.copy2(REPO / name, root / name)
    scripts = root / checks.ZOO_PLACES["bundle"] / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "__init__.py").write_text('"""Scripts."""\n')
    (scripts / "planted.py").write_text(content)
    return [path.relative_to(root).as_posix() for path in sorted(scripts.iterdir())]


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_each_zoo_check_rejects_a_planted_fault(checks, tmp_path, name):
    content, expected = PLANTED[name]
    result = checks.CHECKS[name](tmp_path, _planted_tree(checks, tmp_path, content))
    assert not result.passed, result.output
    assert expected in result.output and "bundle/scripts/planted.py" in result.output, result.output


def test_isort_sorts_scripts_imports_with_the_third_party_ones_as_the_zoo_does(checks, tmp_path):
    """In the zoo, ``scripts`` is no first-party package: it joins torch's section, with no blank line between."""
    content = "import torch\nfrom scripts.errors import InputDataError\n\nprint(torch, InputDataError)\n"
    result = checks.CHECKS["isort"](tmp_path, _planted_tree(checks, tmp_path, content))
    assert result.passed, result.output


def test_format_command_makes_the_zoo_checks_pass(checks, tmp_path):
    """``format`` run in a checkout fixes what isort, black and the pre-commit fixers report in the zoo's tree."""
    for name in checks.SETTINGS_FILES:
        shutil.copy2(REPO / name, tmp_path / name)
    scripts = tmp_path / "bundle" / "scripts"
    configs = tmp_path / "bundle" / "configs"
    scripts.mkdir(parents=True)
    configs.mkdir()
    (scripts / "__init__.py").write_text('"""Scripts."""\n')
    (scripts / "imports.py").write_text(PLANTED["isort"][0])
    (scripts / "commas.py").write_text(PLANTED["black"][0] + "y = 1   \n\n\n")
    (configs / "settings.json").write_text(json.dumps({"b": 1, "a": [1, 2]}, indent=2))
    before = checks.run_checks(["isort", "black", "pre-commit"], tmp_path)
    assert not any(result.passed for result in before), [result.output for result in before]
    checks.format_in_place(tmp_path)
    after = checks.run_checks(["isort", "black", "pre-commit"], tmp_path)
    assert all(result.passed for result in after), [result.output for result in after]
    assert "from scripts.errors import InputDataError" in (scripts / "imports.py").read_text()
    assert (scripts / "commas.py").read_text() == "x = max(1, 2)\ny = 1\n"
    assert list(json.loads((configs / "settings.json").read_text())) == ["b", "a"], "keys keep their order"


def test_metadata_pins_install_on_the_zoo_ci_python(bundle_root):
    """The zoo CI installs exactly the metadata's pins on Python 3.10.14: each must declare it supports that."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    metadata = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    pins = {"monai": metadata["monai_version"], "torch": metadata["pytorch_version"]}
    pins.update(numpy=metadata["numpy_version"], **metadata["required_packages_version"])
    for name, pinned in pins.items():
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is not installed (install requirements.txt)")
        version = Version(installed.version).base_version
        assert version == pinned, f"{name} {installed.version} is installed, {pinned} pinned: install requirements.txt"
        requires = SpecifierSet(installed.metadata.get("Requires-Python") or "")
        assert requires.contains("3.10.14"), f"{name}=={pinned} requires Python {requires}: not on the zoo's 3.10"


def test_bundle_models_folder_exists_with_its_readme(bundle_root):
    """The bundle layout names models/ (weights); a fresh clone must have it, with a README saying what goes there."""
    readme = bundle_root / "models" / "README.md"
    assert readme.is_file()
    text = readme.read_text()
    for needed in ("model.pt", "train.json", "large_files.yml"):
        assert needed in text


@pytest.mark.slow
def test_zoo_unit_test_runs_train_evaluate_and_inference(checks, tmp_path):
    """zoo/ci/unit_tests/test_petct_lesion_segmentation.py, run from a zoo-like checkout as the zoo's runner does."""
    checks.build_zoo_tree(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "ci/unit_tests/test_petct_lesion_segmentation.py", "-v"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    ran = [line.split(" ")[0] for line in log.splitlines() if line.startswith("test_") and " ... " in line]
    assert ran == ["test_train_config", "test_eval_config", "test_infer_config"], log[-3000:]
    assert "Ran 3 tests" in log and log.rstrip().endswith("OK")
