"""Leftovers: a Run's repr says its epochs of those planned, its best epoch and how its training ended; a report
on items from Python records them as split all, as evaluate does; a gumbel or vq run's interpolation says its
path points are snapped to codes (caption and help); a conditional decoder's refusal names its inputs' split; fit
reads a list of tensors or arrays as stacked items."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import build_parser
from vaekit.data import Split
from vaekit.training.signals import Interrupted
from vaekit.viz.report_pictures import interpolation_picture

from .test_api_r2 import StopAt

QUIET = dict(progress=False, pictures=False, batch_size=16)


def images(n: int = 48) -> np.ndarray:
    """(n, 1, 2, 2) binary float32 'images': a loss of a few nats, whose 4 significant digits are not 2 decimals."""
    return (np.random.default_rng(0).random((n, 1, 2, 2)) > 0.5).astype(np.float32)


def model(**settings) -> vaekit.VAEModel:
    torch.manual_seed(0)
    return vaekit.build_model(input_shape=[1, 2, 2], likelihood="bernoulli", latent_dim=2, hidden=[8], **settings)


def fitted(out, stop: int | None = None, **settings) -> vaekit.Run:
    """A 3-epoch fit of 3 steps an epoch (43 training items, batches of 16); ``stop``: interrupted after that step."""
    if stop is None:
        return vaekit.fit(model(), images(), epochs=3, out=out, **QUIET, **settings)
    with pytest.raises(Interrupted) as e:
        vaekit.fit(model(), images(), epochs=3, out=out, callbacks=[StopAt(stop)], **QUIET, **settings)
    return e.value.result


@pytest.mark.parametrize("folder", [False, True])
@pytest.mark.parametrize(
    "settings, stop, epochs, ended",
    [
        ({}, None, 3, "reached its epochs"),
        ({"patience": 1, "min_delta": 1e6}, None, 2, "stopped early"),  # no epoch better by 1e6 nats
        ({}, 4, 1, "interrupted mid-epoch"),  # step 4 is in epoch 2
    ],
)
def test_a_runs_repr_says_its_epochs_of_those_planned_its_best_epoch_and_how_it_ended(
    folder, settings, stop, epochs, ended, tmp_path
):
    run = fitted(tmp_path / "run" if folder else None, stop, **settings)
    run = vaekit.load_run(run.path) if folder else run  # a folder's, as metrics.csv and its checkpoint say
    best = min(run.history, key=lambda row: row["val_loss"])  # the first of the lowest, as the trainer keeps
    ended = ended if folder or stop is None else "interrupted"  # no checkpoint: where in the epoch is unknown
    said = f"epochs='{epochs} of 3', best_epoch={best['epoch']}, best_val_loss={best['val_loss']:.2f}, ended={ended!r}"
    assert repr(run).endswith(said + ")") and f"{best['val_loss']:.4g}" != f"{best['val_loss']:.2f}"


@pytest.fixture(scope="module")
def run() -> vaekit.Run:
    return vaekit.fit(model(), images(), epochs=1, **QUIET)


def test_a_report_records_items_from_python_as_split_all_as_evaluate_does(run, tmp_path):
    x = images(12)
    assert vaekit.evaluate(run, x, k=2, limit=5)["split"] == "all"
    page = vaekit.write_report(run, x, k=2, limit=5, out=tmp_path / "r.html").read_text()
    assert "<h2>Evaluation (data, all split, K = 2" in page and "<td>n</td><td>5</td>" in page


def test_a_discrete_runs_interpolation_says_its_points_are_snapped_to_codes(run, tmp_path):
    x = torch.from_numpy(images(4))
    gumbel = vaekit.fit(model(family="gumbel", categories=2), images(), epochs=1, **QUIET)
    captions = [interpolation_picture(r, None, Split(x, None), x, None, tmp_path)[0] for r in (run, gumbel)]
    assert ["path points are decoded as one-hots" in c for c in captions] == [False, True]
    assert "a gumbel or vq run's points are snapped to codes" in " ".join(
        build_parser().verb_parsers["interpolate"].format_help().split()
    )


@pytest.mark.parametrize(
    "embedding, split",
    [(0, "one-hot y] (latent_dim 2 + 3 classes)"), (4, "embedded y] (latent_dim 2 + label_embedding 4)")],
)
def test_a_conditional_decoder_that_fails_is_told_the_split_of_its_inputs(embedding, split):
    said = re.escape(f"the decoder, reading [z, {split}, fails on inputs of shape (2, {2 + (embedding or 3)}): ")
    with pytest.raises(vaekit.VaekitError, match=f"^{said}"):
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 8))
        vaekit.ConditionalVAE(
            encoder, nn.Linear(2, 4), 2, 3, "bernoulli", label_embedding=embedding, input_shape=[1, 2, 2]
        )


def test_fit_and_evaluate_read_a_list_of_tensors_or_arrays_as_stacked_items(run):
    from vaekit.data.user_arrays import stacked

    x = images()
    runs = [vaekit.fit(model(), data, epochs=1, **QUIET) for data in (x, list(torch.from_numpy(x)), list(x))]
    assert [r.history[0]["val_loss"] for r in runs[1:]] == [runs[0].history[0]["val_loss"]] * 2
    assert vaekit.evaluate(run, list(x[:6]), k=2)["elbo"] == vaekit.evaluate(run, x[:6], k=2)["elbo"]
    pair = (x[:, 0, 0, :1], x[:, 0, 0, :1].astype(int))  # a one-column table and its labels, (n, 1) both: a pair
    assert stacked([x[0], x[1]]) and not stacked((x, np.zeros(48))) and not stacked(pair)
