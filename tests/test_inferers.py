# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Known-answer tests of the flip-TTA sliding-window inferer and of fold ensembles (tiny volumes, CPU)."""

import itertools

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.inferers import Inferer, sliding_window_inference
from torch import nn

from scripts.errors import InputDataError
from scripts.inference.checkpoints import read_state_dict
from scripts.inference.ensemble import FoldEnsemble, first_output, load_fold_ensemble
from scripts.inference.inferers import (
    FlipTTASlidingWindowInferer,
    flip_subsets,
    flip_tta_sliding_window_inference,
    predict_window,
    stitch_device,
)

ALL_FLIPS = [flip for count in range(4) for flip in itertools.combinations((0, 1, 2), count)]


class CountingConv(nn.Module):
    """A 2-channel -> 2-class conv that counts its forward calls; ``deep_supervision`` returns a list."""

    def __init__(self, kernel_size: int = 3, seed: int = 0, deep_supervision: bool = False) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv3d(2, 2, kernel_size, padding=kernel_size // 2)
        self.deep_supervision = deep_supervision
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.conv(x)
        return [out, out[:, :, ::2, ::2, ::2]] if self.deep_supervision else out


def symmetric_conv(seed: int = 0) -> CountingConv:
    """A 3x3x3 conv whose kernels are mirror-symmetric along every axis, hence flip-equivariant."""
    net = CountingConv(seed=seed)
    with torch.no_grad():
        weight = net.conv.weight
        weight.copy_(sum(torch.flip(weight, [axis + 2 for axis in flip]) for flip in ALL_FLIPS) / len(ALL_FLIPS))
    return net


def volume(shape=(10, 9, 8), seed: int = 1) -> torch.Tensor:
    return torch.randn((1, 2, *shape), generator=torch.Generator().manual_seed(seed))


def brute_force_tta(net: nn.Module, x: torch.Tensor, flips) -> torch.Tensor:
    """Mean over flips of softmax(flip(net(flip(x)))) on the whole volume."""
    with torch.no_grad():
        probs = [
            torch.softmax(torch.flip(first_output(net(torch.flip(x, [a + 2 for a in f]))), [a + 2 for a in f]), 1)
            for f in flips
        ]
    return torch.stack(probs).mean(0)


# --- flip subsets ---------------------------------------------------------------------------------------

FLIP_SUBSET_CASES = [
    ((0, 1, 2), 8),  # default: all 8 combinations
    ([0], 2),  # one axis
    ([1, 2], 4),  # two axes
    ([], 1),  # no TTA
    (None, 1),  # no TTA
]


@pytest.mark.parametrize("flip_axes, passes", FLIP_SUBSET_CASES)
def test_flip_subsets_count_and_start_with_plain_pass(flip_axes, passes):
    subsets = flip_subsets(flip_axes)
    assert len(subsets) == passes == len(set(subsets))
    assert subsets[0] == ()


def test_flip_subsets_of_two_axes_are_exact():
    assert flip_subsets([0, 2]) == [(), (0,), (2,), (0, 2)]


# --- known answers ---------------------------------------------------------------------------------------


def test_tta_of_flip_equivariant_net_equals_plain_prediction():
    net, x = symmetric_conv(), volume((12, 10, 9))
    roi = (8, 8, 8)
    tta = flip_tta_sliding_window_inference(x, net, roi_size=roi, overlap=0.5, flip_axes=(0, 1, 2))
    plain = sliding_window_inference(
        x, roi, 1, lambda w: torch.softmax(net(w), 1), overlap=0.5, mode="gaussian", sigma_scale=0.125
    )
    torch.testing.assert_close(tta, plain, atol=1e-5, rtol=1e-5)


def test_tta_of_1x1x1_conv_equals_plain_softmax():
    net, x = CountingConv(kernel_size=1), volume()
    tta = flip_tta_sliding_window_inference(x, net, roi_size=(6, 6, 6), flip_axes=(0, 1, 2))
    with torch.no_grad():
        expected = torch.softmax(net(x), 1)
    torch.testing.assert_close(tta, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("flip_axes", [(0, 1, 2), [0], [1, 2]])
def test_tta_of_non_equivariant_net_equals_brute_force_mean(flip_axes):
    net, x = CountingConv(seed=3), volume()
    tta = flip_tta_sliding_window_inference(x, net, roi_size=x.shape[2:], flip_axes=flip_axes)
    expected = brute_force_tta(net, x, flip_subsets(flip_axes))
    torch.testing.assert_close(tta, expected, atol=1e-5, rtol=1e-5)
    plain = brute_force_tta(net, x, [()])
    assert (tta - plain).abs().max() > 1e-3  # the net is not equivariant, so TTA changes the answer


def test_deep_supervision_output_uses_first_element():
    net, x = CountingConv(seed=3, deep_supervision=True), volume()
    tta = flip_tta_sliding_window_inference(x, net, roi_size=x.shape[2:], flip_axes=[0])
    torch.testing.assert_close(tta, brute_force_tta(net, x, [(), (0,)]), atol=1e-5, rtol=1e-5)


FORWARD_CALL_CASES = [
    # image shape, roi, sw_batch_size, flip_axes, members, expected calls
    ((12, 10, 8), (8, 8, 8), 1, (0, 1, 2), 1, 2 * 2 * 1 * 8),  # 4 windows x 8 flips
    ((12, 10, 8), (8, 8, 8), 1, (0, 1, 2), 2, 4 * 8 * 2),  # x 2 fold members
    ((12, 10, 8), (8, 8, 8), 1, [0], 1, 4 * 2),  # 1 axis: 2 passes
    ((12, 10, 8), (8, 8, 8), 1, [1, 2], 1, 4 * 4),  # 2 axes: 4 passes
    ((12, 10, 8), (8, 8, 8), 3, [1, 2], 1, 2 * 4),  # 3 windows per call: ceil(4 / 3) = 2 calls per pass
    ((12, 10, 8), (8, 8, 8), 1, None, 3, 4 * 1 * 3),  # no TTA, 3 members
    ((6, 5, 4), (8, 8, 8), 1, (0, 1, 2), 1, 1 * 8),  # roi larger than the image: 1 padded window
]


@pytest.mark.parametrize("shape, roi, sw_batch_size, flip_axes, n_members, expected", FORWARD_CALL_CASES)
def test_forward_calls_are_windows_times_flips_times_members(shape, roi, sw_batch_size, flip_axes, n_members, expected):
    members = [CountingConv(seed=seed) for seed in range(n_members)]
    network = FoldEnsemble(members) if n_members > 1 else members[0]
    flip_tta_sliding_window_inference(
        volume(shape), network, roi_size=roi, sw_batch_size=sw_batch_size, overlap=0.5, flip_axes=flip_axes
    )
    assert [member.calls for member in members] == [expected // n_members] * n_members


def test_ensemble_of_two_nets_is_mean_of_their_probabilities():
    nets, x = [CountingConv(seed=1), CountingConv(seed=2)], volume((12, 10, 9))
    settings = {"roi_size": (8, 8, 8), "overlap": 0.5, "flip_axes": [2]}
    ensemble = flip_tta_sliding_window_inference(x, FoldEnsemble(nets), **settings)
    singles = [flip_tta_sliding_window_inference(x, net, **settings) for net in nets]
    torch.testing.assert_close(ensemble, (singles[0] + singles[1]) / 2, atol=1e-5, rtol=1e-5)


def test_fold_ensemble_forward_is_mean_of_member_probabilities():
    nets, x = [CountingConv(seed=1), CountingConv(seed=2)], volume()
    with torch.no_grad():
        expected = (torch.softmax(nets[0](x), 1) + torch.softmax(nets[1](x), 1)) / 2
        torch.testing.assert_close(FoldEnsemble(nets)(x), expected)
        torch.testing.assert_close(FoldEnsemble(nets, softmax=False)(x), (nets[0](x) + nets[1](x)) / 2)


def test_output_probabilities_sum_to_one():
    net, x = CountingConv(seed=4), volume((13, 11, 7))
    probs = flip_tta_sliding_window_inference(x, FoldEnsemble([net, CountingConv(seed=5)]), roi_size=(8, 8, 8))
    assert probs.min() >= 0
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 13, 11, 7))


def test_softmax_false_averages_raw_outputs():
    net, x = CountingConv(kernel_size=1), volume()
    raw = flip_tta_sliding_window_inference(x, net, roi_size=x.shape[2:], flip_axes=(0, 1, 2), softmax=False)
    with torch.no_grad():
        torch.testing.assert_close(raw, net(x), atol=1e-5, rtol=1e-5)


def test_predict_window_is_mean_over_members_and_flips():
    nets, window = [CountingConv(seed=1), CountingConv(seed=2)], volume((6, 6, 6))
    flips = flip_subsets([0, 1])
    with torch.no_grad():
        mean = predict_window(window, nets, flips)
    expected = (brute_force_tta(nets[0], window, flips) + brute_force_tta(nets[1], window, flips)) / 2
    torch.testing.assert_close(mean, expected, atol=1e-6, rtol=1e-6)
    assert mean.dtype == torch.float32


def test_metatensor_keeps_shape_and_affine_when_roi_does_not_divide_the_size():
    affine = torch.tensor([[0.0, -2.0, 0, 10], [1.5, 0, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]], dtype=torch.float64)
    x = MetaTensor(volume((11, 9, 6)), affine=affine, meta={"filename_or_obj": "case_0001.nii.gz"})
    inferer = FlipTTASlidingWindowInferer(roi_size=(8, 8, 8), flip_axes=[0, 2])
    out = inferer(x, CountingConv())
    assert isinstance(out, MetaTensor)
    assert out.shape == (1, 2, 11, 9, 6)
    np.testing.assert_allclose(out.affine.numpy(), affine.numpy())
    assert out.meta["filename_or_obj"] == "case_0001.nii.gz"


def test_cpu_stitching_gives_the_same_output():
    net, x = CountingConv(), volume((12, 10, 9))
    default = flip_tta_sliding_window_inference(x, net, roi_size=(8, 8, 8), flip_axes=[0])
    on_cpu = flip_tta_sliding_window_inference(x, net, roi_size=(8, 8, 8), flip_axes=[0], device="cpu", sw_device="cpu")
    by_thresh = FlipTTASlidingWindowInferer(roi_size=(8, 8, 8), flip_axes=[0], cpu_thresh=100)(x, net)
    assert on_cpu.device.type == by_thresh.device.type == "cpu"
    torch.testing.assert_close(on_cpu, default)
    torch.testing.assert_close(by_thresh, default)


STITCH_DEVICE_CASES = [
    # device, cpu_thresh, expected for a 10 x 9 x 8 = 720-voxel volume
    (None, None, None),  # default: the input's device
    (None, 719, "cpu"),  # above the threshold: stitch on the CPU
    (None, 720, None),  # at the threshold: unchanged
    ("cuda", 10, "cuda"),  # an explicit device wins
]


@pytest.mark.parametrize("device, cpu_thresh, expected", STITCH_DEVICE_CASES)
def test_stitch_device_switches_to_cpu_above_threshold(device, cpu_thresh, expected):
    assert stitch_device(volume(), device, cpu_thresh) == expected


def test_class_and_function_agree_and_pass_network_arguments():
    class ScaledNet(CountingConv):
        def forward(self, x, scale=1.0):
            return super().forward(x) * scale

    net, x = ScaledNet(seed=6), volume()
    inferer = FlipTTASlidingWindowInferer(roi_size=6, overlap=0.25, flip_axes=[1], mode="constant")
    assert isinstance(inferer, Inferer) and inferer.passes_per_window == 2
    from_class = inferer(x, net, scale=3.0)
    from_function = flip_tta_sliding_window_inference(
        x, net, roi_size=6, overlap=0.25, flip_axes=[1], mode="constant", network_kwargs={"scale": 3.0}
    )
    torch.testing.assert_close(from_class, from_function)
    assert not torch.allclose(from_class, inferer(x, net))


def test_runs_without_gradients_even_when_grad_is_enabled():
    with torch.enable_grad():
        out = FlipTTASlidingWindowInferer(roi_size=8, flip_axes=[0])(volume(), CountingConv())
    assert not out.requires_grad


def test_built_from_a_bundle_config():
    parser = ConfigParser(
        {
            "roi_size": [8, 8, 8],
            "inferer": {
                "_target_": "scripts.inference.inferers.FlipTTASlidingWindowInferer",
                "roi_size": "@roi_size",
                "flip_axes": [0, 1],
                "amp_dtype": "bfloat16",
                "device": "cpu",
            },
        }
    )
    inferer = parser.get_parsed_content("inferer")
    assert inferer.flip_axes == (0, 1) and inferer.amp_dtype == torch.bfloat16 and inferer.overlap == 0.5


# --- validation -----------------------------------------------------------------------------------------

BAD_SETTINGS = [
    ({"flip_axes": [0, 3]}, "spatial axes 0, 1 and 2"),  # axis out of range
    ({"flip_axes": [-1]}, "spatial axes 0, 1 and 2"),  # negative axis
    ({"flip_axes": [1, 1]}, "lists an axis twice"),  # duplicate
    ({"flip_axes": 2}, "must be a list"),  # scalar
    ({"roi_size": (8, 8)}, "3 values"),  # wrong length
    ({"roi_size": (8, 0, 8)}, "positive integers"),  # zero size
    ({"overlap": 1.0}, ">= 0 and < 1"),  # no progress between windows
    ({"sw_batch_size": 0}, "positive integer"),
    ({"mode": "mean"}, "mode must be one of"),
    ({"padding_mode": "zeros"}, "padding_mode must be one of"),
    ({"amp_dtype": "float32"}, "amp_dtype must be one of"),
    ({"cpu_thresh": -5}, "cpu_thresh"),
]


@pytest.mark.parametrize("override, message", BAD_SETTINGS)
def test_bad_settings_raise_value_error_saying_what_to_change(override, message):
    settings = {"roi_size": (8, 8, 8)} | override
    with pytest.raises(ValueError, match=message):
        FlipTTASlidingWindowInferer(**settings)
    with pytest.raises(ValueError, match=message):
        flip_tta_sliding_window_inference(volume(), CountingConv(), **settings)


def test_input_without_batch_axis_is_rejected():
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        flip_tta_sliding_window_inference(volume()[0], CountingConv(), roi_size=8)


def test_softmax_on_single_channel_output_is_rejected():
    net = nn.Conv3d(2, 1, 1)
    with pytest.raises(ValueError, match="softmax=False"):
        flip_tta_sliding_window_inference(volume(), net, roi_size=8, flip_axes=None)


# --- checkpoints ----------------------------------------------------------------------------------------


def save_checkpoints(tmp_path, nets):
    """One checkpoint per net, in the three accepted layouts in turn."""
    layouts = [
        lambda sd: sd,  # flat state dict
        lambda sd: {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}, "epoch": 3},
        lambda sd: {"network": sd},
    ]
    paths = []
    for index, net in enumerate(nets):
        path = tmp_path / f"fold{index}.pt"
        torch.save(layouts[index % len(layouts)](net.state_dict()), path)
        paths.append(str(path))
    return paths


def test_load_fold_ensemble_from_all_checkpoint_layouts(tmp_path):
    trained = [CountingConv(seed=seed) for seed in (11, 12, 13)]
    template = CountingConv(seed=0)
    template_weight = template.conv.weight.detach().clone()
    ensemble = load_fold_ensemble(template, save_checkpoints(tmp_path, trained))
    assert isinstance(ensemble, FoldEnsemble) and len(ensemble) == 3 and not ensemble.training
    for member, net in zip(ensemble.members, trained, strict=True):
        assert not member.training and member is not template
        torch.testing.assert_close(member.state_dict(), net.state_dict())
    torch.testing.assert_close(template.conv.weight, template_weight)  # the template is untouched


def test_load_fold_ensemble_from_a_single_path_and_ddp_prefix(tmp_path):
    net = CountingConv(seed=21)
    path = tmp_path / "ddp.pt"
    torch.save({"model": {f"module.{key}": value for key, value in net.state_dict().items()}}, path)
    ensemble = load_fold_ensemble(CountingConv(), str(path))
    assert len(ensemble) == 1
    torch.testing.assert_close(ensemble.members[0].state_dict(), net.state_dict())


def test_loaded_ensemble_runs_in_the_inferer_like_its_members(tmp_path):
    trained = [CountingConv(seed=31), CountingConv(seed=32)]
    ensemble = load_fold_ensemble(CountingConv(), save_checkpoints(tmp_path, trained))
    x, inferer = volume(), FlipTTASlidingWindowInferer(roi_size=8, flip_axes=[0])
    torch.testing.assert_close(inferer(x, ensemble), (inferer(x, trained[0]) + inferer(x, trained[1])) / 2)


def test_load_fold_ensemble_from_a_bundle_config(tmp_path):
    trained = nn.Conv3d(2, 2, 3)
    torch.save({"model": trained.state_dict()}, tmp_path / "model.pt")
    config = {
        "ckpt_dir": str(tmp_path),
        "network_def": {"_target_": "torch.nn.Conv3d", "in_channels": 2, "out_channels": 2, "kernel_size": 3},
        "network": {
            "_target_": "scripts.inference.ensemble.load_fold_ensemble",
            "network": "@network_def",
            "checkpoints": ["$@ckpt_dir + '/model.pt'"],
        },
    }
    ensemble = ConfigParser(config).get_parsed_content("network")
    assert len(ensemble) == 1
    torch.testing.assert_close(ensemble.members[0].state_dict(), trained.state_dict())


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = tmp_path / "fold7.pt"
    with pytest.raises(InputDataError, match=r"fold7\.pt: checkpoint file not found"):
        load_fold_ensemble(CountingConv(), [missing])


def test_mismatched_checkpoint_names_the_file_and_keys(tmp_path):
    path = tmp_path / "other_net.pt"
    torch.save({"model": nn.Sequential(nn.Conv3d(2, 2, 1)).state_dict()}, path)
    with pytest.raises(InputDataError, match=r"other_net\.pt: checkpoint does not match.*missing key.*'conv\.weight'"):
        load_fold_ensemble(CountingConv(), [path])
    torch.save({"conv.weight": torch.zeros(2, 2, 1, 1, 1), "conv.bias": torch.zeros(2)}, path)
    with pytest.raises(InputDataError, match=r"other_net\.pt: .*shape mismatch.*'conv\.weight' is \(2, 2, 1, 1, 1\)"):
        load_fold_ensemble(CountingConv(), [path])


def test_unreadable_or_empty_checkpoints_are_rejected(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(InputDataError, match=r"garbage\.pt: not a PyTorch checkpoint"):
        read_state_dict(garbage)
    no_weights = tmp_path / "no_weights.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, no_weights)
    with pytest.raises(InputDataError, match=r"no_weights\.pt: no network state dict found"):
        read_state_dict(no_weights)
    with pytest.raises(ValueError, match="checkpoints is empty"):
        load_fold_ensemble(CountingConv(), [])


def test_first_output_rejects_dicts():
    with pytest.raises(TypeError, match="got dict"):
        first_output({"pred": torch.zeros(1)})
