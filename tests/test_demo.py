# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""The demo end to end at its smallest: every stage runs, and the summary holds the commands and the numbers."""

import json

import pytest

from scripts import demo
from scripts.demo_weights import DEMO_CONFIG


@pytest.mark.slow
def test_demo_runs_every_stage_and_writes_its_summary(tmp_path):
    work = tmp_path / "demo_work"
    model = demo.SHIPPED_MODEL
    if not model.is_file():
        pytest.skip(f"{model} is not in this checkout")
    demo.main(["--work", str(work), "--train-studies", "6", "--test-studies", "3", "--train-epochs", "1"])
    summary = json.loads((work / "demo_summary.json").read_text())
    runs = [c for c in summary["commands"] if "monai.bundle run" in c]
    assert len(runs) == 3 and sum("demo.json" in c for c in runs) == 3  # shipped eval, training, scratch eval
    assert summary["test_studies"] == {"studies": 3, "positive": 2}
    assert summary["checkpoints"]["shipped model (synthetic-trained)"] == str(model)
    iterations = json.loads(DEMO_CONFIG.read_text())["iterations_per_epoch"]
    results = summary["results"]
    assert set(results) == {
        "shipped model (synthetic-trained)",
        f"trained here ({iterations} iterations)",
        "SUV >= 4 threshold",
    }
    for name, numbers in results.items():
        assert 0.0 <= numbers["dice"] <= 1.0 and numbers["fpv_ml"] >= 0.0, name
        hits = numbers["detection"]["lesions_hit"]
        assert hits["all"]["lesions"] == sum(hits[b]["lesions"] for b in ("<1 ml", "1-10 ml", ">10 ml")) > 0
    assert summary["curves"]["trained_here"]["loss"] and summary["curves"]["trained_here"]["validation"]
    assert len(list((work / "eval_shipped" / "figures").glob("*.png"))) == 3
