"""Deployment export: the torch.export program of every variant reproduces the eager network."""

import pytest
import torch

from scripts.inference.export import export_network, main
from scripts.networks import BiXLSTMResUNet

SMALL = {"features": [8, 16, 32, 64], "strides": [1, 2, 2, 2]}


@pytest.mark.parametrize("variant", ["bot", "enc", "none"])
def test_exported_program_matches_eager(variant, tmp_path):
    torch.manual_seed(0)
    network = BiXLSTMResUNet(xlstm=variant, **SMALL).eval()
    path = export_network(network, (32, 32, 32), tmp_path / f"{variant}.pt2")
    program = torch.export.load(str(path))
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), network(x), atol=1e-5, rtol=1e-5)


def test_cli_exports_a_checkpoint_from_the_bundle_config(bundle_root, tmp_path, monkeypatch):
    torch.manual_seed(0)
    network = BiXLSTMResUNet(**SMALL)
    torch.save({"model": network.state_dict()}, tmp_path / "model.pt")
    monkeypatch.chdir(bundle_root)
    overrides = ["--set", "features=[8,16,32,64]", "--set", "strides=[1,2,2,2]", "--set", "roi_size=[32,32,32]"]
    assert main(["--checkpoint", str(tmp_path / "model.pt"), "--out", str(tmp_path / "m.pt2"), *overrides]) == 0
    program = torch.export.load(str(tmp_path / "m.pt2"))
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), network.eval()(x), atol=1e-5, rtol=1e-5)
