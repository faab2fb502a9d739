"""vaekit.fit on the user's own data and networks: containers, checks, resume, callbacks, save and load."""

from __future__ import annotations

import copy
import dataclasses
import re
import typing

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.utils.data import DataLoader, Dataset, TensorDataset

import vaekit
from vaekit.cli import main
from vaekit.config.keys import refuse_unfit
from vaekit.errors import NotFinite
from vaekit.evaluation.scores import anomaly_scores
from vaekit.models import MODELS
from vaekit.training.describe import DEEP_SETTINGS

from .conftest import tiny_config

QUIET = dict(progress=False, pictures=False)


def images(n=48, seed=0) -> np.ndarray:
    """(n, 1, 4, 4) binary float32 'images'."""
    return (np.random.default_rng(seed).random((n, 1, 4, 4)) > 0.5).astype(np.float32)


def model(**settings) -> nn.Module:
    torch.manual_seed(0)
    return vaekit.build_model(
        **{"input_shape": [1, 4, 4], "hidden": [8], "latent_dim": 2, "likelihood": "bernoulli", **settings}
    )


def weights(run: vaekit.Run) -> dict[str, torch.Tensor]:
    return run.model.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_array_a_tensor_and_an_x_y_pair_give_identical_weights():
    x = images()
    runs = [
        vaekit.fit(model(), data, epochs=2, batch_size=16, seed=seed, **QUIET)
        for data, seed in ((x, 3), (torch.from_numpy(x), 3), ((x, np.arange(48) % 3), 3))
    ]
    assert same(weights(runs[0]), weights(runs[1])) and same(weights(runs[0]), weights(runs[2]))
    assert runs[0].path is None and len(runs[0].history) == 2  # no out: weights and metrics in memory
    other = vaekit.fit(model(), x, epochs=2, batch_size=16, seed=4, **QUIET)
    assert not same(weights(runs[0]), weights(other))


class Items(Dataset):
    """A map-style Dataset of (x, y) pairs as numpy arrays; item ``bad`` is replaced by ``value``."""

    def __init__(self, x: np.ndarray, bad: int | None = None, value: float = np.nan):
        self.x, self.bad, self.value = x, bad, value

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        item = self.x[i].copy()
        if i == self.bad:
            item[0, 0, 0] = self.value
        return item, i % 3


@pytest.mark.parametrize("wrap", [lambda d: d, lambda d: DataLoader(d, batch_size=16)], ids=["dataset", "loader"])
def test_datasets_and_dataloaders_train_streamed_with_the_same_checks(wrap, tmp_path):
    x = images()
    run = vaekit.fit(model(), wrap(Items(x)), epochs=1, batch_size=16, out=tmp_path / "run", **QUIET)
    assert (tmp_path / "run" / "model.safetensors").is_file() and len(run.history) == 1
    cvae = model(family="cvae", num_classes=3)
    assert len(vaekit.fit(cvae, wrap(Items(x)), epochs=1, **QUIET).history) == 1  # labels come with the items
    for bad, value, needle in ((5, np.nan, "NaN or infinite"), (7, 3.0, "outside the bernoulli")):
        with pytest.raises(vaekit.VaekitError, match=needle):
            vaekit.fit(model(), wrap(Items(x, bad, value)), epochs=1, batch_size=16, **QUIET)
    with pytest.raises(vaekit.VaekitError, match="data items: contains 16 NaN"):
        run.encode(np.full((1, 1, 4, 4), np.nan, np.float32))
    for n in (0, 2.5, "3"):
        with pytest.raises(vaekit.VaekitError, match="n must be a whole number >= 1"):
            run.sample(n)
    for t, why in ((-1, "finite number >= 0"), (float("nan"), "finite number >= 0"), ([1.0, 0.8], "a deep run")):
        with pytest.raises(vaekit.VaekitError, match=why):
            run.sample(2, temperature=t)


@pytest.mark.parametrize(
    "data,needle",
    [
        (np.full((20, 1, 4, 4), np.nan, np.float32), "NaN or infinite"),
        (np.ones(20, np.float32), r"shape \(N, \*item_shape\)"),
        (np.full((20, 1, 4, 4), 2.0, np.float32), "outside the bernoulli likelihood's support"),
        (np.array([[object()] * 16] * 20, dtype=object).reshape(20, 1, 4, 4), "dtype object is not numeric"),
        ((images(20), np.arange(19)), "19 labels for 20 items"),
        ("not data", "is a data spec: pass vaekit.load_dataset"),
    ],
)
def test_bad_arrays_get_one_line_and_leave_nothing_behind(data, needle, tmp_path):
    with pytest.raises(vaekit.VaekitError, match=needle) as e:
        vaekit.fit(model(), data, epochs=1, out=tmp_path / "run", **QUIET)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def test_resume_continues_a_fit_exactly_and_callbacks_see_every_step(tmp_path):
    x = images(64)
    straight = vaekit.fit(model(), x, epochs=3, batch_size=16, out=tmp_path / "a", **QUIET)
    vaekit.fit(model(), x, epochs=1, batch_size=16, out=tmp_path / "b", **QUIET)

    class Log(vaekit.Callback):
        steps, epochs = [], []

        def on_step_end(self, step, metrics, model):
            self.steps.append((step, float(metrics["loss"])))

        def on_epoch_end(self, epoch, metrics, model):
            self.epochs.append((epoch, metrics["val_loss"]))

    for changed in ({"batch_size": 8}, {"seed": 1}, {"val_fraction": 0.3}):  # what the checkpoint rests on
        with pytest.raises(vaekit.VaekitError, match=f"{next(iter(changed))}: a resumed run keeps"):
            vaekit.fit(model(), x, epochs=3, out=tmp_path / "b", resume=True, **{"batch_size": 16, **changed}, **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"resume it with vaekit.fit\(model, data"):
        vaekit.train(out=tmp_path / "b", resume=True, epochs=3, pictures=False)
    log = Log()
    resumed = vaekit.fit(model(), x, epochs=3, batch_size=16, out=tmp_path / "b", resume=True, callbacks=[log], **QUIET)
    assert same(weights(straight), weights(resumed))
    assert [e for e, _ in log.epochs] == [2, 3] and len(log.steps) == 2 * 4  # 58 training items, batches of 16
    assert all(np.isfinite(v) for _, v in log.steps)


def test_a_resumed_fit_goes_on_with_the_settings_its_run_records(tmp_path):
    x, kept = images(64), dict(beta=4.0, lr=0.01, ema=0.99, warmup_epochs=3.0, clip_grad=1.0)
    fixed = dict(seed=2, batch_size=16)  # what a resume refuses to change
    straight = vaekit.fit(model(), x, epochs=2, **kept, **fixed, **QUIET)
    vaekit.fit(model(), x, epochs=1, out=tmp_path, **kept, **fixed, **QUIET)
    resumed = vaekit.fit(model(), x, epochs=2, out=tmp_path, resume=True, **fixed, **QUIET)  # was: beta 1, lr 1e-3...
    assert {k: getattr(resumed.config.train, k) for k in kept} == kept and resumed.history[1]["lr"] == 0.01
    assert same(weights(straight), weights(resumed))


def test_a_resumed_fit_reads_its_config_json_once(tmp_path, monkeypatch):
    x, reads = images(32), []
    vaekit.fit(model(), x, epochs=1, batch_size=16, out=tmp_path, **QUIET)
    load = vaekit.api.load_json_config
    monkeypatch.setattr(vaekit.api, "load_json_config", lambda path: reads.append(path) or load(path))
    resumed = vaekit.fit(model(), x, epochs=2, batch_size=16, out=tmp_path, resume=True, **QUIET)
    assert reads == [tmp_path / "config.json"] and len(resumed.history) == 2


@pytest.mark.parametrize(
    "given, needle",
    [
        ({"data.limit": 10}, "data.limit cannot take effect: fit trains on the data passed to it"),
        ({"data.image_size": [4]}, "data.image_size cannot take effect"),
        ({"val_data": images(8), "data.val_fraction": 0.3}, "val_data and val_fraction cannot both take effect"),
        ({"binarize": "none", "data.binarize": "fixed"}, "binarize and data.binarize both set data.binarize"),
        (
            {"data": DataLoader(images(), batch_size=16), "train.batch_size": 32},
            "batch_size 32 and the DataLoader's 16",
        ),
    ],
    ids=["limit", "image_size", "val_fraction", "binarize", "batch_size"],
)
def test_fit_refuses_a_setting_it_cannot_honour_by_any_name(given, needle):
    with pytest.raises(vaekit.VaekitError, match=needle):
        vaekit.fit(model(), **{"data": images(), **given}, epochs=1, **QUIET)


def test_val_data_picks_the_best_epoch_and_labels_are_checked():
    x = images(40)
    run = vaekit.fit(model(), x, val_data=images(10, seed=1), epochs=2, **QUIET)
    assert len(run.history) == 2 and run.history[0]["val_loss"] > 0
    ev = [vaekit.evaluate(run, wrap(images(10, seed=2)), k=4) for wrap in (np.asarray, torch.from_numpy)]
    assert ev[0]["n"] == 10 and ev[0]["nll"] == ev[1]["nll"] > 0  # the user's items, evaluated whole
    with pytest.raises(vaekit.VaekitError, match=r"label 4 is outside the model.s classes 0..2"):
        vaekit.fit(model(family="cvae", num_classes=3), (x, np.arange(40) % 5), epochs=1, **QUIET)
    with pytest.raises(vaekit.VaekitError, match="conditions on labels"):
        vaekit.fit(model(family="cvae", num_classes=3), x, epochs=1, **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"model.family and train.kl_balance cannot both take effect"):
        vaekit.fit(model(), x, epochs=1, warmup_epochs=1, kl_balance=True, **QUIET)  # a family's: the table's row
    mine = model()
    mine.__class__ = MyVAE  # a class of the user's: its one latent group, fit's own check
    own = r"^train.kl_balance cannot take effect: .*this model has one group"
    with pytest.raises(vaekit.VaekitError, match=own) as e:
        vaekit.fit(mine, x, epochs=1, warmup_epochs=1, kl_balance=True, **QUIET)
    assert e.value.key == "train.kl_balance"


class MyVAE(MODELS["vae"]):
    """A user's subclass of the VAE: family custom."""


class TwoOut(nn.Module):
    """An encoder returning (features, input): networks built for another toolkit often return tuples."""

    def forward(self, x):
        return x.flatten(1), x


def test_a_model_that_cannot_be_rebuilt_loads_into_a_skeleton(tmp_path):
    class Encoder(nn.Module):  # defined in a function: it cannot be imported again
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8))

        def forward(self, x):
            return self.net(x)

    def make():
        torch.manual_seed(1)
        return vaekit.VAE(Encoder(), nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4))), latent_dim=2)

    x = images()
    run = vaekit.fit(make(), x, epochs=1, out=tmp_path / "run", **QUIET)
    with pytest.raises(vaekit.VaekitError, match=r"cannot be rebuilt .*load_run\(path, model=...\)"):
        vaekit.load_run(tmp_path / "run")
    again = vaekit.load_run(tmp_path / "run", model=make())
    assert torch.equal(again.encode(x[:4]).mean, run.encode(x[:4]).mean)
    assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "s.png")]) == 2  # the CLI says the same
    with pytest.raises(vaekit.VaekitError, match="the encoder must return one tensor; it returns a tuple"):
        vaekit.fit(vaekit.VAE(TwoOut(), nn.Linear(2, 16), latent_dim=2), x, epochs=1, **QUIET)


def test_train_leaves_the_callers_config_alone_and_the_cli_names_the_flag(tmp_path, capsys):
    cfg = vaekit.RunConfig(out=str(tmp_path / "run"))
    cfg.data.spec, cfg.train.epochs, cfg.train.progress, cfg.model.hidden = "digits", 1, False, [8]
    before = cfg.to_dict()
    vaekit.train(cfg, pictures=False, limit=100)
    assert cfg.to_dict() == before
    np.save(tmp_path / "real.npy", np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32))
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "real.npy"),
                "--likelihood",
                "bernoulli",
                "--out",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "outside the bernoulli likelihood's support" in err and err.endswith("(--likelihood)")


def test_a_tensor_dataset_of_one_tensor_trains():
    x = torch.from_numpy(images())
    run = vaekit.fit(model(), TensorDataset(x), epochs=1, batch_size=16, **QUIET)
    assert len(run.history) == 1


def test_the_objectives_take_arrays_and_name_a_model_passed_for_its_output():
    m, x = model(), images(6)
    m(torch.from_numpy(x))  # built for (1, 4, 4) items
    torch.manual_seed(0)
    out = m(torch.from_numpy(x))
    assert torch.equal(vaekit.elbo(out, x)["loss"], vaekit.elbo(out, torch.from_numpy(x))["loss"])
    torch.manual_seed(0)
    assert vaekit.iwae_bound(m, x, 4).shape == (6,)
    with pytest.raises(vaekit.VaekitError, match=r"takes a model's output, out = model\(x\); got a VAE"):
        vaekit.elbo(m, x)


@pytest.fixture(scope="module")
def runs() -> dict[str, vaekit.Run]:
    """Tiny runs fitted on (x, y): one unconditional (num_classes 3 recorded from y), one conditional."""
    x, y = images(), np.arange(48) % 3
    built = {"vae": model(), "cvae": model(family="cvae", num_classes=3)}  # only the cvae reads labels
    return {f: vaekit.fit(m, (x, y), epochs=1, **QUIET) for f, m in built.items()}


def test_fit_of_a_config_applies_its_keywords_as_train_does_over_a_copy(tiny_images, tmp_path):
    cfg = tiny_config(str(tiny_images), tmp_path / "unused", epochs=1)
    before, kw = cfg.to_dict(), dict(epochs=2, lr=0.01, seed=3, batch_size=8, val_fraction=0.2, beta=0.5)
    fitted = vaekit.fit(cfg, out=tmp_path / "fit", pictures=False, **kw)
    trained = vaekit.train(cfg, out=tmp_path / "train", pictures=False, **kw)
    assert cfg.to_dict() == before and same(weights(fitted), weights(trained)) and len(fitted.history) == 2
    t = fitted.config.train
    assert (t.epochs, t.lr, t.seed, t.batch_size, t.beta, fitted.config.data.val_fraction) == (2, 0.01, 3, 8, 0.5, 0.2)
    assert fitted.path == tmp_path / "fit"


@pytest.mark.parametrize("given", [{"data": images()}, {"val_data": images()}, {"x_key": "image"}])
def test_fit_of_a_config_refuses_data_from_python_in_one_line(given, tiny_images, tmp_path):
    with pytest.raises(vaekit.VaekitError, match=f"{next(iter(given))} cannot take effect") as e:
        vaekit.fit(tiny_config(str(tiny_images), tmp_path / "run"), **given)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def as_uint8(x: np.ndarray) -> np.ndarray:
    return (x * 255).astype(np.uint8)


@pytest.mark.parametrize(
    "wrap",
    [as_uint8, lambda x: torch.from_numpy(as_uint8(x)), lambda x: as_uint8(x).transpose(0, 2, 3, 1), np.ndarray.tolist],
    ids=["uint8-array", "uint8-tensor", "uint8-channels-last", "list"],
)
def test_encode_and_reconstruct_read_items_as_fit_does(wrap, runs):
    run, x = runs["vae"], images(6, seed=2)  # uint8 images / 255, as fit and evaluate read them
    assert torch.equal(run.encode(wrap(x)).mean, run.encode(torch.from_numpy(x)).mean)
    assert torch.equal(run.reconstruct(wrap(x)), run.reconstruct(torch.from_numpy(x)))


def test_a_model_moved_to_float64_encodes_and_reconstructs_in_float64(runs):
    run, x = runs["cvae"], torch.from_numpy(images(4, seed=2))  # items were cast to float32: a dtype mismatch
    wide, y = vaekit.Run(None, run.config, copy.deepcopy(run.model).double()), [0, 1, 2, 0]
    q = wide.encode(x, y)
    assert q.mean.dtype == wide.reconstruct(x, y).dtype == torch.float64
    assert torch.allclose(q.mean.float(), run.encode(x, y).mean, atol=1e-5)


def test_a_diverged_model_s_samples_and_reconstructions_are_refused(runs):
    nan = copy.deepcopy(runs["vae"].model)
    vector_to_parameters(torch.full_like(parameters_to_vector(nan.parameters()), torch.nan), nan.parameters())
    broken = dataclasses.replace(runs["vae"], model=nan)  # as a run whose training diverged keeps it
    with pytest.raises(NotFinite, match=r"samples: \d+ of \d+ values are NaN or infinite: the model diverged"):
        broken.sample(2)  # was: NaN images, written as if they were samples
    with pytest.raises(NotFinite, match="reconstructions: "):
        broken.reconstruct(images(2))


def test_sample_classes_takes_a_conditional_model(runs):
    assert runs["cvae"].sample_classes(2).shape == (6, 1, 4, 4)  # 3 classes, 2 each
    with pytest.raises(vaekit.VaekitError, match="this model is not conditional"):
        runs["vae"].sample_classes(2)


@pytest.mark.parametrize("label", [1.5, float("nan"), [0.0, 2.5], torch.tensor([0.5])])
def test_labels_are_whole_numbers(label, runs):
    run = runs["cvae"]
    with pytest.raises(vaekit.VaekitError, match="labels are whole numbers"):
        run.sample(2, label=label)
    with pytest.raises(vaekit.VaekitError, match="labels are whole numbers"):
        run.encode(images(2), label)
    torch.manual_seed(0)
    one = run.sample(2, label=1.0)  # a whole float is its class
    torch.manual_seed(0)
    assert torch.equal(one, run.sample(2, label=1))


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_load_run_names_a_device_it_cannot_use(device, tmp_path):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("cuda:7 is a device here")
    vaekit.fit(model(), images(), epochs=1, out=tmp_path / "run", **QUIET)
    with pytest.raises(vaekit.VaekitError, match=f"device '{device}' cannot be used here") as e:
        vaekit.load_run(tmp_path / "run", device=device)
    assert e.value.key == "device" and "\n" not in str(e.value)


@pytest.mark.parametrize("callbacks", [vaekit.Callback(), [object()], "log"], ids=["one", "not-a-callback", "str"])
@pytest.mark.parametrize("how", ["fit", "train"])
def test_callbacks_take_a_list_of_callbacks(callbacks, how, tiny_images, tmp_path):
    with pytest.raises(vaekit.VaekitError, match=r"callbacks take a list of vaekit\.Callback") as e:
        if how == "fit":
            vaekit.fit(model(), images(), epochs=1, callbacks=callbacks, out=tmp_path / "run", **QUIET)
        else:
            vaekit.train(tiny_config(str(tiny_images), tmp_path / "run"), callbacks=callbacks, pictures=False)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


@pytest.mark.parametrize("method", ["encode", "reconstruct"])
def test_encode_and_reconstruct_hints_say_what_they_take(method, runs):
    hints = typing.get_type_hints(getattr(vaekit.Run, method))
    assert {torch.Tensor, np.ndarray, list} <= set(typing.get_args(hints["x"]))
    assert {torch.Tensor, int, str} <= set(typing.get_args(hints["y"]))
    run, x = runs["cvae"], images(4)  # what the hints say runs: a list of items, one int or str label, tensors
    given = ((x.tolist(), 1), (x, "1"), (torch.from_numpy(x), torch.ones(4, dtype=torch.long)))
    out = [getattr(run, method)(items, y) for items, y in given]
    loc = [o if isinstance(o, torch.Tensor) else o.mean for o in out]
    assert all(torch.equal(loc[0], other) for other in loc[1:])


@pytest.mark.parametrize("method", ["encode", "reconstruct", "scores"])
def test_items_outside_the_likelihood_s_support_are_refused_as_evaluate_refuses_them(method, runs):
    run, x = runs["vae"], torch.from_numpy(images(4)) * 255  # floats 0..255 to a bernoulli run: neg_elbo ~1e4
    call = getattr(run, method, lambda x: anomaly_scores(run.model, x.numpy(), "neg_elbo"))
    with pytest.raises(vaekit.VaekitError, match=r"^data items: values in \[0, 255\] lie outside the bernoulli") as e:
        call(x)
    assert "\n" not in str(e.value)
    assert call(x / 255) is not None  # the same items in [0, 1]


def test_a_model_setting_given_to_fit_is_named_as_the_model_s_class_takes_it():
    deep = vaekit.DeepVAE((1, 4, 4), "bernoulli", groups=[1, 1], width=4, cell_width=4, latent_channels=1)
    with pytest.raises(vaekit.VaekitError, match=r"\(DeepVAE\(residual_posterior=\.\.\.\)\), or") as e:
        vaekit.fit(deep, images(), residual_posterior=True, **QUIET)  # was: vaekit.VAE(...), which takes no such
    assert "vaekit.VAE" not in str(e.value)
    for key, call in (("deep_groups", "DeepVAE(groups=...)"), ("checkpoint_cells", "DeepVAE(checkpoint_cells=...)")):
        with pytest.raises(vaekit.VaekitError, match=rf"build it with the setting \({re.escape(call)}\), or train"):
            refuse_unfit({f"model.{key}": 1}, deep, DEEP_SETTINGS)
    with pytest.raises(vaekit.VaekitError, match=r"\(vaekit.build_model\(hidden=\.\.\.\)\)"):
        refuse_unfit({"model.hidden": [8]}, model(), DEEP_SETTINGS)  # the VAE takes networks, not widths


def test_kl_balance_is_refused_for_a_ladder_built_with_one_level():
    ladder = vaekit.build_model(family="ladder", input_shape=[1, 4, 4], likelihood="bernoulli", latent_dims=[2])
    with pytest.raises(vaekit.VaekitError, match=r"^train.kl_balance cannot take effect: .*this model has one group"):
        vaekit.fit(ladder, images(), epochs=1, warmup_epochs=1, kl_balance=True, **QUIET)  # was: trained, unchanged


def test_fit_s_out_at_home_is_resumed_there(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir((tmp_path / "work").mkdir() or tmp_path / "work")
    vaekit.fit(model(), images(), out="~/r", epochs=1, warmup_epochs=4, **QUIET)
    assert "train.warmup_epochs 4 is longer than the run (train.epochs 1)" in capsys.readouterr().err  # as the CLI
    with pytest.raises(vaekit.VaekitError, match=r"^train.seed: a resumed run keeps .* \(0 in config.json, 5 asked"):
        vaekit.fit(model(), images(), out="~/r", epochs=2, resume=True, seed=5, **QUIET)  # was: ./~/r's config.json
    run = vaekit.fit(model(), images(), out="~/r", epochs=2, resume=True, **QUIET)
    assert (
        run.path == tmp_path / "r"
        and [r["epoch"] for r in run.history] == [1, 2]
        and not (tmp_path / "work" / "~").exists()
    )
