"""How the scoring verbs read data: --set's reading settings, another photo folder at the run's size, the notes
on ties at a --contamination threshold, --in and --ood of one set, label columns with gaps; vaekit data's
column lines and notes; a class folder without images."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import train_argv
from vaekit.cli import build_parser, flag_for, main
from vaekit.data import load_dataset

RNG = np.random.default_rng(0)
SMALL = ("--hidden", "8", "--latent-dim", "2")


def photos(root: Path, n: int, h: int, w: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(RNG.integers(0, 256, (h, w), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def table(path: Path, rows: np.ndarray, labels: list[str] | None = None) -> Path:
    head = ",".join(f"c{j}" for j in range(rows.shape[1])) + ",y" * (labels is not None)
    cells = [",".join(f"{v:.3f}" for v in r) + ("" if labels is None else f",{labels[i]}") for i, r in enumerate(rows)]
    path.write_text("\n".join([head, *cells]) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """An 8x8 photo run, a table run, an array run whose training rows mostly tie; the data they score."""
    tmp = tmp_path_factory.mktemp("verbs_data")
    photos(tmp / "own", 20, 8, 8)
    photos(tmp / "ood", 6, 12, 10)  # another size
    (photos(tmp / "bad", 6, 8, 8) / "zz.png").write_bytes(b"not a png")
    same = np.full((40, 3), 0.5, np.float32)
    same[:4] = RNG.random((4, 3))  # 36 rows alike: their scores tie
    np.save(tmp / "same.npy", same)
    table(tmp / "t.csv", RNG.random((30, 3)))
    table(tmp / "gaps.csv", RNG.random((12, 3)), ["", "a", "b", "a"] * 3)  # rows 0, 4, 8 without a label
    for name, data in (("photo", "own"), ("tab", "t.csv"), ("same", "same.npy")):
        assert main(train_argv(tmp / data, tmp / name, *SMALL)) == 0
    return {"tmp": tmp, **{k: tmp / k for k in ("photo", "tab", "same")}}


def cli(capsys, *argv) -> tuple[int, str]:
    """(exit code, stdout and stderr)."""
    code = main([str(a) for a in argv])
    return code, "".join(capsys.readouterr())


@pytest.mark.parametrize(
    "verb", [["anomaly", "--data"], ["encode", "--data"], ["anomaly-eval", "--score", "kl", "--ood"]]
)
def test_the_scoring_verbs_read_files_as_set_says(runs, capsys, verb):
    out = ["--out", runs["tmp"] / "o.csv"] if verb[0] != "anomaly-eval" else []
    argv = [verb[0], runs["photo"], *verb[1:], runs["tmp"] / "bad", *out]
    code, err = cli(capsys, *argv)
    assert code == 2 and "zz.png: cannot read image" in err
    code, err = cli(capsys, *argv, "--set", "data.skip_unreadable=true")
    assert code == 0 and "skipped 1 unreadable file" in err


def test_set_takes_only_how_files_are_read(runs, capsys):
    argv = ["anomaly", runs["photo"], "--out", runs["tmp"] / "o.csv"]
    code, err = cli(capsys, *argv, "--set", "train.lr=1")
    assert code == 2 and "--set train.lr: a run's data is read as it trained; --set takes data.skip" in err
    assert cli(capsys, *argv, "--set", "workers=-1")[1] == "vaekit: error: --set: data.workers must be >= 0, got -1\n"
    parser = build_parser()  # an error's setting: its --set not offered where --set refuses it
    assert flag_for(parser, parser.parse_args(["anomaly", "r", "--out", "o.csv"]), "data.missing") is None
    (runs["tmp"] / "det").mkdir(exist_ok=True)
    (runs["tmp"] / "det" / "scales.json").write_text("{}")
    code, err = cli(capsys, "anomaly", runs["tmp"] / "det", "--out", runs["tmp"] / "o.csv", "--set", "cache=true")
    assert code == 2 and "holds a multi-scale detector, which reads its items with no settings" in err


def test_a_photo_folder_of_another_size_is_read_at_the_run_s_size(runs, capsys):
    code, err = cli(capsys, "anomaly", runs["photo"], "--data", runs["tmp"] / "ood", "--out", runs["tmp"] / "o.csv")
    assert code == 0 and "6 images made 8x8: 6 cropped to their aspect ratio" in err
    code, err = cli(capsys, "anomaly-eval", runs["photo"], "--ood", runs["tmp"] / "ood", "--score", "kl")
    assert code == 0


def test_ties_at_the_contamination_threshold_are_said(runs, capsys):
    argv = ["anomaly", runs["same"], "--out", runs["tmp"] / "o.csv", "--score", "recon_error"]
    code, err = cli(capsys, *argv, "--contamination", "0.1")
    assert code == 0 and "training items tie at the threshold: 2 (6.2%) score above it, fewer than" in err


def test_in_and_ood_of_one_set_are_said(runs, capsys):
    code, err = cli(capsys, "anomaly-eval", runs["tab"], "--ood", runs["tmp"] / "t.csv", "--score", "kl")
    assert code == 0 and "--in and --ood are the same data and split" in err


def test_a_label_column_with_gaps(runs, capsys):
    gaps, out = runs["tmp"] / "gaps.csv", runs["tmp"] / "o.csv"
    code, said = cli(capsys, "anomaly", runs["tab"], "--data", gaps, "--label-column", "y", "--out", out)
    assert code == 0 and "no label column written: column 'y' has rows without a label" in said
    code, err = cli(capsys, "anomaly-eval", runs["tab"], "--data", gaps, "--label-column", "y", "--normal", "a")
    assert code == 0 and "3 rows with gaps left out: no label in column 'y' (a gap is no class)" in err
    assert "data.missing=drop" not in err  # set by no one
    code, err = cli(capsys, "anomaly", runs["same"], "--data", gaps, "--label-column", "y", "--out", out)
    assert code == 2 and "fill it, or leave such rows out of the file" in err
    assert "data.missing to drop" not in err and "--set" not in err  # which the verb cannot take


def test_describe_says_dates_booleans_and_notes_as_they_are(tmp_path, capsys):
    rows = [
        f"2021-{1 + i % 12:02d}-{1 + i:02d},{'' if i % 5 == 0 else 'true' if i % 2 else 'false'},a" for i in range(28)
    ]
    (tmp_path / "d.csv").write_text("when,flag,one\n" + "\n".join(rows) + "\n")  # gaps: read twice
    assert main(["data", str(tmp_path / "d.csv")]) == 0
    out, err = capsys.readouterr()
    said = dict(line.split(":", 1) for line in out.splitlines() if line.startswith("column '"))
    when, flag, one = (said[f"column '{c}'"].strip() for c in ("when", "flag", "one"))
    assert re.fullmatch(
        r"numeric: dates or times \(%Y-%m-%d\), 2021-\d\d-\d\d\.\.2021-\d\d-\d\d in the training split", when
    )
    assert (flag, one) == ("true/false (a boolean category), with gaps", "categorical, 1 category ('a')")
    assert err.count("column 'when' holds dates") == err.count("column 'flag' holds true/false") == 1


def test_a_class_folder_without_images_is_named(tmp_path, capsys):
    photos(tmp_path / "f" / "a", 3, 4, 4)
    (tmp_path / "f" / "empty").mkdir()
    (tmp_path / "f" / "link").symlink_to(tmp_path / "f" / "a")  # a linked duplicate, said as such
    load_dataset(str(tmp_path / "f"))
    err = capsys.readouterr().err
    assert "class folder empty holds no image files: left out, the classes numbered without it" in err
    assert "link hold" not in err


def test_a_score_no_finite_number_names_how_many_items_and_the_first(runs, capsys):
    far = np.full((5, 3), 0.5, np.float32)
    far[3] = 3e38  # one row beyond float32's arithmetic
    np.save(runs["tmp"] / "far.npy", far)
    argv = ["anomaly", str(runs["same"]), "--data", str(runs["tmp"] / "far.npy"), "--score", "neg_elbo"]
    assert main([*argv, "--out", str(runs["tmp"] / "far.csv")]) == 2
    assert "no finite number for 1 of 5 items, the first the 4th scored: its values" in capsys.readouterr().err
