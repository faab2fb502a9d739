"""Labels at their edges: a class with no training item, a file's numbers read by a run's names, a Dataset's bad
label named by its item, the rows of encode's split all, and the one lines a label out of range gets."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.data.core import check_trained, untrained_classes
from vaekit.data.labels import encode_labels, label_numbers, number_labels, plain_labels
from vaekit.data.torch_items import TorchSource
from vaekit.errors import VaekitError

from .conftest import train_argv

X = (np.random.default_rng(0).random((60, 1, 4, 4)) > 0.5).astype(np.float32)
NAMES = np.array(["zero", "one", "two"])


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> tuple:
    """(a one-epoch cvae run of labels named zero, one, two; a file of the same items with labels 0, 1, 2)."""
    folder = tmp_path_factory.mktemp("named")
    np.savez(folder / "names.npz", x=X, y=NAMES[np.arange(60) % 3])
    np.savez(folder / "numbers.npz", x=X, y=np.arange(60) % 3)
    run = folder / "run"
    assert main(train_argv(folder / "names.npz", run, "--model", "cvae", "--hidden", "8", "--latent-dim", "2")) == 0
    return run, folder / "numbers.npz"


def test_a_class_with_no_training_item_is_refused_for_a_conditional_model_and_noted_for_others(tmp_path, capsys):
    """Class "nine" only in the official test file: no model class learns it unsaid."""
    y = NAMES[np.arange(60) % 3]
    np.savez(tmp_path / "split.npz", x_train=X, y_train=y, x_test=X[:6], y_test=np.array(["nine"] * 6))
    data = load_dataset(str(tmp_path / "split.npz"))
    assert data.classes == ["nine", "one", "two", "zero"] and untrained_classes(data) == [0]
    with pytest.raises(VaekitError, match=r"^split.npz: class nine has no item in the training split, so a cond.*"):
        check_trained(data, conditional=True)
    check_trained(data, conditional=False)
    assert "vaekit: split.npz: class nine has no item in the training split" in capsys.readouterr().err
    limited = load_dataset(str(tmp_path / "split.npz"), limit=2)  # two training items: one class at most
    assert len(untrained_classes(limited)) >= 2
    with pytest.raises(VaekitError, match=r"classes .* have no item .* a larger data.limit"):
        check_trained(limited, conditional=True)
    np.savez(tmp_path / "every.npz", x=X, y=y)
    check_trained(load_dataset(str(tmp_path / "every.npz")), conditional=True)  # every class trains: no word
    assert capsys.readouterr().err == ""


def test_a_files_numbers_are_refused_by_a_run_whose_classes_are_names(named_run, tmp_path, capsys):
    """docs/guides/data.md: a data file's labels are numbered by the run's names; 0..2 name none of them."""
    run, numbers = named_run
    why = "label '0' is none of the training data's classes (one, two, zero): the labels are numbers, the classes"
    for split in ("all", "test"):
        assert main(["encode", str(run), "--data", str(numbers), "--split", split, "--out", str(tmp_path / "c.csv")])
        assert why in capsys.readouterr().err
    with pytest.raises(VaekitError, match=r"^f: label '1' is none of .*: give the labels as those names$"):
        number_labels(np.array(["1", "2"]), "f", ["one", "two", "zero"])  # a file's numbers, read as text
    assert number_labels(np.array([2, 3]), "val_data", ["1", "2", "3"]).tolist() == [1, 2]  # names that are numbers


def test_a_datasets_bad_label_is_named_by_its_item_and_value():
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return torch.from_numpy(X[i]), None if i == 5 else i % 3

    with pytest.raises(VaekitError, match=r"^data: item 5's label is None, neither a class name"):
        plain_labels(TorchSource(Items(), "data").labels(), "data")


def test_encode_of_every_item_writes_the_rows_a_table_kept(tmp_path):
    path, run, out = tmp_path / "t.csv", tmp_path / "run", tmp_path / "c.csv"
    path.write_text("a,b\n" + "".join(f"{'' if i == 3 else i},{i % 5}\n" for i in range(30)))
    assert main(train_argv(path, run, "--set", "data.missing=drop", "--hidden", "8", "--latent-dim", "2")) == 0
    main(["encode", str(run), "--split", "all", "--out", str(out)])
    with open(out) as f:
        assert [int(r["index"]) for r in csv.DictReader(f)] == [i for i in range(30) if i != 3]


def test_labels_out_of_range_say_so_and_how_to_fix_it():
    with pytest.raises(VaekitError, match=r"^label '10' is out of range: this run's classes are 0..9$"):
        label_numbers("10", None, 10)  # sample --label 10 on a run of 0..9
    with pytest.raises(VaekitError, match=r"outside the model's classes 0..9: give the labels as names \(y.astype"):
        encode_labels(np.arange(1, 11), "data", 10)  # fit of labels 1..10, a model of 10 classes


def test_encode_names_each_items_class_where_the_run_names_its_classes(named_run, tmp_path):
    run, _ = named_run
    main(["encode", str(run), "--split", "test", "--out", str(tmp_path / "c.csv")])
    main(["encode", str(run), "--split", "test", "--out", str(tmp_path / "c.npz")])
    with open(tmp_path / "c.csv") as f:
        rows = list(csv.DictReader(f))
    names = ["one", "two", "zero"]  # the run's classes, label 0 first
    assert rows and [r["class_name"] for r in rows] == [names[int(r["label"])] for r in rows]
    with np.load(tmp_path / "c.npz") as z:
        assert z["classes"].tolist() == names and z["label"].tolist() == [int(r["label"]) for r in rows]


def test_a_class_only_in_the_test_file_is_refused_before_a_conditional_model_trains(tmp_path, capsys):
    y = NAMES[np.arange(60) % 3]
    np.savez(tmp_path / "split.npz", x_train=X, y_train=y, x_test=X[:6], y_test=np.array(["nine"] * 6))
    flags = ("--hidden", "8", "--latent-dim", "2")
    assert main(train_argv(tmp_path / "split.npz", tmp_path / "c", "--model", "cvae", *flags)) != 0
    assert "class nine has no item in the training split, so a conditional model" in capsys.readouterr().err
    assert main(train_argv(tmp_path / "split.npz", tmp_path / "u", *flags)) == 0
    assert "class nine has no item in the training split (more data" in capsys.readouterr().err


def test_fit_names_what_it_takes_for_a_class_only_its_val_data_has(capsys):
    x = (np.random.default_rng(0).random((12, 16)) > 0.5).astype(np.float32)
    model = vaekit.build_model(family="vae", input_shape=[16], likelihood="bernoulli", hidden=[8], latent_dim=2)
    vaekit.fit(model, (x, np.zeros(12, int)), val_data=(x[:4], np.array([0, 1, 0, 1])), epochs=1, progress=False)
    said = capsys.readouterr().err
    assert "class 1 has no item in the training split (more items of those classes in the data given to fit" in said
    assert "data.limit" not in said  # a setting fit does not take
