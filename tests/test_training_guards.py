"""Training cannot fail silently: non-finite guard, gradient clipping, warm-up, NaN predictions, curves, report.

The training tests run configs/train.json through MONAI's ConfigWorkflow on tiny synthetic PET/CT (CPU), and
break the run the way a diverging training breaks: the network's weights turn NaN after an optimizer step.
"""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from tiny_overrides import TINY_NETWORK

from scripts.errors import InputDataError
from scripts.training.gradient_clipping import ClipGradientNorm
from scripts.training.non_finite import NonFiniteTrainingError

TINY = {**TINY_NETWORK, "val_interval": 1}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    return make_tiny_dataset("guards", n=5, seed=4)


@pytest.fixture(autouse=True)
def _foreign_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _workflow(bundle_root, root, dataset, configs=("train.json",), **override):
    workflow = ConfigWorkflow(
        workflow_type="train",
        config_file=[str(bundle_root / "configs" / name) for name in configs],
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        **{**TINY, "bundle_root": str(root), "dataset_dir": str(dataset), **override},
    )
    workflow.initialize()
    return workflow


def _root_cause(error, kind):
    while error is not None and not isinstance(error, kind):
        error = error.__cause__ or error.__context__
    return error


def _poison_weights_after(trainer, iteration):
    """Turn every weight NaN right after the optimizer step of ``iteration``: a diverged update."""

    def poison(engine):
        with torch.no_grad():
            for parameter in engine.network.parameters():
                parameter.fill_(float("nan"))

    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=iteration), poison)


# --- non-finite loss / weights ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "poisoned_at, caught_by, position",
    [
        (3, "the loss is nan", "epoch 2, iteration 2 of 2 (4 overall)"),  # mid-epoch: the next loss is NaN
        (4, "weight tensor(s) of the network are NaN/Inf", "epoch 2, iteration 2 of 2 (4 overall)"),  # epoch end
    ],
)
def test_non_finite_training_stops_and_keeps_the_previous_checkpoint(
    poisoned_at, caught_by, position, dataset, bundle_root, tmp_path
):
    workflow = _workflow(bundle_root, tmp_path, dataset, max_epochs=3, iterations_per_epoch=2)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    _poison_weights_after(trainer, poisoned_at)
    with pytest.raises(Exception) as raised:
        workflow.run()
    error = _root_cause(raised.value, NonFiniteTrainingError)
    assert error is not None, f"expected a NonFiniteTrainingError, got {raised.value!r}"
    assert caught_by in str(error) and position in str(error), str(error)
    assert trainer.state.iteration == 4 and trainer.state.epoch == 2

    ckpt_dir = tmp_path / "models" / "fold0"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last_checkpoint_epoch=1.pt", "model.pt"]
    last = torch.load(ckpt_dir / "last_checkpoint_epoch=1.pt", weights_only=False)
    assert last["trainer"]["iteration"] == 2, "the checkpoint of epoch 1 is the one written at epoch 1"
    network = workflow.parser.get_parsed_content("network_def")
    for state in (last["model"], torch.load(ckpt_dir / "model.pt", weights_only=True)):
        assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
        network.load_state_dict(state, strict=True)  # loadable into the network, every key present
    curves = json.loads((tmp_path / "runs" / "fold0" / "training_curves.json").read_text())
    assert [epoch for epoch, _ in curves["loss"]] == [1], "the failed epoch leaves no point on the curves"


def test_a_non_finite_gradient_stops_before_the_optimizer_step():
    """Without AMP an infinite gradient norm would make every weight NaN: the step is refused instead."""
    network = torch.nn.Conv3d(1, 1, 1)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    data = [{"image": torch.full((1, 1, 2, 2, 2), 1e30), "label": torch.zeros(1, 1, 2, 2, 2)}]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1),
        loss_function=lambda pred, label: (pred * 1e30).sum(),  # finite input, finite weights, overflowing grads
        train_handlers=[ClipGradientNorm(12.0)],
    )
    with pytest.raises(NonFiniteTrainingError, match=r"gradient norm is (inf|nan) at epoch 1, iteration 1 of 1"):
        trainer.run()
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, before[key])


# --- gradient clipping -------------------------------------------------------------------------------------


def _clipped_step_norm(amp: bool, max_norm: float | None) -> tuple[float, float]:
    """(weight change of one SGD step with lr 1, gradient norm before clipping) through the real trainer."""
    torch.manual_seed(0)
    network = torch.nn.Conv3d(2, 2, 3, padding=1)
    data = [{"image": 50 * torch.randn(2, 2, 8, 8, 8), "label": torch.randn(2, 2, 8, 8, 8)}]
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=1.0),
        loss_function=torch.nn.MSELoss(),
        amp=amp,
        train_handlers=[ClipGradientNorm(max_norm)],
    )
    if amp:  # no CUDA here: give the trainer's AMP branch a working (CPU) GradScaler with a large scale
        trainer.add_event_handler(
            Events.STARTED, lambda e: setattr(e, "scaler", torch.amp.GradScaler("cpu", init_scale=2.0**12))
        )
    before = torch.cat([p.detach().flatten().clone() for p in network.parameters()])
    unclipped = []
    trainer.add_event_handler(
        IterationEvents.BACKWARD_COMPLETED, lambda e: unclipped.append(float(e.state.output.get("grad_norm", "nan")))
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*")  # autocast("cuda") is off on CPU
        trainer.run()
    after = torch.cat([p.detach().flatten() for p in network.parameters()])
    return float((after - before).norm()), unclipped[0]


@pytest.mark.parametrize("amp", [False, True])
def test_clipping_bounds_the_update_to_the_norm(amp):
    step, unclipped = _clipped_step_norm(amp, max_norm=0.5)
    assert unclipped > 10.0, "the test batch must have a gradient far above the bound"
    # SGD with lr 1: the update is the clipped gradient; under AMP it must be unscaled before clipping, or the
    # step would be 0.5 / 4096
    assert step == pytest.approx(0.5, rel=1e-3)


def test_disabled_clipping_leaves_the_gradient_alone():
    step, unclipped = _clipped_step_norm(False, max_norm=0)
    assert math.isnan(unclipped), "no clipping handler: no norm recorded"
    assert step > 10.0


def test_train_json_clips_with_grad_clip_norm(dataset, bundle_root, tmp_path):
    workflow = _workflow(
        bundle_root, tmp_path, dataset, max_epochs=1, iterations_per_epoch=2, val_interval=5, grad_clip_norm=1e-3
    )
    trainer = workflow.parser.get_parsed_content("train#trainer")
    norms = []

    def measure(engine):
        grads = [p.grad for p in engine.network.parameters() if p.grad is not None]
        norms.append((float(engine.state.output["grad_norm"]), float(torch.nn.utils.get_total_norm(grads))))

    trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, measure)
    workflow.run()
    assert len(norms) == 2
    for before, after in norms:
        assert before > 1e-3 and after == pytest.approx(1e-3, rel=1e-3)


def test_nnunet_clip_norm_is_the_default_in_both_trainings(bundle_root):
    for names in (["train.json"], ["train.json", "pretrain.json"]):  # pretrain.json is an overlay on train.json
        parser = ConfigParser()
        parser.read_config([str(bundle_root / "configs" / name) for name in names])
        assert parser.get("grad_clip_norm") == 12.0
        targets = [handler["_target_"] for handler in parser.get("train#handlers")]
        assert targets[0] == "scripts.training.non_finite.StopOnNonFiniteLoss", "first: it must run before savers"
        assert "scripts.training.gradient_clipping.ClipGradientNorm" in targets


def test_clip_norm_must_not_be_negative():
    with pytest.raises(ValueError, match="grad_clip_norm"):
        ClipGradientNorm(-1.0)


# --- warm-up ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("configs", [("train.json", "adamw.json"), ("train.json", "pretrain.json")])
def test_warmup_starts_above_zero(bundle_root, configs):
    parser = ConfigParser()
    parser.read_config([str(bundle_root / "configs" / name) for name in configs])
    parser.update({**TINY, "warmup_epochs": 1, "max_epochs": 10, "device": "$torch.device('cpu')"})
    optimizer = parser.get_parsed_content("optimizer")
    scheduler = parser.get_parsed_content("lr_scheduler")
    base = parser.get_parsed_content("learning_rate")
    first_epoch = optimizer.param_groups[0]["lr"]
    assert first_epoch == pytest.approx(0.1 * base), "epoch 0 trains at a tenth of the learning rate, not at 0"
    optimizer.step()
    scheduler.step()  # LrScheduleHandler steps once per epoch
    assert optimizer.param_groups[0]["lr"] == pytest.approx(base), "the cosine decay starts at the full rate"


# --- NaN predictions --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nan_bundle(bundle_root, tmp_path_factory):
    """A bundle root whose models/model.pt holds weights of a diverged training (NaN)."""
    root = tmp_path_factory.mktemp("nan_bundle")
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    parser.update(TINY)
    network = parser.get_parsed_content("network_def")
    state = {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in network.state_dict().items()}
    (root / "models").mkdir()
    torch.save({"model": state}, root / "models" / "model.pt")
    return root


def test_nan_logits_at_inference_name_the_study(bundle_root, dataset, nan_bundle):
    """The MONAI Label path: network_def loaded with the weights directly, then ``inferer(image[None], network)``."""
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    parser.update({**TINY, "bundle_root": str(nan_bundle), "device": "$torch.device('cpu')", "tta_axes": []})
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(nan_bundle / "models" / "model.pt", weights_only=True)["model"])
    network.eval()
    ct = sorted((dataset / "imagesTr").glob("*_0000.nii.gz"))[0]
    item = parser.get_parsed_content("preprocessing")({"image": str(ct)})
    with pytest.raises(InputDataError) as raised:
        parser.get_parsed_content("inferer")(item["image"][None], network)
    assert raised.value.path == str(ct) and "NaN/Inf" in raised.value.problem


def test_nan_logits_in_a_batch_name_the_study_they_came_from():
    from monai.data import MetaTensor

    from scripts.inference.inferers import flip_tta_sliding_window_inference

    class NaNForSecondItem(torch.nn.Module):
        def forward(self, x):
            out = torch.cat([x[:, :1], -x[:, :1]], dim=1)
            return torch.where(x[:, :1] > 100, torch.nan, out)  # study b has one voxel > 100

    image = torch.zeros(2, 2, 6, 6, 6)
    image[1, 0, 3, 3, 3] = 1000.0
    inputs = MetaTensor(image, meta={"filename_or_obj": ["a_0000.nii.gz", "b_0000.nii.gz"]})
    with pytest.raises(InputDataError, match=r"^b_0000\.nii\.gz: the network predicted NaN/Inf for 2 of 432"):
        flip_tta_sliding_window_inference(inputs, NaNForSecondItem(), roi_size=6, flip_axes=[])
    finite = flip_tta_sliding_window_inference(inputs[:1], NaNForSecondItem(), roi_size=6, flip_axes=[0])
    assert torch.isfinite(finite).all()


@pytest.mark.parametrize("configs", [("inference.json",), ("inference.json", "evaluate.json")])
def test_a_diverged_checkpoint_is_an_error_not_an_empty_mask(bundle_root, dataset, nan_bundle, configs, tmp_path):
    out = tmp_path / "out"
    workflow = ConfigWorkflow(
        workflow_type="infer",
        config_file=[str(bundle_root / "configs" / name) for name in configs],
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        **{**TINY, "bundle_root": str(nan_bundle), "dataset_dir": str(dataset), "output_dir": str(out)},
        checkpoints=[str(nan_bundle / "models" / "model.pt")],
        input_path=str(dataset / "datalist_fold0.json"),
        datalist_key="validation",
    )
    with pytest.raises(Exception) as raised:
        workflow.initialize()
        workflow.run()
    error = _root_cause(raised.value, InputDataError)
    assert error is not None and error.path == str(nan_bundle / "models" / "model.pt"), raised.value
    assert "NaN/Inf" in error.problem
    assert not out.exists() or not list(out.rglob("*.nii.gz")), "no mask may be written from a NaN model"


# --- curves and the validation line -----------------------------------------------------------------------


def test_training_draws_curves_and_prints_each_validation(dataset, bundle_root, tmp_path, capsys):
    from matplotlib.image import imread

    runs = tmp_path / "runs" / "fold0"
    for epochs in (1, 2):  # a first session, then a resumed one: the curves continue
        workflow = _workflow(bundle_root, tmp_path, dataset, max_epochs=epochs, iterations_per_epoch=2)
        workflow.run()
        workflow.finalize()
        printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("validation at epoch")]
        assert [line.split(":")[0] for line in printed] == [f"validation at epoch {epochs}"]
        assert all(f" {name} " in printed[0] for name in ("Dice", "FPV", "FNV", "ml |", "best Dice")), printed[0]
        png = runs / "training_curves.png"
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        pixels = imread(png)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200 and np.ptp(pixels) > 0
        curves = json.loads((runs / "training_curves.json").read_text())
        assert [epoch for epoch, _ in curves["loss"]] == list(range(1, epochs + 1))
        assert [epoch for epoch, _ in curves["validation"]] == list(range(1, epochs + 1))
    assert all(math.isfinite(loss) and loss > 0 for _, loss in curves["loss"])
    assert all(0.0 <= dice <= 1.0 for _, dice in curves["validation"])
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".tmp")], "temporary files are renamed"
    assert list(runs.glob("events.out.tfevents.*")), "the PNG lies next to the TensorBoard logs"


def test_amp_steps_that_keep_skipping_stop_training():
    """Under AMP a non-finite gradient is skipped by the scaler; broken gradients (NaN from a finite loss) would be
    skipped forever while the scale shrinks, so a run of them stops training."""
    network = torch.nn.Conv3d(1, 1, 1)
    data = [{"image": torch.randn(1, 1, 2, 2, 2), "label": torch.zeros(1, 1, 2, 2, 2)}] * 5
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=data,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1),
        loss_function=lambda pred, label: torch.sqrt((pred - pred).abs()).sum(),  # 0, with NaN gradients
        amp=True,
        train_handlers=[ClipGradientNorm(12.0, max_skipped_steps=3)],
    )
    trainer.add_event_handler(Events.STARTED, lambda e: setattr(e, "scaler", torch.amp.GradScaler("cpu")))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
        with pytest.raises(
            NonFiniteTrainingError, match="NaN/Inf in 3 AMP steps in a row, up to epoch 1, iteration 3 "
        ):
            trainer.run()
