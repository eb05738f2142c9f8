"""FastRand3DElasticd: MONAI's elastic deformation, the same when it fires, the input itself when it does not."""

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.networks.layers import GaussianFilter
from monai.transforms import Rand3DElasticd

from scripts.transforms.elastic import FastRand3DElasticd, correlation_matrix, smooth_field

SETTINGS = {
    "keys": ["image", "label"],
    "sigma_range": [5, 8],
    "magnitude_range": [50, 150],
    "mode": ["bilinear", "nearest"],
    "padding_mode": "zeros",
}


def _data(shape=(40, 48, 32), seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn((2, *shape), generator=generator)
    label = (torch.rand((1, *shape), generator=generator) > 0.95).float()
    return {"image": MetaTensor(image), "label": MetaTensor(label)}


@pytest.mark.parametrize("sigma", [5.0, 6.3, 8.0])
def test_the_banded_smoothing_equals_monais_gaussian_filter(sigma):
    field = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (3, 30, 41, 26)).astype(np.float32))
    expected = GaussianFilter(3, sigma, 3.0)(field.unsqueeze(0))[0]
    np.testing.assert_allclose(smooth_field(field, sigma).numpy(), expected.numpy(), rtol=0, atol=1e-6)


def test_the_correlation_matrix_is_zero_padded_correlation():
    kernel = torch.tensor([1.0, 2.0, 3.0])
    x = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    # out[i] = 1 * x[i - 1] + 2 * x[i] + 3 * x[i + 1], with x = 0 outside
    expected = torch.tensor([2 + 30, 1 + 20 + 300, 10 + 200 + 3000, 100 + 2000])
    assert torch.equal(correlation_matrix(kernel, 4) @ x, expected.float())


@pytest.mark.parametrize("seed", [0, 1])
def test_a_fired_deformation_equals_monais_from_the_same_random_state(seed):
    data = _data()
    monai_out = Rand3DElasticd(prob=1.0, **SETTINGS).set_random_state(seed)(dict(data))
    fast_out = FastRand3DElasticd(prob=1.0, **SETTINGS).set_random_state(seed)(dict(data))
    assert not torch.allclose(fast_out["image"], data["image"]), "the deformation must move something"
    np.testing.assert_allclose(fast_out["image"].numpy(), monai_out["image"].numpy(), rtol=0, atol=1e-4)
    mismatched = (fast_out["label"] != monai_out["label"]).float().mean().item()
    assert mismatched <= 1e-4, f"{mismatched:.2e} of the label voxels differ (nearest at a float-rounding tie)"


def test_an_unfired_call_returns_the_input_and_monai_returns_it_up_to_rounding():
    data = _data()
    fast_out = FastRand3DElasticd(prob=0.0, **SETTINGS)(dict(data))
    monai_out = Rand3DElasticd(prob=0.0, **SETTINGS)(dict(data))
    assert torch.equal(fast_out["image"], data["image"]) and torch.equal(fast_out["label"], data["label"])
    assert isinstance(fast_out["image"], MetaTensor) and fast_out["image"].dtype == torch.float32
    np.testing.assert_allclose(monai_out["image"].numpy(), data["image"].numpy(), atol=1e-5)
    assert torch.equal(monai_out["label"], data["label"])


def test_an_unfired_call_to_another_spatial_size_resizes_like_monai():
    data = _data()
    fast_out = FastRand3DElasticd(prob=0.0, spatial_size=(30, 48, 36), **SETTINGS)(dict(data))
    monai_out = Rand3DElasticd(prob=0.0, spatial_size=(30, 48, 36), **SETTINGS)(dict(data))
    assert tuple(fast_out["image"].shape) == (2, 30, 48, 36)
    np.testing.assert_allclose(fast_out["image"].numpy(), monai_out["image"].numpy(), atol=1e-6)
    assert torch.equal(fast_out["label"], monai_out["label"])


def test_it_fires_on_exactly_the_calls_monai_fires_on():
    data = _data(shape=(12, 10, 8))
    fast = FastRand3DElasticd(prob=0.3, **SETTINGS).set_random_state(7)
    monai = Rand3DElasticd(prob=0.3, **SETTINGS).set_random_state(7)
    fired = []
    for _ in range(60):
        fast_out, monai_out = fast(dict(data)), monai(dict(data))
        moved = not torch.equal(fast_out["image"], data["image"])
        assert moved == (not torch.allclose(monai_out["image"], data["image"], atol=1e-5))
        fired.append(moved)
    assert 8 <= sum(fired) <= 30, f"fired {sum(fired)} of 60 times at prob 0.3"
