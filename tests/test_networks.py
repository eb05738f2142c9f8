# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the BiXLSTM-ResNet UNet: shapes, gradients, bidirectionality, chunkwise == parallel, configs."""

import math

import pytest
import torch
from monai.bundle import ConfigParser
from monai.losses import DeepSupervisionLoss, DiceCELoss
from xlstm.blocks.mlstm.backends import parallel_stabilized_simple

from scripts.networks import (
    BiXLSTM3d,
    BiXLSTMResUNet,
    DirectionalMLSTMBlock,
    MLSTMSequenceKernel,
    TokenOrder,
    XLSTMPlacement,
    chunkwise_mlstm,
)

TINY = {"features": (8, 16, 32, 64), "strides": (1, 2, 2, 2), "blocks_per_stage": 1, "decoder_blocks_per_stage": 1}
# stage 2 of the 32x48x64 input has 8*12*16 = 1536 tokens: above this threshold, so `enc` runs the chunkwise form
TINY_XLSTM = {"xlstm_parallel_max_tokens": 256, "xlstm_chunk_size": 64}


def tiny_net(xlstm: str = "bot", **overrides) -> BiXLSTMResUNet:
    torch.manual_seed(0)
    return BiXLSTMResUNet(**{**TINY, **TINY_XLSTM, "xlstm": xlstm, **overrides})


def changed_at(reference: torch.Tensor, other: torch.Tensor) -> float:
    return (reference - other).abs().max().item()


# --- the whole network ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("xlstm", ["bot", "enc", "none"])
@pytest.mark.parametrize("spatial", [(32, 32, 32), (32, 48, 64)])
def test_output_shapes_in_training_and_eval(xlstm, spatial):
    net = tiny_net(xlstm)
    x = torch.randn(2, 2, *spatial)
    with torch.no_grad():
        outputs = net.train()(x)
        assert isinstance(outputs, list)
        # one head per decoder stage, full resolution first, each level halving the size
        expected = [(2, 2, *(size // 2**level for size in spatial)) for level in range(3)]
        assert [tuple(out.shape) for out in outputs] == expected
        single = net.eval()(x)
    assert isinstance(single, torch.Tensor)
    assert single.shape == (2, 2, *spatial)


@pytest.mark.parametrize("xlstm", ["bot", "enc", "none"])
def test_gradients_reach_every_parameter(xlstm):
    net = tiny_net(xlstm).train()
    outputs = net(torch.randn(1, 2, 32, 32, 32))
    sum(out.sum() for out in outputs).backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []
    if xlstm != "none":
        assert any("xlstm_layers" in name for name, _ in net.named_parameters())


def test_without_deep_supervision_training_returns_one_tensor():
    net = tiny_net(deep_supervision=False).train()
    out = net(torch.randn(1, 2, 32, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 32, 32, 32)


def test_deep_supervision_outputs_feed_monai_loss():
    net = tiny_net().train()
    label = (torch.rand(1, 1, 32, 48, 64) > 0.9).float()
    loss_fn = DeepSupervisionLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    loss = loss_fn(net(torch.randn(1, 2, 32, 48, 64)), label)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0


def test_anisotropic_strides_and_nearest_upsampling():
    net = tiny_net(strides=[1, 2, [1, 2, 2], 2], upsample="nearest").eval()
    assert net.total_stride == (4, 8, 8)
    with torch.no_grad():
        assert net(torch.randn(1, 2, 12, 16, 24)).shape == (1, 2, 12, 16, 24)


@pytest.mark.parametrize(
    ("spatial", "message"),
    [
        ((30, 32, 32), r"not divisible by the network's total stride \(8, 8, 8\).*\(32, 32, 32\)"),
        ((32, 36, 32), r"multiple of its stride, e.g. \(32, 40, 32\)"),
        ((8, 8, 8), "single bottleneck voxel"),
    ],
)
def test_invalid_input_size_is_a_value_error(spatial, message):
    with pytest.raises(ValueError, match=message):
        tiny_net().eval()(torch.randn(1, 2, *spatial))


def test_wrong_channel_count_is_a_value_error():
    with pytest.raises(ValueError, match=r"expected input \(B, 2, D, H, W\)"):
        tiny_net()(torch.randn(1, 3, 32, 32, 32))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"blocks_per_stage": [1, 1]}, "blocks_per_stage has 2 entries but needs 4"),
        ({"decoder_blocks_per_stage": [1, 1, 1, 1]}, "decoder_blocks_per_stage has 4 entries but needs 3"),
        ({"strides": [1, 2, 2]}, "strides has 3 entries but needs 4"),
        ({"strides": [2, 2, 2, 2]}, r"strides\[0\] must be 1"),
        ({"kernel_sizes": 4}, "kernel_sizes must be odd"),
        ({"xlstm": "middle"}, "xlstm='middle' is not a placement"),
        ({"norm": "nonesuch"}, "norm='nonesuch' is not a valid MONAI norm spec"),
        ({"act": ["nonesuch", {}]}, "is not a valid MONAI activation spec"),
        ({"upsample": "cubic"}, "upsample='cubic' is not an upsampling mode"),
        ({"xlstm_chunk_size": 0}, "xlstm_chunk_size must be a positive integer"),
        ({"xlstm_heads": 3}, "xlstm_heads=3 .* must divide the mLSTM inner dimension"),
    ],
)
def test_bad_keywords_name_the_parameter(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_net(**overrides)


@pytest.mark.parametrize("member", [*XLSTMPlacement, *TokenOrder])
def test_option_enums_behave_as_their_string_values(member):
    """``str`` enums that read and print as their values, on Python 3.10 too (no ``enum.StrEnum`` there)."""
    assert member == member.value and isinstance(member, str)
    assert str(member) == f"{member}" == member.value
    assert type(member)(member.value) is member


def test_autocast_keeps_xlstm_in_float32_and_returns_autocast_dtype():
    net = tiny_net("enc").eval()
    block_input_dtypes = []
    for module in net.modules():
        if isinstance(module, DirectionalMLSTMBlock):
            module.register_forward_pre_hook(lambda _, args: block_input_dtypes.append(args[0].dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(1, 2, 32, 32, 32))
        layer_out = net.encoder.xlstm_layers["3"](torch.randn(1, 64, 4, 4, 4, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert layer_out.dtype == torch.bfloat16
    assert len(block_input_dtypes) == 6  # two xLSTM layers x two directions, then the direct call's two
    assert set(block_input_dtypes) == {torch.float32}


# --- the bidirectional xLSTM layer ---------------------------------------------------------------------------


def test_bidirectional_layer_sees_both_ways():
    torch.manual_seed(0)
    layer = BiXLSTM3d(8).eval()
    x = torch.randn(1, 8, 2, 3, 4)  # 24 tokens in raster order
    first_changed, last_changed = x.clone(), x.clone()
    # a random change: a constant added to all channels would vanish in the blocks' LayerNorm
    first_changed[0, :, 0, 0, 0] += torch.randn(8)
    last_changed[0, :, -1, -1, -1] += torch.randn(8)
    with torch.no_grad():
        reference, from_first, from_last = layer(x), layer(first_changed), layer(last_changed)
    assert changed_at(reference[..., -1, -1, -1], from_first[..., -1, -1, -1]) > 1e-3
    assert changed_at(reference[..., 0, 0, 0], from_last[..., 0, 0, 0]) > 1e-3


@pytest.mark.parametrize("order", list(TokenOrder))
def test_one_direction_alone_sees_one_way_only(order):
    """The control: a one-direction block is causal, so it fails exactly half of the test above."""
    torch.manual_seed(0)
    block = DirectionalMLSTMBlock(
        dim=8,
        order=order,
        num_heads=4,
        kernel=MLSTMSequenceKernel(),
        conv1d_kernel_size=4,
        qkv_proj_blocksize=4,
        proj_factor=2.0,
        block_index=0,
        num_blocks=1,
    ).eval()
    tokens = torch.randn(1, 24, 8)
    first_changed, last_changed = tokens.clone(), tokens.clone()
    first_changed[:, 0] += torch.randn(8)
    last_changed[:, -1] += torch.randn(8)
    with torch.no_grad():
        reference, from_first, from_last = block(tokens), block(first_changed), block(last_changed)
    first_reaches_last = changed_at(reference[:, -1], from_first[:, -1])
    last_reaches_first = changed_at(reference[:, 0], from_last[:, 0])
    if order is TokenOrder.FIRST_TO_LAST:
        assert first_reaches_last > 1e-3 and last_reaches_first == 0.0
    else:
        assert last_reaches_first > 1e-3 and first_reaches_last == 0.0


def test_pairs_have_children_named_by_direction_and_depth_counts_pairs():
    layer = BiXLSTM3d(8, depth=2)
    assert len(layer.pairs) == 2
    assert [name for name, _ in layer.pairs[0].named_children()] == ["first_to_last", "last_to_first"]
    blocks = [module for module in layer.modules() if isinstance(module, DirectionalMLSTMBlock)]
    assert [block.order for block in blocks] == [TokenOrder.FIRST_TO_LAST, TokenOrder.LAST_TO_FIRST] * 2


@pytest.mark.parametrize(("eps", "tolerance"), [(0.0, 1e-12), (1e-6, 1e-5)])
def test_chunkwise_kernel_equals_parallel_form_with_end_padding(eps, tolerance):
    torch.manual_seed(0)
    batch, heads, tokens, head_dim = 2, 4, 100, 8  # 100 tokens: padded to 128 for chunks of 32
    q, k, v = (torch.randn(batch, heads, tokens, head_dim, dtype=torch.float64) for _ in range(3))
    igate = torch.randn(batch, heads, tokens, 1, dtype=torch.float64)
    fgate = 3.0 + torch.randn(batch, heads, tokens, 1, dtype=torch.float64)
    parallel = parallel_stabilized_simple(q, k, v, igate, fgate, eps=eps)
    chunkwise = chunkwise_mlstm(q, k, v, igate, fgate, chunk_size=32, eps=eps)
    assert chunkwise.shape == parallel.shape
    # exact up to rounding without the normaliser's epsilon, which the two forms apply at different scales
    torch.testing.assert_close(chunkwise, parallel, rtol=tolerance, atol=tolerance)


def test_layer_outputs_and_gradients_match_between_chunkwise_and_parallel():
    torch.manual_seed(0)
    parallel_layer = BiXLSTM3d(16, depth=2, parallel_max_tokens=4096).double()
    chunkwise_layer = BiXLSTM3d(16, depth=2, chunk_size=16, parallel_max_tokens=8).double()
    chunkwise_layer.load_state_dict(parallel_layer.state_dict())  # the two forms share every parameter
    x = torch.randn(2, 16, 3, 5, 7, dtype=torch.float64)  # 105 tokens, not a multiple of the chunk size
    outputs, grads = [], []
    for layer in (parallel_layer, chunkwise_layer):
        inputs = x.clone().requires_grad_()
        out = layer(inputs)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        outputs.append(out)
        grads.append(inputs.grad)
    # the layer keeps xlstm's epsilon 1e-6 in the normaliser (see chunkwise_mlstm), hence 1e-5
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_layer_runs_a_long_sequence_beyond_any_fixed_context():
    torch.manual_seed(0)
    layer = BiXLSTM3d(8, parallel_max_tokens=512, chunk_size=64).eval()
    with torch.no_grad():
        out = layer(torch.randn(1, 8, 12, 13, 14))  # 2184 tokens, not a multiple of 64
    assert out.shape == (1, 8, 12, 13, 14) and torch.isfinite(out).all()


# --- weights: init, encoder transfer, configs ----------------------------------------------------------------


def test_reset_parameters_uses_he_init_and_xlstm_init():
    net = tiny_net()
    torch.manual_seed(1)
    net.reset_parameters()
    conv = net.decoder.stages[0][0].conv1.conv  # 16 -> 8 channels, 3x3x3
    fan_in = conv.in_channels * 27
    he_std = math.sqrt(2.0 / (1 + 0.01**2) / fan_in)
    assert conv.weight.std().item() == pytest.approx(he_std, rel=0.15)
    cell = net.encoder.xlstm_layers["3"].pairs[0].first_to_last.block.xlstm.mlstm_cell
    torch.testing.assert_close(cell.fgate.bias.detach(), torch.linspace(3.0, 6.0, 4))  # xlstm's forget-gate init
    assert (cell.igate.weight == 0).all()


def test_encoder_prefix_resolves_to_encoder_weights_including_xlstm():
    net = tiny_net("enc")
    assert net.get_submodule(net.encoder_prefix.rstrip(".")) is net.encoder
    encoder_weights = net.encoder_state_dict()
    assert set(encoder_weights) == {net.encoder_prefix + key for key in net.encoder.state_dict()}
    assert any(".xlstm_layers.2.pairs.0.last_to_first." in key for key in encoder_weights)
    assert any(".xlstm_layers.3." in key for key in encoder_weights)

    torch.manual_seed(5)
    fresh = BiXLSTMResUNet(**{**TINY, **TINY_XLSTM, "xlstm": "enc"})
    decoder_before = {key: value.clone() for key, value in fresh.decoder.state_dict().items()}
    result = fresh.load_state_dict(encoder_weights, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == {"decoder." + key for key in fresh.decoder.state_dict()}
    for key, value in fresh.encoder_state_dict().items():
        torch.testing.assert_close(value, encoder_weights[key])
    for key, value in fresh.decoder.state_dict().items():
        torch.testing.assert_close(value, decoder_before[key])


def test_builds_from_a_json_config():
    config = {
        "network_def": {
            "_target_": "scripts.networks.BiXLSTMResUNet",
            "in_channels": 2,
            "out_channels": 2,
            "features": [8, 16, 32, 64],
            "strides": [1, 2, 2, [1, 2, 2]],
            "blocks_per_stage": [1, 1, 1, 1],
            "decoder_blocks_per_stage": 1,
            "norm": ["instance", {"affine": True}],
            "act": ["leakyrelu", {"negative_slope": 0.01, "inplace": True}],
            "xlstm": "bot",
            "deep_supervision": True,
        }
    }
    net = ConfigParser(config).get_parsed_content("network_def")
    assert isinstance(net, BiXLSTMResUNet)
    assert "3" in net.encoder.xlstm_layers and net.total_stride == (4, 8, 8)


# exact parameter counts at the paper defaults (features 32..320, 6 stages, one bidirectional pair per layer)
PAPER_PARAMETER_COUNTS = {"bot": 44_232_538, "enc": 46_348_602, "none": 42_947_722}


@pytest.mark.parametrize("xlstm", ["bot", "enc", "none"])
def test_paper_default_configuration_builds(xlstm):
    net = BiXLSTMResUNet(xlstm=xlstm)
    count = sum(p.numel() for p in net.parameters())
    print(f"BiXLSTMResUNet(xlstm={xlstm!r}) at paper defaults: {count:,} parameters")
    assert count == PAPER_PARAMETER_COUNTS[xlstm]
    assert net.total_stride == (32, 32, 32)
    assert net.encoder.xlstm_stages == {"bot": (5,), "enc": (3, 4, 5), "none": ()}[xlstm]
    net.check_input_shape((2, 2, 128, 192, 160))  # the paper's patch is valid


@pytest.mark.parametrize("parallel_max_tokens", [4096, 8])  # the parallel and the chunkwise form
def test_closed_input_gates_give_finite_gradients(parallel_max_tokens):
    """Input-gate pre-activations below about -88 overflowed exp(-max_log_D) in the stabiliser to inf, and the
    backward pass turned that into NaN gradients (seen as a NaN gradient norm after ~200 AdamW 2e-2 iterations)."""
    torch.manual_seed(0)
    kernel = MLSTMSequenceKernel(chunk_size=16, parallel_max_tokens=parallel_max_tokens)
    q, k, v = (torch.randn(1, 2, 40, 8, requires_grad=True) for _ in range(3))
    igate = torch.full((1, 2, 40, 1), -120.0).requires_grad_()
    igate.data[:, :, 20:] = torch.randn(1, 2, 20, 1)  # closed for the first half: rows with no open gate at all
    fgate = (3.0 + torch.randn(1, 2, 40, 1)).requires_grad_()
    out = kernel(q, k, v, igate, fgate)
    out.sum().backward()
    assert torch.isfinite(out).all()
    for tensor in (q, k, v, igate, fgate):
        assert torch.isfinite(tensor.grad).all()
    open_gates = torch.randn(1, 2, 40, 1)
    torch.testing.assert_close(
        kernel(q, k, v, open_gates, fgate), parallel_stabilized_simple(q, k, v, open_gates, fgate)
    )
