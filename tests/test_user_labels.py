"""Labels as the user gives them: class numbers a model fixes are kept, other numbers and names renumbered and
named; a label is one class given as a number or as text; labels a model cannot take are one line."""

from __future__ import annotations

import json

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
    """val_data's labels are given in data's form and numbered as training numbered data's."""
    y02 = np.where(Y == 1, 0, Y)  # class 1 absent
    ds = from_user((X, y02), (X[:6], y02[:6]), labels=True, num_classes=num_classes)
    assert ds.train.y.unique().tolist() == y and ds.classes == classes and ds.num_classes == k
    assert torch.equal(ds.val.y, ds.train.y[:6])  # val_data's labels numbered as training's


@pytest.mark.parametrize(
    "y, val_y, match",
    [
        (Y + 2, None, r"^data: label 4 is outside the model's classes 0..2: give the labels as names"),
        (Y - 1, None, r"^data: label -1 is outside the model's classes 0..2: give the labels as names"),
        (np.array(list("abcd"))[np.arange(60) % 4], None, r"^data: the labels name 4 classes; the model has 3$"),
        (Y, Y[:6] + 1, r"^val_data: label 3 is outside the model's classes 0..2$"),
    ],
)
def test_labels_outside_the_classes_a_model_fixes_are_refused_in_one_line(y, val_y, match):
    val = None if val_y is None else (X[:6], val_y)
    with pytest.raises(vaekit.VaekitError, match=match):
        from_user((X, y), val, labels=True, num_classes=3)


FORMS = {  # a label (or labels) as the user may give it
    "int": lambda v: v,
    "array": lambda v: np.array([v]),
    "list": lambda v: [v],
    "tensor": lambda v: torch.tensor(v) if isinstance(v, int) else None,
    "object": lambda v: np.array([v], dtype=object),
    "series": lambda v: __import__("pandas").Series([v]),
    "category": lambda v: __import__("pandas").Series([v], dtype="category"),
    "string": lambda v: __import__("pandas").Series([v], dtype="string") if isinstance(v, str) else None,
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("label", [2, "4", " 4"], ids=["number", "name", "spaced"])
def test_integers_are_label_numbers_and_text_names_in_every_form(renumbered, form, label):
    """Labels 2, 3, 4 renumbered 0..2: label number 2 and class name "4" are one class, however given."""
    if form in ("series", "category", "string"):
        pytest.importorskip("pandas")
    y = FORMS[form](label)
    if y is None:
        pytest.skip("a tensor holds no text; a Series of string dtype no number")
    assert renumbered.classes == ["2", "3", "4"] and renumbered.labels(y, 2).tolist() == [2, 2]
    torch.manual_seed(0)
    drawn = renumbered.sample(2, label=y)
    torch.manual_seed(0)
    assert torch.equal(drawn, renumbered.sample(2, label=torch.tensor([2, 2])))
    assert torch.equal(renumbered.reconstruct(X[:1], y), renumbered.reconstruct(X[:1], np.array([2])))


@pytest.mark.parametrize(
    "y, match",
    [
        (4, r"^label 4: this run's label numbers are 0..2 for its classes 2, 3, 4 in turn; give a class name as text$"),
        ("1", r"^label '1': no class has this name; this run's classes are 2, 3, 4$"),
        (["4", "3", "5"], r"^label '5': no class has this name; this run's classes are 2, 3, 4$"),
        (1.5, r"^label 1.5: labels are whole numbers \(label numbers\) or class names$"),
        (np.array(["4", None], dtype=object), r"^labels: item 1's label is None, neither a class name \(text\) nor"),
        (np.array(["4", np.nan], dtype=object), r"^labels: item 1's label is nan, neither a class name"),
        (["4", 2], r"^labels: text \(item 0: '4'\) mixed with numbers \(item 1: 2\): give every label as a cl"),
        (np.array([1.0], dtype=object), r"^labels: item 0's label is 1.0, a float: labels are integers \(label n"),
        (-(2**70), r"^labels: item 0's label -1180591620717411303424 is no label number \(beyond int64\)$"),
        (2**63, r"^label 9223372036854775808: this run's label numbers are 0..2 for"),  # uint64, not wrapped
    ],
)
def test_a_label_that_is_no_class_is_refused_in_one_line(renumbered, y, match):
    with pytest.raises(vaekit.VaekitError, match=match) as e:
        renumbered.labels(y, 3)
    assert e.value.key == "label"


def test_bools_are_label_numbers_0_and_1_in_training_and_after(renumbered):
    from vaekit.data.labels import encode_labels

    yb = Y[:12] == 1
    assert encode_labels(yb, "data")[0].tolist() == renumbered.labels(yb, 12).tolist() == yb.astype(int).tolist()
    assert renumbered.labels(True, 1).tolist() == [1]
    given = [vaekit.evaluate(renumbered, (X[:12], y), k=2)["elbo"] for y in (yb, yb.astype(int))]
    assert given[0] == given[1]


def test_text_is_a_name_even_where_it_reads_as_a_number():
    for y, classes in ((["01", "1", "2"], ["01", "1", "2"]), (["1e1", "10", "nan"], ["10", "1e1", "nan"])):
        assert from_user((X, np.array(y * 20)), labels=True).classes == classes  # not 1, 1, 2 nor 10, 10, NaN


def test_a_file_s_text_numbers_are_numbers_and_evaluate_reads_a_run_s_own_labels_by_its_names(tmp_path):
    """Text labels of a .npz file that all read as numbers are numbers, as a CSV file's (not names sorted as text,
    '10' before '2'); evaluate on a run's own data numbers its labels as the run does (here by classes.json)."""
    np.savez(tmp_path / "t.npz", x=X, y=(np.arange(60) % 12).astype(str))
    data = vaekit.load_dataset(str(tmp_path / "t.npz"))
    assert data.classes is None and data.num_classes == 12
    settings = dict(hidden=[8], latent_dim=2, likelihood="bernoulli", epochs=1, progress=False, pictures=False)
    run = vaekit.train(data=str(tmp_path / "t.npz"), model="cvae", out=str(tmp_path / "run"), **settings)
    names = sorted(str(i) for i in range(12))  # a run that numbered them as text: '0', '1', '10', '11', '2', ...
    (tmp_path / "run" / "classes.json").write_text(json.dumps({"classes": names}))
    run = vaekit.load_run(str(tmp_path / "run"))
    assert vaekit.evaluate(run, k=2)["elbo"] == vaekit.evaluate(run, data, k=2)["elbo"]


def test_labels_are_one_per_item_and_val_data_s_one_kind(renumbered):
    for y in (1, "a"):
        with pytest.raises(vaekit.VaekitError, match=rf"^data: labels are one per item: got the one label {y!r} fo"):
            from_user((X, y), labels=True)
    with pytest.raises(vaekit.VaekitError, match=r"^val_data: text \(item 0: '2'\) mixed with numbers \(item 1: 3\)"):
        from_user((X, Y), (X[:2], ["2", 3]), labels=True)
    with pytest.raises(vaekit.VaekitError, match=r"^data: text \(item 1: 'a'\) mixed with numbers \(item 0: 2\)"):
        from_user([{"x": X[i], "label": v} for i, v in enumerate([2, "a", "b"])], labels=True)  # a Dataset's


class Pairs(torch.utils.data.Dataset):
    """A map-style Dataset of (x, y) pairs, y an int or a str."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), self.y[i].item()


@pytest.mark.parametrize("given", ["pair", "dataset", "dicts"])
def test_evaluate_reads_label_numbers_and_names_as_the_run_s_methods_do(renumbered, given):
    """vaekit.evaluate(run, (x, y)) reads integers as label numbers, as run.encode and iwae_bound do (not as
    class names first, where 2 was class "2", label 0), and text by name."""
    x, y = X[:12], Y[:12]
    wrap = {
        "pair": lambda y: (x, y),
        "dataset": lambda y: Pairs(x, y),
        "dicts": lambda y: [{"x": xi, "label": yi.item()} for xi, yi in zip(x, y)],
    }[given]
    by_number = vaekit.evaluate(renumbered, wrap(y), k=2)["elbo"]
    assert vaekit.evaluate(renumbered, wrap(np.array(renumbered.classes)[y]), k=2)["elbo"] == by_number
    assert vaekit.evaluate(renumbered, wrap(np.zeros_like(y)), k=2)["elbo"] != by_number  # the labels count
    with pytest.raises(vaekit.VaekitError, match=r"^label 4: this run's label numbers are 0\.\.2 "):
        vaekit.evaluate(renumbered, wrap(y + 2), k=2)  # the file's labels: give them as text


def test_a_dataset_s_labels_are_numbered_by_name_where_the_run_s_classes_are_numbers(renumbered):
    """A Dataset of labels 0, 1 without names (a file's labels 0 and 1) is no label 0, 1 of classes 2, 3, 4."""
    from vaekit.data.core import Dataset, Split

    s = Split(torch.from_numpy(X[:6]), torch.tensor([0, 1] * 3))
    named = vaekit.evaluate(renumbered, Dataset("d", s, s, s, (1, 4, 4), "image", 2, ["3", "4"]), k=2)["elbo"]
    assert named == vaekit.evaluate(renumbered, (X[:6], ["3", "4"] * 3), k=2)["elbo"]
    with pytest.raises(vaekit.VaekitError, match=r"^d: label '0' is none of the training data's classes \(2, 3, 4\)$"):
        vaekit.evaluate(renumbered, Dataset("d", s, s, s, (1, 4, 4), "image", 2), k=2)


@pytest.mark.parametrize("split", ["all", "test"])
def test_the_cli_reads_a_file_s_labels_by_name(renumbered, split, tmp_path, capsys):
    """Another file's labels 0, 1 are names "0", "1", no class of the run (not its label numbers 0, 1)."""
    from vaekit.cli import main

    argv = ["anomaly", str(renumbered.path), "--split", split, "--score", "neg_elbo", "--samples", "2"]
    for y, said in ((Y % 2, "label '0' is none of the training data's classes (2, 3, 4)"), (Y % 2 + 3, None)):
        np.savez(tmp_path / "f.npz", x=X, y=y)
        assert main([*argv, "--data", str(tmp_path / "f.npz"), "--out", str(tmp_path / "a.csv")]) == (2 if said else 0)
        assert said in capsys.readouterr().err if said else (tmp_path / "a.csv").exists()


@pytest.mark.parametrize(
    "label, said",
    [
        (" 4", None),  # a class name, spaces stripped: label number 2
        ("1", "label '1': no class has this name; this run's classes are 2, 3, 4 (--label)"),  # no number
        ("0", "label '0': no class has this name; this run's classes are 2, 3, 4 (--label)"),
    ],
)
def test_the_cli_label_is_a_class_name(renumbered, label, said, tmp_path, capsys):
    from vaekit.cli import main

    out = tmp_path / "s.npy"
    assert main(["sample", str(renumbered.path), "--n", "2", "--label", label, "--out", str(out)]) == (2 if said else 0)
    if said:
        assert capsys.readouterr().err.strip() == f"vaekit: error: {said}" and not out.exists()
        return
    torch.manual_seed(0)  # the CLI's default seed
    np.testing.assert_array_equal(np.load(out), renumbered.sample(2, label=2).numpy())


@pytest.mark.parametrize(
    "name, classes, label",
    [(" 2", ["0", "2", "5"], 1), ("1", ["0", "2", "5"], None), ("0", ["1", "2", "x"], None), ("2", None, 2)]
    + [("-1", None, None), ("02", None, None), ("cat", None, None)],
)
def test_a_name_is_read_by_name_alone(name, classes, label):
    from vaekit.data.core import label_number  # as the CLI's --normal reads each name

    assert label_number(name, classes) == label


@pytest.mark.parametrize("form", ["object", "series", "category", "string"])
def test_names_in_an_object_array_or_a_series_are_class_names(form):
    pd = pytest.importorskip("pandas")
    names = np.array(list("bac"))[Y]
    y = {
        "object": lambda: names.astype(object),
        "series": lambda: pd.Series(names),
        "category": lambda: pd.Series(names, dtype="category"),
        "string": lambda: pd.Series(names, dtype="string"),
    }[form]()
    ds, plain = from_user((X, y), labels=True), from_user((X, names), labels=True)  # read as an array of str
    assert ds.classes == plain.classes == ["a", "b", "c"] and torch.equal(ds.train.y, plain.train.y)
    missing = {"object": "None", "series": "(None|nan)", "category": "nan", "string": "<NA>"}[form]  # pandas 3: NaN
    for bad in (None, np.nan):
        y = names.astype(object)
        y[7] = bad
        y = y if form == "object" else pd.Series(y, dtype=None if form == "series" else form)
        said = "nan" if bad is not None and form in ("object", "series") else missing
        with pytest.raises(vaekit.VaekitError, match=rf"^data: item 7's label is {said}, neither a class name"):
            from_user((X, y), labels=True)


def test_iwae_bound_reads_float_items_in_the_model_s_dtype_and_refuses_others():
    torch.manual_seed(0)
    model = vaekit.build_model(input_shape=(1, 4, 4), hidden=[8], latent_dim=2, likelihood="bernoulli").eval()
    x, eps = torch.from_numpy(X[:4]), torch.randn(3, 2)
    want = vaekit.iwae_bound(model, x, eps=eps)
    for given in (x.double(), X[:4].astype(np.float64), x.half()):
        torch.testing.assert_close(vaekit.iwae_bound(model, given, eps=eps), want)
    for given in ((x * 255).to(torch.uint8), (X[:4] * 255).astype(np.uint8)):
        with pytest.raises(vaekit.VaekitError, match=r"^iwae_bound: x has dtype torch.uint8, not floating point: sc"):
            vaekit.iwae_bound(model, given, eps=eps)


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


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_encode_writes_a_conditional_runs_codes_of_each_item_with_its_label(renumbered, tmp_path, suffix):
    from vaekit.cli import main

    out = tmp_path / f"codes{suffix}"
    assert main(["encode", str(renumbered.path), "--out", str(out)]) == 0  # every item, in file order
    if suffix == ".csv":
        table = np.genfromtxt(out, delimiter=",", names=True)
        label, loc = table["label"], np.stack([table["loc_0"], table["loc_1"]], 1)
    else:
        codes = np.load(out)
        label, loc = codes["label"], codes["loc"]
    assert label.tolist() == Y.tolist()  # the file's labels 2, 3, 4 as the run numbers them, 0..2
    x, y = torch.as_tensor(X), torch.as_tensor(Y)
    np.testing.assert_allclose(loc, renumbered.encode(x, y).mean.numpy(), atol=1e-5)  # q(z|x, y)
    assert not np.allclose(loc, renumbered.encode(x, (y + 1) % 3).mean.numpy(), atol=1e-3)


def test_encode_refuses_data_without_labels_for_a_conditional_run(renumbered, tmp_path, capsys):
    from vaekit.cli import main

    np.save(tmp_path / "x.npy", X)
    assert main(["encode", str(renumbered.path), "--data", str(tmp_path / "x.npy"), "--out", "c.csv"]) == 2
    err = capsys.readouterr().err
    assert "this run is conditional: its codes q(z|x, y) need each item's label, and this data has none" in err
    assert not (tmp_path / "c.csv").exists()


def test_build_model_says_to_pass_num_classes_for_a_conditional_vae():
    with pytest.raises(vaekit.VaekitError, match=r"pass num_classes=K") as e:
        vaekit.build_model(family="cvae", input_shape=(1, 4, 4), likelihood="bernoulli")
    assert e.value.key == "model.num_classes"


def unnamed(monkeypatch) -> None:
    """Runs that record no class names: labels are their numbers 0..K-1 (a run of labels 0, 1, 2)."""
    monkeypatch.setattr(vaekit.Run, "classes", property(lambda run: None))


def test_anomaly_eval_says_why_a_conditional_run_cannot_score_classes_it_never_learned(
    renumbered, tmp_path, capsys, monkeypatch
):
    from vaekit.cli import main

    unnamed(monkeypatch)
    np.savez(tmp_path / "six.npz", x=X, y=np.arange(60) % 6)  # label numbers 0..5: 3..5 are none of the run's
    argv = ["anomaly-eval", str(renumbered.path), "--data", str(tmp_path / "six.npz"), "--normal", "0,1,2"]
    assert main([*argv, "--score", "neg_elbo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "label 5 is none of this conditional run's classes 0..2" in err
    assert "how typical an item is of its own class" in err and "needs an unconditional run" in err


def test_evaluate_on_labels_of_one_class_says_so(renumbered, tmp_path, capsys, monkeypatch):
    import shutil

    from vaekit.cli import main

    unnamed(monkeypatch)
    run = shutil.copytree(renumbered.path, tmp_path / "run")  # evaluate writes eval.json into the run
    np.savez(tmp_path / "one.npz", x=X, y=np.zeros(60, dtype=np.int64))
    assert main(["evaluate", str(run), "--data", str(tmp_path / "one.npz"), "--iw-samples", "2"]) == 0
    assert "probe n/a (one class)" in capsys.readouterr().out
