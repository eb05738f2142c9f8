"""The MONAI model zoo's code checks on this bundle, run the way the zoo's CI runs them.

The zoo checks every bundle under ``models/`` with ``runtests.sh --codeformat`` (isort; black
``--skip-magic-trailing-comma``; flake8 with bugbear, comprehensions, executable and pep8-naming) and with its
pre-commit hooks, on Python 3.10. ``check`` copies the files that git ships from ``bundle/`` and ``zoo/ci/`` into a
temporary tree laid out like the zoo's repository (``models/petct_lesion_segmentation/``, ``ci/unit_tests/``), puts
this repository's tool settings (``pyproject.toml``, ``.flake8``) at its root and runs each tool there as the zoo
does. ``vermin`` checks that nothing in ``bundle/scripts`` or ``zoo/ci`` needs a Python newer than 3.10.
``format`` applies the zoo's fixers to ``bundle/`` and ``zoo/ci/`` in place, then runs every check.

    python zoo/checks.py check [isort black flake8 pre-commit vermin]   (default: all)
    python zoo/checks.py format
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE_NAME = "petct_lesion_segmentation"
# Our folder -> where it sits in the model zoo's repository.
ZOO_PLACES = {"bundle": f"models/{BUNDLE_NAME}", "zoo/ci": "ci"}
SETTINGS_FILES = ("pyproject.toml", ".flake8")
# The zoo never commits weights (its hook refuses files over 1 MB): they are hosted and listed in the bundle's
# large_files.yml. The shipped synthetic-trained weights therefore stay out of the zoo tree.
WEIGHT_SUFFIXES = (".pt", ".pt2", ".ts")
MIN_PYTHON = "3.10"  # the zoo's CI runs Python 3.10.14
TIMEOUT_S = 600


@dataclass(frozen=True)
class Hook:
    """One hook of the zoo's ``.pre-commit-config.yaml`` (pre-commit-hooks v4.6.0)."""

    name: str
    module: str
    tags: frozenset[str] = frozenset()  # identify tags a file must all carry for the hook to see it
    args: tuple[str, ...] = ()
    exclude: str | None = None
    fixer: bool = False  # rewrites files in place (exit status 1 when it changed one)


ZOO_HOOKS = (
    Hook("end-of-file-fixer", "end_of_file_fixer", frozenset({"text"}), fixer=True),
    Hook("trailing-whitespace", "trailing_whitespace_fixer", frozenset({"text"}), exclude=r".*\.(ts|pt)$", fixer=True),
    Hook("check-yaml", "check_yaml", frozenset({"yaml"})),
    Hook("check-docstring-first", "check_docstring_first", frozenset({"python"})),
    Hook("check-executables-have-shebangs", "check_executables_have_shebangs", frozenset({"text", "executable"})),
    Hook("check-toml", "check_toml", frozenset({"toml"})),
    Hook("check-case-conflict", "check_case_conflict"),
    Hook("check-added-large-files", "check_added_large_files", args=("--maxkb=1024",)),
    Hook("detect-private-key", "detect_private_key", frozenset({"text"})),
    Hook("forbid-new-submodules", "forbid_new_submodules"),
    Hook(
        "pretty-format-json",
        "pretty_format_json",
        frozenset({"json"}),
        args=("--autofix", "--no-sort-keys", "--indent=4"),
        fixer=True,
    ),
    Hook("mixed-line-ending", "mixed_line_ending", frozenset({"text"}), fixer=True),
)
HOOKS_EXCLUDE = r".*\.ipynb$"  # the config's top-level exclude


@dataclass
class Result:
    """The outcome of one check: the commands run, their combined output, and whether all passed."""

    name: str
    passed: bool
    output: str


def shipped_files(folder: str, repo: Path = REPO) -> list[str]:
    """Repository-relative paths of the files under ``folder`` that a commit ships.

    That is tracked files, and untracked ones that git does not ignore; outside a git checkout, every file but
    Python caches.
    """
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", folder],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:  # not a git checkout, or not one that holds ``folder``
        files = [
            path.relative_to(repo).as_posix()
            for path in (repo / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    return sorted(name for name in files if (repo / name).is_file())


def build_zoo_tree(root: Path, repo: Path = REPO) -> list[str]:
    """Lay out ``root`` like the model zoo's repository; returns the zoo-relative paths of the copied files."""
    copied = []
    for folder, place in ZOO_PLACES.items():
        for name in shipped_files(folder, repo):
            if name.startswith("bundle/models/") and name.endswith(WEIGHT_SUFFIXES):
                continue
            relative = Path(place) / Path(name).relative_to(folder)
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, root / relative)
            copied.append(relative.as_posix())
    for name in SETTINGS_FILES:
        shutil.copy2(repo / name, root / name)
    return copied


def _to_repo_paths(text: str, root: Path) -> str:
    """Rewrite paths of the temporary zoo tree in tool output as this repository's paths."""
    for folder, place in ZOO_PLACES.items():
        text = text.replace(f"{root}/{place}", folder)
        text = re.sub(rf"(?<![\w./-]){re.escape(place)}/", folder + "/", text)
    return text.replace(str(root), "<zoo>")


def _run(command: Sequence[str], cwd: Path) -> tuple[int, str]:
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    shown = " ".join(command[:3]) + (" ..." if len(command) > 3 else "")
    return result.returncode, f"$ {shown}\n{result.stdout}{result.stderr}"


def _module_main(module: str) -> list[str]:
    """A command that runs ``module.main()`` with the arguments that follow (for tools without ``python -m``)."""
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


def _tool(name: str, arguments: Sequence[str]) -> Callable[[Path, list[str]], Result]:
    def check(root: Path, files: list[str]) -> Result:
        code, output = _run([sys.executable, "-m", name, *arguments, str(root)], cwd=root)
        return Result(name, code == 0, _to_repo_paths(output, root))

    return check


def check_flake8(root: Path, files: list[str]) -> Result:
    """``flake8 $(pwd) --count --statistics``, as ``runtests.sh --codeformat`` runs it."""
    code, output = _run([sys.executable, "-m", "flake8", str(root), "--count", "--statistics"], cwd=root)
    return Result("flake8", code == 0, _to_repo_paths(output, root))


def hook_files(hook: Hook, files: list[str], root: Path) -> list[str]:
    """The files pre-commit would pass to ``hook``: those carrying all its identify tags, less its excludes."""
    from identify.identify import tags_from_path

    chosen = []
    for name in files:
        if re.match(HOOKS_EXCLUDE, name) or (hook.exclude and re.match(hook.exclude, name)):
            continue
        if hook.tags <= tags_from_path(str(root / name)):
            chosen.append(name)
    return chosen


def check_pre_commit(root: Path, files: list[str]) -> Result:
    """Every hook of the zoo's pre-commit config over the files it applies to (fixers run on the copy)."""
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):  # hooks that ask git see the files as added
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    passed, outputs = True, []
    for hook in ZOO_HOOKS:
        chosen = hook_files(hook, files, root)
        if not chosen:
            continue
        code, output = _run([*_module_main(f"pre_commit_hooks.{hook.module}"), *hook.args, *chosen], cwd=root)
        if code != 0:
            passed = False
            verdict = "would rewrite files" if hook.fixer else "failed"
            outputs.append(f"{hook.name} {verdict}:\n{output}")
    return Result("pre-commit", passed, _to_repo_paths("\n".join(outputs), root))


def check_vermin(root: Path, files: list[str]) -> Result:
    """vermin: the Python files of the bundle and of ``ci/`` must need no Python newer than 3.10."""
    arguments = ["--no-config-file", "--no-tips", "--eval-annotations", "--violations", f"-t={MIN_PYTHON}-"]
    sources = [name for name in files if name.endswith(".py")]
    code, output = _run([*_module_main("vermin"), *arguments, *sources], cwd=root)
    return Result("vermin", code == 0, _to_repo_paths(output, root))


CHECKS: dict[str, Callable[[Path, list[str]], Result]] = {
    "isort": _tool("isort", ["--check"]),
    "black": _tool("black", ["--skip-magic-trailing-comma", "--check"]),
    "flake8": check_flake8,
    "pre-commit": check_pre_commit,
    "vermin": check_vermin,
}


def run_checks(names: Sequence[str], repo: Path = REPO) -> list[Result]:
    """Run the named checks, each on a fresh zoo-like copy of ``repo`` (fixers may rewrite their copy)."""
    results = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="model_zoo_") as tmp:
            root = Path(tmp).resolve()
            files = build_zoo_tree(root, repo)
            results.append(CHECKS[name](root, files))
    return results


def format_in_place(repo: Path = REPO) -> None:
    """Apply the zoo's fixers to ``bundle/`` and ``zoo/ci/`` of ``repo``: isort, black, then the pre-commit fixers."""
    folders = [folder for folder in ZOO_PLACES if (repo / folder).is_dir()]
    for command in (
        [sys.executable, "-m", "isort", "-q", *folders],
        [sys.executable, "-m", "black", "--skip-magic-trailing-comma", "-q", *folders],
    ):
        subprocess.run(command, cwd=repo, check=True, timeout=TIMEOUT_S)
    files = [name for folder in folders for name in shipped_files(folder, repo)]
    for hook in ZOO_HOOKS:
        chosen = hook_files(hook, files, repo)
        if hook.fixer and chosen:
            _, output = _run([*_module_main(f"pre_commit_hooks.{hook.module}"), *hook.args, *chosen], cwd=repo)
            print(output.split("\n", 1)[1], end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``check [NAME ...]`` or ``format``; exit status 1 when a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("check", "format"))
    parser.add_argument("names", nargs="*", metavar="NAME", help="checks to run: " + ", ".join(CHECKS))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(CHECKS))
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    if args.action == "format":
        format_in_place()
    failed = 0
    for result in run_checks(args.names or list(CHECKS)):
        print(f"{'passed' if result.passed else 'FAILED'}: {result.name}")
        if not result.passed:
            failed += 1
            print(result.output.rstrip() + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
