"""Which epoch's weights a run keeps, said and read back; a resume says where it goes on; a loaded run's history,
a checkpoint's weights, encoding in chunks and the progress bar's one rate."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit import run_chunks
from vaekit.viz.curves import read_metrics
from vaekit.viz.report_pictures import best_epoch, training_line

QUIET = dict(progress=False, pictures=False)


def images(n: int = 48) -> np.ndarray:
    """(n, 1, 8, 8) binary float32 'images'."""
    return (np.random.default_rng(0).random((n, 1, 8, 8)) > 0.5).astype(np.float32)


def model(**kw):
    torch.manual_seed(0)
    return vaekit.build_model(input_shape=[1, 8, 8], hidden=[32], latent_dim=3, likelihood="bernoulli", **kw)


class Weights(vaekit.Callback):
    """Each epoch's weights and metrics row; a signal ``signum`` sent to this process at the end of step ``stop``."""

    def __init__(self, stop: int = -1, signum: int = signal.SIGINT):
        self.weights: list[dict[str, torch.Tensor]] = []
        self.rows: list[dict] = []
        self.stop, self.signum = stop, signum

    def on_step_end(self, step, metrics, model):
        if step == self.stop:
            signal.raise_signal(self.signum)

    def on_epoch_end(self, epoch, metrics, model):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        self.rows.append(dict(metrics))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def set_aside(tmp_path_factory):
    """A run of 3 epochs at beta 1 resumed to 5 at beta 5: its best validation loss is set aside at epoch 4."""
    out = tmp_path_factory.mktemp("aside") / "run"
    vaekit.fit(model(), images(), epochs=3, batch_size=16, lr=0.03, out=out, **QUIET)
    seen = Weights()
    vaekit.fit(
        model(), images(), epochs=5, batch_size=16, lr=0.03, out=out, resume=True, beta=5, callbacks=[seen], **QUIET
    )
    return out, seen


def test_a_set_aside_best_is_not_read_back_as_the_kept_weights(set_aside):
    """repr, the report's line and the metrics name the epoch whose weights model.safetensors holds (one after the
    resume), not the lowest val_loss of all the epochs (one measured at beta 1)."""
    out, seen = set_aside
    metrics, run = read_metrics(out / "metrics.csv"), vaekit.load_run(out)
    kept = int(metrics["best_epoch"][-1])
    assert kept >= 4 and int(np.argmin(metrics["val_loss"])) + 1 < 4  # the lowest of all: one before the resume
    assert same(run.model.state_dict(), seen.weights[kept - 4])  # model.safetensors: the recorded epoch's
    assert metrics["best_val_loss"][-1] == metrics["val_loss"][kept - 1] == min(metrics["val_loss"][3:])
    assert f"best_epoch={kept}, best_val_loss={metrics['val_loss'][kept - 1]:.2f}," in repr(run)
    assert best_epoch(metrics) == kept
    line = training_line(metrics, run.config.to_dict()["train"])
    assert f"the weights shown are epoch {kept}'s, the lowest validation loss since a resume" in line


def test_the_end_names_the_kept_epoch_and_early_stopping_shows_without_progress_lines(tmp_path, capsys):
    """lr 1e-30: the weights hardly move, and validation draws the same noise every epoch: epoch 2 is no better,
    so patience 1 stops after it, epoch 1's weights kept: said under progress=False too (a result), with the rows
    (MLflow's metrics) naming them every epoch."""
    seen = Weights()
    run = vaekit.fit(model(), images(), epochs=6, batch_size=16, lr=1e-30, patience=1, callbacks=[seen], **QUIET)
    losses = [r["val_loss"] for r in run.history]
    assert len(losses) == 2 and losses[0] == losses[1] and same(run.model.state_dict(), seen.weights[0])
    assert capsys.readouterr().out == (
        f"early stopping: no better validation loss for 1 epoch; kept epoch 1's weights (val loss {losses[0]:.2f})\n"
    )
    assert [(r["best_epoch"], r["best_val_loss"]) for r in seen.rows] == [(1, losses[0]), (1, losses[0])]
    mlflow = pytest.importorskip("vaekit.viz.mlflow")
    logged = {m.key: m.value for m in mlflow.as_metrics(seen.rows[-1], 2)}
    assert (logged["best_epoch"], logged["best_val_loss"]) == (1, losses[0])
    run = vaekit.fit(model(), images(), epochs=2, batch_size=16, lr=0.03, pictures=False)  # progress lines on
    epoch = run.history[-1]["best_epoch"]
    kept = f"kept epoch {epoch}'s weights (val loss {run.history[epoch - 1]['val_loss']:.2f})\n"
    assert capsys.readouterr().out.endswith(kept)


def test_a_resume_says_where_it_goes_on(tmp_path, capsys):
    """3 batches an epoch: a Ctrl-C at step 4 leaves a checkpoint after batch 2 of epoch 2."""
    out = tmp_path / "run"
    with pytest.raises(vaekit.training.signals.Interrupted):
        vaekit.fit(model(), images(), epochs=3, batch_size=16, out=out, callbacks=[Weights(stop=4)], **QUIET)
    capsys.readouterr()
    vaekit.fit(model(), images(), epochs=3, batch_size=16, out=out, resume=True, progress=True, pictures=False)
    assert capsys.readouterr().out.startswith("resuming at epoch 2/3, after batch 2 of 3, from the last checkpoint\n")
    vaekit.fit(model(), images(), epochs=4, batch_size=16, out=out, resume=True, **QUIET)
    assert "resuming" not in capsys.readouterr().out  # progress lines off: not said


def test_a_loaded_run_has_its_history_and_takes_a_checkpoints_weights(tmp_path):
    """history as the fit's (numbers, counts as ints); weights="checkpoint.safetensors": the last epoch's, after
    an early stop (epoch 2 here: validation's fixed draws see no gain), where model.safetensors holds epoch 1's."""
    out, seen = tmp_path / "run", Weights()
    run = vaekit.fit(
        model(), images(), epochs=6, batch_size=16, lr=1e-30, patience=1, out=out, callbacks=[seen], **QUIET
    )
    loaded = vaekit.load_run(out)
    assert loaded.history == run.history and [type(r["epoch"]) for r in loaded.history] == [int] * 2
    assert same(loaded.model.state_dict(), seen.weights[0])
    for last in (
        vaekit.Run.load(out, weights="checkpoint.safetensors"),
        vaekit.load_run(out, weights="checkpoint.safetensors"),
    ):
        assert same(last.model.state_dict(), seen.weights[1]) and last.history == run.history
    tensors = load_file(out / "checkpoint.safetensors")
    assert same(last.model.state_dict(), {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})


@pytest.mark.parametrize("family", ["vae", "gumbel"])
def test_encode_and_reconstruct_run_in_chunks(family, monkeypatch):
    """7 items at a time: the chunks' q(z|x) joined into one of batch (N,), as one pass gives it."""
    run = vaekit.fit(model(family=family), images(), epochs=1, batch_size=16, **QUIET)
    x = torch.as_tensor(images(20))
    whole_q = run.model.encode(x)
    whole_x = run.model.decode(whole_q.mean).mean
    sizes: list[int] = []
    encode = run.model.encode
    monkeypatch.setattr(run.model, "encode", lambda x, y=None: sizes.append(len(x)) or encode(x, y))
    monkeypatch.setattr(run_chunks, "ENCODE_BATCH", 7)
    q = run.encode(x)
    assert sizes == [7, 7, 6] and q.batch_shape == whole_q.batch_shape and type(q) is type(whole_q)
    torch.testing.assert_close(q.mean, whole_q.mean)
    torch.testing.assert_close(q.log_prob(whole_q.mean), whole_q.log_prob(whole_q.mean))
    torch.testing.assert_close(run.reconstruct(x), whole_x)
    assert sizes[3:] == [7, 7, 6]


def test_the_progress_bar_shows_one_rate_in_items(monkeypatch, capsys):
    monkeypatch.setattr("vaekit.training.trainer.interactive", lambda: True)
    vaekit.fit(model(), images(), epochs=1, batch_size=16, pictures=False)
    bar = capsys.readouterr().err
    assert " items/s" in bar and "img" not in bar and "rate=" not in bar and "loss=" in bar
