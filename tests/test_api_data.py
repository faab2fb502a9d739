"""The user's data given to a run's API calls from Python: latent_map reads labels as the run reads them (and
takes a Dataset), fit says when it renumbers labels, a DataLoader's sampler or collate_fn is refused wherever
items are read, evaluate reads dict items by x_key/y_key and records the items given as split "all"."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler, TensorDataset

import vaekit
from vaekit.viz.latent_maps import _labels

RNG = np.random.default_rng(1)
Y = np.arange(40) % 3 + 1  # classes 1, 2, 3: fit renumbers them 0, 1, 2
X = (RNG.standard_normal((40, 6)) + Y[:, None]).astype(np.float32)
FIT = dict(epochs=1, progress=False, pictures=False)


def _vae() -> vaekit.VAE:
    return vaekit.VAE(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(2, 6), latent_dim=2, likelihood="gaussian")


@pytest.fixture(scope="module")
def renumbered() -> vaekit.Run:
    """An unconditional run of labels 1, 2, 3 (its classes "1", "2", "3", label numbers 0..2)."""
    torch.manual_seed(0)
    return vaekit.fit(_vae(), (X, Y), **FIT)


def test_fit_says_in_one_line_that_it_renumbers_labels(capsys):
    vaekit.fit(_vae(), (X, Y), **FIT)
    said = [line for line in capsys.readouterr().err.splitlines() if "run.classes" in line]
    assert said == ["vaekit: data: labels 1, 2, 3 are classes 0, 1, 2 (run.classes): integers given to the run "
                    "later are these numbers, text its class names"]  # fmt: skip
    vaekit.fit(_vae(), (X, Y - 1), **FIT)  # 0, 1, 2: nothing renumbered, nothing said
    assert "run.classes" not in capsys.readouterr().err


def test_latent_map_reads_labels_as_the_run_reads_them(renumbered):
    assert renumbered.classes == ["1", "2", "3"]
    numbers, names = _labels(renumbered, np.array(["3", "1", "2"]), None)  # names: by name
    assert numbers.tolist() == [2, 0, 1] and names == ["1", "2", "3"]
    numbers, names = _labels(renumbered, torch.tensor([2, 0]), None)  # integers: label numbers, named as the run's
    assert numbers.tolist() == [2, 0] and names == ["1", "2", "3"]
    assert _labels(renumbered, np.array([0.5, 1.25]), None)[0].tolist() == [0.5, 1.25]  # a measurement, as it is


@pytest.mark.parametrize("y,bad", [(Y, 3), (Y - 2, -1)])
def test_latent_map_refuses_a_label_no_class_has_in_one_line_listing_the_classes(renumbered, y, bad):
    """Labels 1, 2, 3 as given to fit: 3 is no label number of the run's (its legend read "2", "3", "3")."""
    with pytest.raises(vaekit.VaekitError, match=rf"^y: label {bad}: .* 0..2 for its classes 1, 2, 3") as e:
        vaekit.latent_map(renumbered, X, y)
    assert "\n" not in str(e.value)


def test_latent_map_takes_a_dataset_and_its_labels(renumbered):
    data = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y - 1))
    assert vaekit.latent_map(renumbered, data, None).size[0] > 0
    assert vaekit.latent_map(renumbered, DataLoader(data, batch_size=8), Y - 1).size[0] > 0
    with pytest.raises(vaekit.VaekitError, match=r"^x \(a DataLoader\): its collate_fn cannot take effect"):
        vaekit.latent_map(renumbered, DataLoader(data, batch_size=8, collate_fn=lambda b: b), None)


def _loaders() -> list[DataLoader]:
    data = TensorDataset(torch.from_numpy(X))
    return [
        DataLoader(data, batch_size=8, collate_fn=lambda b: (torch.stack([t[0] for t in b]) * 0 + 1000,)),
        DataLoader(data, batch_size=8, sampler=SubsetRandomSampler(range(5))),
    ]


@pytest.mark.parametrize("i,refused", [(0, "its collate_fn"), (1, r"its sampler \(SubsetRandomSampler\)")])
def test_a_loader_s_sampler_or_collate_fn_is_refused_by_evaluate_and_val_data(renumbered, i, refused):
    with pytest.raises(vaekit.VaekitError, match=rf"^data \(a DataLoader\): {refused} cannot take effect"):
        vaekit.evaluate(renumbered, _loaders()[i], k=2)
    with pytest.raises(vaekit.VaekitError, match=rf"^val_data \(a DataLoader\): {refused} cannot take effect"):
        vaekit.fit(_vae(), X, val_data=_loaders()[i], **FIT)


class Dicts(Dataset):
    """Dict items under keys of the user's own: "img" and "target" (class names)."""

    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int) -> dict:
        return {"img": X[i], "target": "abc"[Y[i] - 1], "id": f"x{i}"}


def test_evaluate_and_write_report_read_dict_items_by_x_key_and_y_key(tmp_path):
    torch.manual_seed(0)
    conditional = vaekit.ConditionalVAE(
        nn.Linear(6, 8), nn.Linear(5, 6), latent_dim=2, num_classes=3, likelihood="gaussian"
    )
    run = vaekit.fit(conditional, Dicts(), x_key="img", y_key="target", **FIT)
    by_keys = vaekit.evaluate(run, Dicts(), k=4, x_key="img", y_key="target")
    as_pair = vaekit.evaluate(run, (X, np.array(list("abc"))[Y - 1]), k=4)
    assert by_keys["n"] == 40 and by_keys["elbo"] == as_pair["elbo"]
    out = vaekit.write_report(run, Dicts(), out=tmp_path / "r.html", k=4, x_key="img", y_key="target")
    assert out.is_file()
    with pytest.raises(vaekit.VaekitError, match="x_key and y_key name the entries of dict items"):
        vaekit.evaluate(run, (X, Y - 1), k=4, x_key="img")


def test_evaluate_records_items_given_as_split_all_with_no_probe(renumbered):
    given = vaekit.evaluate(renumbered, (X, Y), k=2)
    assert given["split"] == "all" and given["n"] == 40 and given["probe_accuracy"] is None
    assert vaekit.evaluate(renumbered, X, split="all", k=2)["elbo"] == vaekit.evaluate(renumbered, X, k=2)["elbo"]
    with pytest.raises(vaekit.VaekitError, match="items given are evaluated whole"):
        vaekit.evaluate(renumbered, X, split="val", k=2)
