"""Applications, round 3: a support refusal says how data comes into the run's support; a report of other data
goes to its own file; the guide's --contamination figure is the one measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.cli import main
from vaekit.core.likelihoods import check_support
from vaekit.data.item_arrays import support_check
from vaekit.errors import VaekitError

from .conftest import train_argv

DOCS = Path(__file__).parents[1] / "docs"
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """own.npy and other.npy: 40 and 12 uint8 images (4x4); run: a one-epoch run of own.npy (the likelihood chosen
    for 8-bit images, the discretized logistic)."""
    tmp = tmp_path_factory.mktemp("apps_r3")
    for name, n in (("own", 40), ("other", 12)):
        np.save(tmp / f"{name}.npy", RNG.integers(0, 256, (n, 4, 4)).astype(np.uint8))
    assert main(train_argv(tmp / "own.npy", tmp / "run", "--hidden", "8", "--latent-dim", "2")) == 0
    return tmp


def test_a_refusal_of_off_level_or_0_255_data_says_how_to_bring_it_in(folder, capsys):
    np.save(folder / "cont.npy", RNG.random((4, 1, 4, 4)).astype(np.float32))  # [0, 1], off the 256 levels
    np.save(folder / "f255.npy", RNG.random((4, 1, 4, 4)).astype(np.float32) * 255)  # 0..255, not whole numbers
    said = []
    for name in ("cont", "f255"):
        argv = ["encode", str(folder / "run"), "--data", str(folder / f"{name}.npy"), "--out", str(folder / "z.npz")]
        assert main(argv) == 2
        said.append(capsys.readouterr().err.strip())
    assert all(len(s.splitlines()) == 1 for s in said) and not (folder / "z.npz").exists()
    assert "not one of the 256 levels" in said[0] and "round the data onto them (round(x * 255) / 255)" in said[0]
    assert "round(x) / 255; real-valued data needs the gaussian likelihood" in said[1]
    x = torch.from_numpy(RNG.random((4, 1, 3, 3)).astype(np.float32)) * 255
    with pytest.raises(VaekitError, match=r"\[0, 1\]; divide data on a 0..255 scale by 255; real-valued data needs"):
        check_support("bernoulli", x, "x")
    with pytest.raises(VaekitError) as e:  # whole numbers: the pixels' advice alone, said once
        support_check("bernoulli", x.round(), "x")
    assert str(e.value).count("divide by 255") == 1 and "0..255 scale" not in str(e.value)


def test_a_report_of_other_data_goes_beside_the_run_s_own(folder, capsys):
    run = folder / "run"
    assert main(["report", str(run), "--iw-samples", "2", "--limit", "8"]) == 0
    own = (run / "report.html").read_bytes()
    capsys.readouterr()
    assert main(["report", str(run), "--data", str(folder / "other.npy"), "--iw-samples", "2"]) == 0
    page = run / "report-other.npy-all.html"  # named as evaluate names its figures: eval-other.npy-all.json
    assert capsys.readouterr().out.strip() == f"report written to {page}"
    assert (run / "report.html").read_bytes() == own and (run / "eval-other.npy-all.json").is_file()
    assert "other.npy" in page.read_text()


def test_the_guide_gives_the_measured_share_flagged_of_new_normal_wines():
    guide = " ".join((DOCS / "guides" / "anomaly.md").read_text().split())
    assert "16 of the 65" not in guide and "runs above FRACTION" not in guide
    assert "may differ from FRACTION either way" in guide and "flagged 3 of the 65 normal wines" in guide


def test_other_data_s_quality_and_report_files_are_named_stale_and_cleared(tmp_path):
    """eval-*.json only were: a report or quality file of other data from older weights was neither."""
    from vaekit import files
    from vaekit.run_history import stale_files
    from vaekit.training.folder import clear

    (tmp_path / "report-x.npy-all.html").write_text(f'<meta name="{files.DIGEST}" content="aa">')
    (tmp_path / "quality-x.npy-test.json").write_text(f'{{"{files.DIGEST}": "bb"}}')
    (tmp_path / "report-mine.html").write_text("no digest: the user's")
    assert stale_files(tmp_path, "aa") == ["quality-x.npy-test.json"]
    clear(tmp_path, started=True)
    assert [p.name for p in tmp_path.iterdir()] == ["report-mine.html"]
