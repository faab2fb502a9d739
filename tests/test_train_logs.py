"""What a run logs and says while it trains: step numbers through eager and compiled epochs and resumes, the step
scalars over every process, how a run with train.patience ended, train.min_delta and the fixed validation draws,
the warm-up note once, large losses in the epoch line, and the switches for TensorBoard and CPU threads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import build_parser, train_config
from vaekit.cli.train import nothing_to_train
from vaekit.config import RunConfig, TrainConfig, refuse_conflicts, validate
from vaekit.errors import VaekitError
from vaekit.training import distributed, trainer
from vaekit.training.early_stop import judge
from vaekit.training.progress import summary
from vaekit.training.state import LoopState, recorded_state
from vaekit.training.step import train_step
from vaekit.training.step_report import reads_every
from vaekit.viz.callbacks import Pictures, default_callbacks
from vaekit.viz.tensorboard import TensorBoard

from .test_compat_draws import aged

QUIET = dict(progress=False, pictures=False, batch_size=16)


def images(n: int = 48) -> np.ndarray:
    """(n, 1, 8, 8) binary float32 'images'."""
    return (np.random.default_rng(0).random((n, 1, 8, 8)) > 0.5).astype(np.float32)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return vaekit.build_model(input_shape=[1, 8, 8], hidden=[16], latent_dim=2, likelihood="bernoulli")


class Log(vaekit.Callback):
    """The step numbers, step metrics and torch's threads a fit reports."""

    def __init__(self, every: int | None = None):
        self.steps: list[int] = []
        self.metrics: list[dict] = []
        self.threads: list[int] = []
        if every is not None:
            self.every = every

    def on_step_end(self, step, metrics, model):
        self.steps.append(step)
        self.metrics.append({k: float(v) for k, v in metrics.items()})
        self.threads.append(torch.get_num_threads())


def test_steps_count_the_runs_steps_through_an_eager_warm_up_compiled_epochs_and_resumes(tmp_path, monkeypatch):
    """36 training items in batches of 16: the balanced warm-up's eager epoch takes 3 steps (its short last batch
    kept), a compiled epoch 2 (here the eager step with a compiled one's fixed shapes). They were numbered epoch *
    n_batches + b, so epoch 2's first step was 2 again; an older checkpoint's resume goes on as it numbered."""
    monkeypatch.setattr(trainer, "make_step", lambda mode, device, steps: (train_step, True))
    x = (torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    settings = dict(warmup_epochs=1, kl_balance=True, tensorboard=False, **QUIET)
    logs, run = [Log() for _ in range(3)], tmp_path / "run"
    vaekit.fit(deep(), x, epochs=2, out=run, callbacks=[logs[0]], **settings)
    old = aged(run, tmp_path / "old", step=None)  # epoch 2's checkpoint without the count, as an earlier vaekit
    for log, out in zip(logs[1:], (run, old), strict=True):
        vaekit.fit(deep(), x, epochs=3, out=out, resume=True, callbacks=[log], **settings)
    assert logs[0].steps == [0, 1, 2, 3, 4]
    assert logs[1].steps == [5, 6] and recorded_state(run)["step"] == 7  # saved in the checkpoint: resumes go on
    assert logs[2].steps == [4, 5]  # 2 epochs x 2 batches of a compiled epoch, as before


def deep() -> torch.nn.Module:
    """A ladder of two levels: KL balancing has two groups to weigh."""
    torch.manual_seed(0)
    kw = dict(input_shape=[1, 8, 8], hidden=[16], latent_dims=[2, 2], likelihood="bernoulli")
    return vaekit.build_model(family="ladder", **kw)


def test_a_run_that_reaches_its_epochs_at_patience_says_so_and_a_resume_says_what_stops_it(tmp_path, capsys):
    """lr 1e-30: the weights stand still, and so do the validation losses (drawn alike every epoch): none after
    epoch 1 is better. Patience 2 met at the last epoch (3) is no early stop; a resume for more epochs trains
    nothing, said as it is, whether the run stopped early or not (patience 0 then 1 on resume)."""
    kw = dict(lr=1e-30, **(QUIET | {"progress": True}))
    vaekit.fit(model(), images(), epochs=3, patience=2, out=tmp_path / "a", **kw)
    out = capsys.readouterr().out
    assert "early stopping" not in out
    assert out.splitlines()[-1].startswith(
        "reached train.epochs 3, the last 2 epochs without a better validation loss; kept epoch 1's weights"
    )
    vaekit.fit(model(), images(), epochs=9, patience=2, out=tmp_path / "b", **kw)  # stops after epoch 3
    assert "early stopping: no better validation loss for 2 epochs; kept epoch 1's" in capsys.readouterr().out
    vaekit.fit(model(), images(), epochs=3, out=tmp_path / "c", **kw)
    capsys.readouterr()
    lines = {
        name: nothing_to_train(tmp_path / name, recorded_state(tmp_path / name), TrainConfig(epochs=10, patience=p))
        for name, p in (("a", 2), ("b", 2), ("c", 1))
    }
    more = "pass --patience 3 or more, or --patience 0, to train on to train.epochs 10"
    assert lines["a"] == (
        f"nothing to train: {tmp_path / 'a'} has had 2 epochs without a better validation loss already, at least "
        f"train.patience 2; {more}"
    )
    assert lines["b"] == (
        f"nothing to train: {tmp_path / 'b'} stopped early after 3 epochs (2 without a better validation loss, "
        f"train.patience 2); {more}"
    )
    assert "c has had 2 epochs without a better validation loss already, at least train.patience 1" in lines["c"]
    vaekit.fit(model(), images(), epochs=10, patience=2, out=tmp_path / "a", resume=True, **kw)
    assert capsys.readouterr().out == ""  # nothing trained, no line of the trainer's: fit's caller says it


def test_validation_draws_are_the_same_every_epoch_and_leave_training_s_stream_alone(tmp_path):
    """Weights that stand still (lr 1e-30) give the same validation loss every epoch, to the bit (fresh draws moved
    it); training draws as if validation drew nothing: a run resumed after each epoch ends as an unbroken one."""
    run = vaekit.fit(model(), images(), epochs=3, lr=1e-30, **QUIET)
    assert len({r["val_loss"] for r in run.history}) == 1
    unbroken = vaekit.fit(model(), images(), epochs=3, out=tmp_path / "a", **QUIET)
    for epochs in (1, 2, 3):
        resumed = vaekit.fit(model(), images(), epochs=epochs, out=tmp_path / "b", resume=epochs > 1, **QUIET)
    columns = ("train_loss", "val_loss", "val_rec", "val_kl", "best_epoch")
    assert [[r[k] for k in columns] for r in resumed.history] == [[r[k] for k in columns] for r in unbroken.history]
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in unbroken.model.state_dict().items())


def test_min_delta_keeps_the_lowest_weights_but_counts_only_gains_above_it_for_patience():
    """min_delta 0.1: 9.95 is kept (the lowest) but leaves patience counting; 9.5 resets it, from 9.5."""
    s, kept, bad = LoopState(), [], []
    for loss in (10.0, 9.95, 9.5, 9.45, 9.39):
        kept.append(judge(s, loss, 0.1))
        bad.append(s.bad_epochs)
    assert kept == [True] * 5 and bad == [0, 1, 0, 1, 0] and (s.best_val, s.patience_val) == (9.39, 9.39)
    assert LoopState.from_checkpoint({"best_val": 3.0}).patience_val == 3.0  # an older checkpoint: as it counted
    assert LoopState.from_checkpoint({"best_val": 3.0}).step == -1  # derived by the trainer


@pytest.mark.parametrize(
    "flags, refused",
    [
        (["--min-delta", "0.1", "--patience", "3"], None),
        (["--min-delta", "-0.1", "--patience", "3"], "train.min_delta must be >= 0"),
        (["--min-delta", "0"], "train.min_delta and train.patience cannot both take effect"),
        (["--threads", "-1"], "train.threads must be >= 0"),
    ],
)
def test_min_delta_and_threads_flags_are_checked(flags, refused):
    args = build_parser().parse_args(["train", *flags, "--out", "r"])
    if refused is None:
        cfg = refuse_conflicts(validate(train_config(args)))
        assert (cfg.train.min_delta, cfg.train.patience) == (0.1, 3)
        return
    with pytest.raises(VaekitError, match=refused) as e:
        refuse_conflicts(validate(train_config(args)))
    assert e.value.key in ("train.min_delta", "train.threads")


def test_a_resume_with_patience_off_keeps_the_min_delta_its_config_json_holds():
    saved = RunConfig()
    saved.train.min_delta, saved.train.patience = 0.5, 0  # config.json's, then --patience 0: not the user's
    refuse_conflicts(saved, ("train",))


def test_callbacks_read_steps_at_the_gcd_of_their_every():
    assert reads_every([TensorBoard(), Pictures()]) == 10
    assert reads_every([TensorBoard(every=10), Log(every=4)]) == 2 and reads_every([Pictures()]) == 0
    assert reads_every([Log(), TensorBoard()]) == 1  # one without an every reads every step


def test_step_scalars_are_means_over_every_process_at_the_steps_callbacks_read(monkeypatch):
    """Two processes of 2 items each (the other's sums added as its all-reduce would): the global batch's means."""
    other = torch.tensor([2 * 5.0, 8.0, 2.0, 2.0])  # rank 1: loss 5 (mean), rec sum 8, kl sum 2, 2 items
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "_reduce", lambda t, op=None: t + other)
    means = distributed.step_means(torch.tensor(3.0), torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5]))
    assert {k: float(v) for k, v in means.items()} == {"loss": 4.0, "rec": 3.0, "kl": 0.75}


def test_the_trainer_reduces_the_step_scalars_at_the_steps_read_alone(monkeypatch):
    reduced = []
    step_means = distributed.step_means
    monkeypatch.setattr(distributed, "step_means", lambda *a: reduced.append(1) or step_means(*a))
    log = Log(every=2)
    vaekit.fit(model(), images(), epochs=2, callbacks=[log], **QUIET)
    assert log.steps == [0, 1, 2, 3, 4, 5] and len(reduced) == 3  # steps 0, 2, 4
    assert all(math.isfinite(m["loss"]) for m in log.metrics)


def test_the_warm_up_note_is_said_at_the_run_s_start_and_not_on_each_resume(tmp_path, capsys):
    vaekit.fit(model(), images(), epochs=1, warmup_epochs=5, out=tmp_path / "r", **QUIET)
    assert "train.warmup_epochs 5 is longer than the run" in capsys.readouterr().err
    vaekit.fit(model(), images(), epochs=2, warmup_epochs=5, out=tmp_path / "r", resume=True, **QUIET)
    assert "longer than the run" not in capsys.readouterr().err


def test_the_epoch_line_writes_large_losses_in_e_notation():
    row = dict(epoch=3, train_loss=591475338000.0, val_loss=27.304, val_rec=-1234567.0, val_kl=0.03)
    line = summary(row | {"seconds": 0.1, "samples_per_s": 16428.0}, 7)
    assert line.startswith("epoch 3/7  loss 5.915e+11  val 27.30 (rec -1.235e+06, kl 0.03)")


def test_tensorboard_can_be_turned_off_and_threads_set_for_training_alone(tmp_path):
    cfg = train_config(build_parser().parse_args(["train", "--no-tensorboard", "--threads", "2", "--out", "r"]))
    assert (cfg.train.tensorboard, cfg.train.threads) == (False, 2)
    assert not any(isinstance(c, TensorBoard) for c in default_callbacks(cfg))
    assert any(isinstance(c, TensorBoard) for c in default_callbacks(RunConfig()))
    before, log = torch.get_num_threads(), Log()
    vaekit.fit(model(), images(), epochs=1, threads=before + 1, callbacks=[log], **QUIET)
    assert set(log.threads) == {before + 1} and torch.get_num_threads() == before


def test_train_loss_weighs_each_step_by_its_items():
    """40 training items in batches of 16: 16, 16 and 8; train_loss is the items' mean, not the steps'."""
    log, x = Log(), images(48)
    run = vaekit.fit(model(), x[:40], val_data=x[40:], epochs=1, callbacks=[log], **QUIET)
    losses, sizes = np.array([m["loss"] for m in log.metrics]), np.array([16, 16, 8])
    assert run.history[0]["train_loss"] == pytest.approx(float((losses * sizes).sum() / 40), rel=1e-6)
    assert abs(run.history[0]["train_loss"] - losses.mean()) > 1e-4


def test_the_early_stopping_line_names_min_delta(capsys):
    run = vaekit.fit(model(), images(), epochs=5, lr=1e-30, patience=1, min_delta=0.5, **QUIET)
    assert len(run.history) == 2  # the fixed draws: epoch 2 no better, by more than 0.5 or at all
    said = "early stopping: no better validation loss (by more than train.min_delta 0.5) for 1 epoch; kept epoch 1's"
    assert said in capsys.readouterr().out
