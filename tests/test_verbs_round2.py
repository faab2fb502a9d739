"""The output verbs on new data files: data checked before it is binarised, another file's every row, an --out
that would replace the data, seeds, table pictures' names, evaluation files per path, reconstruct's files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit.cli import main

from .conftest import tiny_config

SEED_LINE = "--seed must be a whole number in [0, 2**32)"


def table_text(n: int, seed: int, gap: int | None = None) -> str:
    """A CSV of n rows: columns a, b, c and a yes/no label (row ``gap``'s left empty)."""
    rng = np.random.default_rng(seed)
    rows = [
        f"{rng.normal():.4f},{rng.normal(5, 2):.4f},{rng.normal(-3):.4f},{'yes' if i % 2 else 'no'}" for i in range(n)
    ]
    if gap is not None:
        rows[gap] = rows[gap].rsplit(",", 1)[0] + ","
    return "a,b,c,label\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three runs of one epoch: grey 6x6 images (Bernoulli, binarised), a table with labels, a plain (N, 3) array;
    their training files, and new files: 30 images, 40 table rows, 40 array rows."""
    root = tmp_path_factory.mktemp("verbs")
    rng = np.random.default_rng(0)
    np.save(root / "imgs.npy", rng.random((40, 1, 6, 6)).astype(np.float32))
    np.save(root / "new_imgs.npy", rng.random((30, 1, 6, 6)).astype(np.float32))
    (root / "tab.csv").write_text(table_text(60, 0))
    (root / "new.csv").write_text(table_text(40, 1))
    np.save(root / "arr.npy", rng.normal(size=(60, 3)).astype(np.float32))
    np.save(root / "new_arr.npy", rng.normal(size=(40, 3)).astype(np.float32))
    out = {"root": root}
    for name, spec in (("img", "imgs.npy"), ("tab", "tab.csv"), ("arr", "arr.npy")):
        out[name] = vaekit.train(tiny_config(str(root / spec), root / name, epochs=1), pictures=False).path
    return out


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("verb", ["encode", "anomaly", "reconstruct", "evaluate"])
@pytest.mark.parametrize("values", [16.0, -0.01], ids=["digits", "negative"])
def test_data_outside_the_support_is_refused_before_it_is_binarised(runs, tmp_path, capsys, verb, values):
    x = np.load(runs["root"] / "new_imgs.npy")
    x[3, 0, 2, 2] = values
    np.save(tmp_path / "bad.npy", x)
    out = {"encode": ["--out", tmp_path / "c.npz"], "anomaly": ["--out", tmp_path / "s.csv", "--score", "neg_elbo"]}
    out |= {"reconstruct": ["--out", tmp_path / "r.npy"], "evaluate": ["--iw-samples", "2"]}
    code, _, err = cli(capsys, verb, runs["img"], "--data", tmp_path / "bad.npy", *out[verb])
    assert code == 2 and "lie outside the bernoulli likelihood's support [0, 1]" in err
    assert not list(tmp_path.glob("[csr].*")) and not list(runs["img"].glob("eval-bad*"))


def test_pictures_of_another_file_take_its_every_row(runs, tmp_path, capsys):
    new = runs["root"] / "new_imgs.npy"  # 30 items: its seeded test split would hold 3
    assert (
        cli(capsys, "interpolate", runs["img"], "--data", new, "--items", "0,29", "--out", tmp_path / "i.png")[0] == 0
    )
    assert cli(capsys, "traverse", runs["img"], "--data", new, "--item", "29", "--out", tmp_path / "t.png")[0] == 0
    flags = ["--split", "all", "--out", tmp_path / "m.png"]
    assert cli(capsys, "latent-map", runs["img"], "--data", new, *flags)[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["encode", "img", "--data", "new_imgs.npy", "--out", "new_imgs.npy"],
        ["encode", "img", "--out", "imgs.npy"],  # the run's training file
        ["anomaly", "tab", "--data", "new.csv", "--score", "neg_elbo", "--out", "new.csv"],
        ["reconstruct", "arr", "--data", "new_arr.npy", "--out", "arr.npy"],
        ["sample", "tab", "--n", "3", "--out", "tab.csv"],
    ],
    ids=["encode-data", "encode-training", "anomaly", "reconstruct", "sample"],
)
def test_an_out_naming_the_data_is_refused(runs, capsys, argv):
    verb, run, *rest = argv
    root = runs["root"]
    named = [str(root / a) if "." in a else a for a in rest]
    target = Path(named[-1])
    before = target.read_bytes()
    code, _, err = cli(capsys, verb, runs[run], *named)
    assert code == 2 and "--out" in err and "name another file" in err and len(err.splitlines()) == 1
    assert target.read_bytes() == before


@pytest.mark.parametrize("verb", ["sample", "evaluate", "report", "quality", "anomaly", "anomaly-eval"])
@pytest.mark.parametrize("seed", ["-1", str(2**32), "99999999999999999999"])
def test_every_verb_that_takes_a_seed_checks_it(runs, tmp_path, capsys, verb, seed):
    out = {"sample": ["--out", tmp_path / "s.png"], "anomaly": ["--out", tmp_path / "a.csv"]}
    code, _, err = cli(capsys, verb, runs["img"], "--seed", seed, *out.get(verb, []))
    assert code == 2 and SEED_LINE in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("verb", ["interpolate", "traverse"])
def test_table_pictures_name_the_columns(runs, tmp_path, capsys, monkeypatch, verb):
    import vaekit.viz.figures as figures

    seen = {}
    save = {"interpolate": "save_interpolation", "traverse": "save_traversal"}[verb]
    monkeypatch.setattr(figures, save, lambda *a, **k: seen.update(columns=a[-1] if len(a) > 3 else k["columns"]))
    assert cli(capsys, verb, runs["tab"], "--out", tmp_path / "p.png")[0] == 0
    assert [seen["columns"].name(j) for j in range(3)] == ["a", "b", "c"]


def test_evaluate_names_the_split_and_no_beta_for_a_gaussian(runs, tmp_path, capsys):
    lines = table_text(10, 2).splitlines()
    lines[2] = "1e30," + lines[2].split(",", 1)[1]  # a finite float32, whose square is not
    (tmp_path / "huge.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli(capsys, "evaluate", runs["tab"], "--data", tmp_path / "huge.csv", "--iw-samples", "2")
    assert code == 2 and "huge.csv (all split)" in err and "Beta" not in err and "float32" in err
    lines[2] = "3e38,3e38,-3e38,yes"  # finite values whose code overflows float32
    (tmp_path / "huge.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli(capsys, "encode", runs["tab"], "--data", tmp_path / "huge.csv", "--out", tmp_path / "c.csv")
    assert code == 2 and "item 1 has no finite code" in err and not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("verb", ["encode", "anomaly", "reconstruct"])
def test_a_missing_label_does_not_stop_a_run_that_does_not_use_labels(runs, tmp_path, capsys, verb):
    (tmp_path / "gap.csv").write_text(table_text(12, 3, gap=4))
    extra = ["--score", "neg_elbo"] if verb == "anomaly" else []
    code, _, err = cli(capsys, verb, runs["tab"], "--data", tmp_path / "gap.csv", *extra, "--out", tmp_path / "o.csv")
    assert code == 0 and "without a label" in err
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 13  # a header and every row


def test_evaluations_of_files_of_one_name_in_two_folders_keep_apart(runs, tmp_path, capsys):
    for k, folder in enumerate(("d1", "d2", "d1")):
        (tmp_path / folder).mkdir(exist_ok=True)
        np.save(tmp_path / folder / "new.npy", np.load(runs["root"] / "new_arr.npy") * (1 + k % 2))
        assert (
            cli(capsys, "evaluate", runs["arr"], "--data", tmp_path / folder / "new.npy", "--iw-samples", "2")[0] == 0
        )
    files = sorted(runs["arr"].glob("eval-new.npy-*all.json"))
    saved = {json.loads(f.read_text())["path"]: f.name for f in files}
    assert len(files) == 2 and saved[str(tmp_path / "d1" / "new.npy")] == "eval-new.npy-all.json"
    assert saved[str(tmp_path / "d2" / "new.npy")].startswith("eval-new.npy-")


def test_reconstruct_says_how_many_and_writes_which_items(runs, tmp_path, capsys):
    code, out, _ = cli(
        capsys, "reconstruct", runs["arr"], "--data", runs["root"] / "new_arr.npy", "--out", tmp_path / "r.csv"
    )
    assert code == 0 and "32 of 40 rows (--limit sets how many)" in out
    header, *rows = (tmp_path / "r.csv").read_text().splitlines()
    assert header == "index,0,1,2" and len(rows) == 32 and rows[5].startswith("5,")
    assert (
        cli(capsys, "reconstruct", runs["arr"], "--data", runs["root"] / "new_arr.npy", "--out", tmp_path / "r.npy")[0]
        == 0
    )
    values = np.array([r.split(",")[1:] for r in rows], np.float64).astype(np.float32)
    assert np.array_equal(values, np.load(tmp_path / "r.npy"))  # 9 digits: float32 read back exactly
    folder = tmp_path / "photos" / "a"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((6, 6), 60 * i, np.uint8)).save(folder / f"p{i}.png")
    assert cli(capsys, "reconstruct", runs["img"], "--data", folder.parent, "--out", tmp_path / "p.npz")[0] == 0
    saved = np.load(tmp_path / "p.npz")
    assert saved["reconstructions"].shape == (3, 1, 6, 6) and list(saved["index"]) == [0, 1, 2]
    assert list(saved["files"]) == ["a/p0.png", "a/p1.png", "a/p2.png"]


def test_contamination_names_a_training_file_no_longer_there(runs, tmp_path, capsys):
    run = Path(shutil.copytree(runs["tab"], tmp_path / "run"))
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["spec"] = str(tmp_path / "gone.csv")
    (run / "config.json").write_text(json.dumps(cfg))
    argv = ["--data", runs["root"] / "new.csv", "--score", "neg_elbo", "--contamination", "0.1"]
    code, _, err = cli(capsys, "anomaly", run, *argv, "--out", tmp_path / "s.csv")
    assert code == 2 and "threshold" in err and "gone.csv" in err and "training" in err


def test_anomaly_eval_prints_its_numbers_as_json(runs, capsys):
    sets = ["--in", runs["root"] / "imgs.npy", "--ood", runs["root"] / "new_imgs.npy", "--score", "neg_elbo"]
    code, out, _ = cli(capsys, "anomaly-eval", runs["img"], *sets, "--split", "all", "--limit", "10", "--json")
    got = json.loads(out)
    assert code == 0 and (got["n_in"], got["n_out"]) == (10, 10) and 0 <= got["scores"]["neg_elbo"]["auroc"] <= 1


def test_sample_help_says_what_its_values_are(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "means of p(x|z)" in text and "draws of p(x|z)" in text and "1,0.8,0.8,0.8" in text


def test_export_of_a_table_run_times_rows(runs, capsys, monkeypatch):
    import vaekit.export.onnx as onnx

    part = {"path": "d.onnx", "bytes": 1024, "max_abs_diff": 0.0}
    monkeypatch.setattr(onnx, "export_onnx", lambda run, out, part_: {"decoder": part})
    monkeypatch.setattr(onnx, "ort_decode_ms", lambda run, path, batch: 1.0)
    code, out, _ = cli(capsys, "export", runs["tab"], "--part", "decoder")
    assert code == 0 and "ms/row at batch 1" in out and "image" not in out


def test_encode_s_csv_round_trips_float32(runs, tmp_path, capsys):
    new = runs["root"] / "new_arr.npy"
    for out in ("c.csv", "c.npz"):
        assert cli(capsys, "encode", runs["arr"], "--data", new, "--out", tmp_path / out)[0] == 0
    text = np.loadtxt(tmp_path / "c.csv", delimiter=",", skiprows=1, dtype=np.float64)
    loc = np.load(tmp_path / "c.npz")["loc"]
    assert np.array_equal(text[:, -2 * loc.shape[1] : -loc.shape[1]].astype(np.float32), loc)
