"""Labels as the user gives them: class numbers a model fixes are kept, other numbers and names renumbered and
named; a label is one class given as a number or as text; labels a model cannot take are one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

import vaekit
from vaekit.data.user import as_items, from_user, loader_settings
from vaekit.evaluation.scores import anomaly_scores

X = (np.random.default_rng(0).random((60, 1, 4, 4)) > 0.5).astype(np.float32)
Y = np.arange(60) % 3  # classes 0, 1, 2


@pytest.fixture(scope="module")
def renumbered(tmp_path_factory) -> vaekit.Run:
    """A conditional run of a data file whose labels are 2, 3, 4: the data sets the classes, numbered 0..2."""
    path = tmp_path_factory.mktemp("labels") / "xy.npz"
    np.savez(path, x=X, y=Y + 2)
    settings = dict(hidden=[8], latent_dim=2, likelihood="bernoulli", epochs=1, progress=False, pictures=False)
    return vaekit.train(data=str(path), model="cvae", out=str(path.parent / "run"), **settings)


class Undeclared(nn.Module):
    """A conditional model whose classes are fixed inside, with no num_classes to read (as a user's may be)."""

    needs_labels = True

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.latent_dims = inner, inner.latent_dims

    def forward(self, x, y=None):
        return self.inner(x, y)

    def encode(self, x, y=None):
        return self.inner.encode(x, y)

    def decode(self, z, y=None):
        return self.inner.decode(z, y)

    def prior(self, y=None):
        return self.inner.prior(y)


@pytest.mark.parametrize("num_classes, y, classes, k", [(3, [0, 2], None, 3), (None, [0, 1], ["0", "2"], 2)])
def test_class_numbers_a_model_fixes_are_kept_and_others_renumbered(num_classes, y, classes, k):
    y02 = np.where(Y == 1, 0, Y)  # class 1 absent
    ds = from_user((X, y02), (X[:6], y02[:6]), labels=True, num_classes=num_classes)
    assert ds.train.y.unique().tolist() == y and ds.classes == classes and ds.num_classes == k
    assert torch.equal(ds.val.y, ds.train.y[:6])  # val_data's labels numbered as training's


@pytest.mark.parametrize(
    "y, val_y, match",
    [
        (Y + 2, None, r"^data: label 4 is outside the model's classes 0..2$"),
        (Y - 1, None, r"^data: label -1 is outside the model's classes 0..2$"),
        (np.array(list("abcd"))[np.arange(60) % 4], None, r"^data: the labels name 4 classes; the model has 3$"),
        (Y, Y[:6] + 1, r"^val_data: label 3 is outside the model's classes 0..2$"),
    ],
)
def test_labels_outside_the_classes_a_model_fixes_are_refused_in_one_line(y, val_y, match):
    val = None if val_y is None else (X[:6], val_y)
    with pytest.raises(vaekit.VaekitError, match=match):
        from_user((X, y), val, labels=True, num_classes=3)


def test_a_label_is_one_class_as_a_number_or_as_text(renumbered):
    assert renumbered.classes == ["2", "3", "4"] and renumbered.config.model.num_classes == 3
    assert renumbered.labels(4, 2).tolist() == renumbered.labels("4", 2).tolist() == [2, 2]
    assert renumbered.labels(np.int64(3), 1).tolist() == [1]
    torch.manual_seed(0)
    by_number = renumbered.sample(2, label=4)
    torch.manual_seed(0)
    assert torch.equal(by_number, renumbered.sample(2, label="4"))


@pytest.mark.parametrize("wrap, match", [(False, "this model's classes are 0..2"), (True, "this model fails on it")])
def test_anomaly_scores_refuse_labels_a_model_cannot_take_in_one_line(renumbered, wrap, match):
    model = Undeclared(renumbered.model) if wrap else renumbered.model
    scores = anomaly_scores(model, X[:4], "neg_elbo", samples=2, y=Y[:4])
    assert np.isfinite(scores["neg_elbo"]).all()
    for y, why in ((Y[:4] + 2, f"^label 4: {match}"), (Y[:4] - 1, "^label -1: this model's classes are")):
        with pytest.raises(vaekit.VaekitError, match=why):
            anomaly_scores(model, X[:4], "neg_elbo", samples=2, y=y)


def test_a_loader_of_an_iterable_dataset_gets_advice_that_can_work():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(torch.from_numpy(X))

    with pytest.raises(vaekit.VaekitError, match=r"iterable-style dataset .* map-style Dataset") as e:
        loader_settings(DataLoader(Stream(), batch_size=8), None, None)
    assert "Subset" not in str(e.value)  # a Subset of an iterable dataset cannot be indexed either


ITEMS = TensorDataset(torch.from_numpy(X))


@pytest.mark.parametrize(
    "loader,refused",
    [
        (DataLoader(ITEMS, batch_size=None), r"^DataLoader: batch_size=None \(its items one by one, unbatched\)"),
        (
            DataLoader(ITEMS, batch_sampler=BatchSampler(SequentialSampler(ITEMS), 8, False)),
            "^DataLoader: a batch_sampler",
        ),
        (
            DataLoader(ITEMS, batch_size=8, sampler=DistributedSampler(ITEMS, num_replicas=2, rank=0)),
            "DistributedSampler cannot take effect: vaekit shards the data across the processes itself",
        ),
        (DataLoader(ITEMS, batch_size=8, sampler=RandomSampler(ITEMS, replacement=True)), "with replacement"),
        (DataLoader(ITEMS, batch_size=8, worker_init_fn=print), "its worker_init_fn cannot take effect"),
        (DataLoader(ITEMS, batch_size=8, shuffle=True, generator=torch.Generator()), "generator .* pass seed"),
    ],
    ids=["unbatched", "batch_sampler", "distributed", "replacement", "worker_init_fn", "generator"],
)
def test_a_loader_setting_vaekit_cannot_honour_is_refused_in_one_line(loader, refused):
    with pytest.raises(vaekit.VaekitError, match=refused) as e:
        loader_settings(loader, None, None)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "kw,said",
    [({"shuffle": True}, []), ({}, []), ({"shuffle": True, "drop_last": True}, ["drop_last=True"])],
)
def test_a_loader_s_order_vaekit_replaces_is_said_once(kw, said, capsys):
    assert loader_settings(DataLoader(ITEMS, batch_size=8, **kw), None, None) == (8, 0)
    err = capsys.readouterr().err
    assert err.count("vaekit: DataLoader:") == (1 if said else 0) and all(f"{s} not kept" in err for s in said)


@pytest.mark.parametrize("rank,notes", [(None, 1), ("0", 1), ("1", 0)])
def test_a_data_note_is_said_by_rank_0_alone(rank, notes, monkeypatch, capsys):
    """Data notes come before the process group exists: torchrun's RANK decides, the same for every note."""
    if rank is not None:
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
    x = np.zeros((3, 8, 8, 1), np.uint8)  # channels-last images, and uint8 holding only 0: two notes
    assert as_items(x, "data").shape == (3, 1, 8, 8)
    err = capsys.readouterr().err
    assert err.count("channels-last") == notes and err.count("vaekit: ") == 2 * notes


def test_iwae_bound_refuses_labels_outside_the_model_s_classes_in_one_line():
    model = vaekit.build_model(
        family="cvae", input_shape=(1, 4, 4), hidden=[8], latent_dim=2, num_classes=3, likelihood="bernoulli"
    )
    x = torch.rand(4, 1, 4, 4).round()
    with pytest.raises(vaekit.VaekitError, match=r"^label 4: this model's classes are 0..2$"):
        vaekit.iwae_bound(model, x, k=2, y=torch.tensor([0, 1, 2, 4]))


def test_labels_numbered_as_the_run_keep_each_items_row_and_draw():
    """Renumbering another file's labels as training did leaves which items they are (fixed binarisation's key)."""
    from types import SimpleNamespace

    from vaekit.data.core import Dataset, Split
    from vaekit.evaluation.labels import numbered_as_run

    s = Split(torch.rand(3, 4), torch.tensor([0, 1, 0]), rows=np.array([7, 8, 9]), part=1, fixed=True)
    data = Dataset("t", s, s, s, (4,), "table", 2, classes=["b", "a"])
    run = SimpleNamespace(classes=["a", "b"], model=SimpleNamespace(needs_labels=False))
    t = numbered_as_run(run, data).test
    assert t.y.tolist() == [1, 0, 1] and t.rows.tolist() == [7, 8, 9] and t.part == 1 and t.fixed
