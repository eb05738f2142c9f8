"""The model card (bundle/docs/README.md) as the model zoo's README template asks for it, and a bundle that stands
alone: every link in its Markdown files points at a file inside bundle/ (or at a web address)."""

import re
from pathlib import Path

import pytest
import yaml

TEMPLATE_SECTIONS = [  # the zoo's docs/readme_template.md, plus the training configuration its bundles carry
    "Authors",
    "Tags",
    "Model Description",
    "Data",
    "Training configuration",
    "Performance",
    "System Configuration",
    "Limitations",
    "Citation",
    "References",
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)|^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def card(bundle_root) -> str:
    return (bundle_root / "docs" / "README.md").read_text()


def _sections(text: str) -> dict[str, str]:
    """Heading text (without '#' and bold markers) -> the body up to the next heading of any level."""
    parts = re.split(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", text), flags=re.MULTILINE)
    return {title.strip("* ").strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("section", TEMPLATE_SECTIONS)
def test_model_card_has_the_zoo_template_section(card, section):
    sections = _sections(card)
    assert section in sections, f"no '## {section}' heading; headings: {list(sections)}"
    assert len(sections[section].split()) >= 5, f"section {section!r} is (nearly) empty"


def test_model_card_states_tensorrt_and_torchscript_support(card):
    limitations = _sections(card)["Limitations"]
    assert re.search(r"TensorRT[^.]*not supported", limitations), "the zoo asks for a TensorRT statement"
    assert re.search(r"TorchScript is not supported", limitations)


def test_model_card_performance_says_what_was_measured_on_what(card):
    performance = _sections(card)["Performance"]
    assert "synthetic" in performance and "autoPET" in performance
    system = _sections(card)["System Configuration"]
    assert re.search(r"\d+(\.\d+)? GiB", system) and re.search(r"\d+(\.\d+)? s\b", system), "measured memory, time"


def test_large_files_example_has_the_format_the_zoo_reads(card):
    blocks = re.findall(r"```yaml\n(.*?)```", card, flags=re.DOTALL)
    assert blocks, "the card shows a large_files.yml"
    entries = yaml.safe_load(blocks[0])["large_files"]
    assert entries and all({"path", "url"} <= set(entry) for entry in entries)
    assert {entry["path"] for entry in entries} == {"models/model.pt"}
    assert all(entry.get("hash_type", "md5") in {"md5", "sha1", "sha256", "sha512"} for entry in entries)


def _links(markdown: Path) -> list[str]:
    text = FENCE.sub("", markdown.read_text())
    return [first or second for first, second in LINK.findall(text)]


def test_every_markdown_link_stays_inside_the_bundle(bundle_root):
    checked = 0
    for markdown in sorted(bundle_root.rglob("*.md")):
        for target in _links(markdown):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):  # a web address, an anchor
                continue
            path = (markdown.parent / target.split("#")[0]).resolve()
            where = f"{markdown.relative_to(bundle_root)} links to {target}"
            assert path.is_relative_to(bundle_root.resolve()), f"{where}, outside the bundle"
            assert path.exists(), f"{where}, which does not exist"
            checked += 1
    assert checked >= 3, "the card links to the bundle's own files (data licence, configs, models/)"


def test_link_check_catches_a_link_out_of_the_bundle(tmp_path):
    page = tmp_path / "README.md"
    page.write_text("See [metrics](../../docs/metrics.md), ![img](fig.png), [web](https://x.org).\n\n[ref]: ../a.md\n")
    assert _links(page) == ["../../docs/metrics.md", "fig.png", "https://x.org", "../a.md"]
