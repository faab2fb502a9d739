"""Every picture helper from a notebook: path None gives the picture, a PIL image the size of the PNG a path gets;
uint8 images read as 0..255, whole numbers past [0, 1] refused, fractional values on another scale said in one
line, a gaussian's decoded means clipped without a word; a discrete run's interpolation decodes only its codes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit import build_model
from vaekit.config import RunConfig
from vaekit.errors import VaekitError
from vaekit.runs import Run
from vaekit.viz.discrete_sweeps import save_sweeps, sweeps
from vaekit.viz.figures import save_factor_traversals, save_interpolation, save_traversal, traversals
from vaekit.viz.plots import save_reconstructions, save_samples

X = torch.rand(12, 1, 6, 6, generator=torch.Generator().manual_seed(0))  # (N, C, H, W) in [0, 1]
X[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # item 0, in every picture, spans the range


def untrained(family: str = "vae", likelihood: str = "bernoulli") -> Run:
    """A run of untrained weights over (1, 6, 6) items with 3 latent dims (a gumbel run: 3 variables of 4)."""
    cfg = RunConfig()
    cfg.model.family, cfg.model.input_shape, cfg.model.latent_dim, cfg.model.hidden = family, [1, 6, 6], 3, [8]
    kinds = {"categories": 4} if family == "gumbel" else {}
    model = build_model(family=family, input_shape=[1, 6, 6], latent_dim=3, hidden=[8], likelihood=likelihood, **kinds)
    return Run(None, cfg, model.eval())


def paths(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"lerp": x[2:5], "slerp": x[5:8]}


DRAW = {  # name -> draw(path): every picture helper, images and a table
    "save_samples": lambda p: save_samples(X, p),
    "save_samples (table)": lambda p: save_samples(torch.randn(9, 3), p),
    "save_reconstructions": lambda p: save_reconstructions(X, X.flip(0), p),
    "save_interpolation": lambda p: save_interpolation(X[:2], paths(X), p),
    "save_interpolation (table)": lambda p: save_interpolation(torch.randn(2, 3), paths(torch.randn(8, 3)), p),
    "save_traversal": lambda p: save_traversal(X[:8].view(2, 4, 1, 6, 6), [0, 2], torch.linspace(-1, 1, 4), p),
    "save_traversal (table)": lambda p: save_traversal(torch.randn(2, 4, 3), [0, 2], torch.linspace(-1, 1, 4), p),
    "save_factor_traversals": lambda p: save_factor_traversals(
        untrained(), [{"dim": i, "factor": "x", "normalised_mi": 0.5, "std": 1.0} for i in range(3)], p, steps=3
    ),
    "latent_map": lambda p: vaekit.latent_map(untrained(), X, torch.arange(12) % 2, p),
    "save_sweeps": lambda p: save_sweeps(sweeps(untrained("gumbel"), X, 2, 3), p),
}


@pytest.mark.parametrize("name", DRAW)
def test_no_path_gives_the_picture_the_size_of_the_png_a_path_gets(tmp_path, name):
    shown = DRAW[name](None)
    written = DRAW[name](tmp_path / "p.png")
    assert isinstance(shown, Image.Image) and written == tmp_path / "p.png"
    assert shown.size == Image.open(written).size
    with pytest.raises(VaekitError, match=r"p\.jpg: expected a \.png file name"):
        DRAW[name](tmp_path / "p.jpg")


U8 = (X * 255).round().to(torch.uint8)
IMAGES = {  # name -> draw(x): the image helpers, given items x (12, 1, 6, 6)
    "save_samples": lambda x: save_samples(x),
    "save_reconstructions": lambda x: save_reconstructions(x[:6], x[6:]),
    "save_interpolation": lambda x: save_interpolation(x[:2], paths(x)),
    "save_traversal": lambda x: save_traversal(x[:8].reshape(2, 4, 1, 6, 6), [0, 1], torch.linspace(-1, 1, 4)),
}


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_uint8_images_are_read_as_0_to_255(name, kind):
    given = U8 if kind == "torch" else U8.numpy()
    want = np.asarray(IMAGES[name](U8.float() / 255))
    assert np.array_equal(np.asarray(IMAGES[name](given)), want)
    assert 0 < want.mean() < 250  # grey tiles on a white ground, not all white


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("pixels", [U8.float(), U8.long(), U8.double() - 128], ids=["float", "int64", "centred"])
def test_whole_numbers_past_0_1_are_refused_naming_the_range_seen(name, pixels):
    seen = rf"\[{int(pixels.min())}, {int(pixels.max())}\]"
    with pytest.raises(VaekitError, match=rf"^{name}: image values in {seen}.*pictures take values in \[0, 1\]"):
        IMAGES[name](pixels)


def test_a_gaussians_decoded_means_are_clipped_without_a_word_and_tables_taken_in_any_range(capsys):
    means = X * 1.6 - 0.3  # decoded means of a gaussian p(x|z) stray past [0, 1]
    assert np.array_equal(np.asarray(save_samples(means)), np.asarray(save_samples(means.clamp(0, 1))))
    assert isinstance(save_samples(torch.randint(0, 1000, (9, 3)).float()), Image.Image)  # a table: standardised
    run = untrained(likelihood="gaussian")  # its decoded means: noise around 0, as vaekit's own callers draw them
    save_samples(run.sample(64))
    save_reconstructions(X, run.reconstruct(X))
    save_interpolation(X[:2], vaekit.interpolate(run, X[:2], 5))
    save_traversal(*traversals(run, X))
    assert capsys.readouterr().err == ""
    assert isinstance(save_reconstructions(U8.float(), U8.float() + 0.5), Image.Image)  # a run on undivided pixels
    assert "save_reconstructions: image values in [0, 255.5]" in capsys.readouterr().err  # drawn, and said


OTHER_SCALES = {  # images on another scale than [0, 1] -> (the range said, the scaling said)
    "[-1, 1]": (X * 2 - 1, r"\[-1, 1\]", r"\(x \+ 1\) / 2"),
    "0..255 resized": (X * 254.5 + 0.25, r"\[0\.25, 254\.8\]", r"x / 255"),
    "standardised": ((X - 0.5) / 0.2, r"\[-2\.5, 2\.5\]", r"\(x - x\.min\(\)\) / \(x\.max\(\) - x\.min\(\)\)"),
}


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("scale", OTHER_SCALES)
def test_fractional_images_on_another_scale_are_drawn_and_said_in_one_line(name, scale, capsys):
    x, seen, fix = OTHER_SCALES[scale]
    assert np.array_equal(np.asarray(IMAGES[name](x)), np.asarray(IMAGES[name](x.clamp(0, 1))))  # clipped
    said = capsys.readouterr().err.splitlines()  # one line: the clipped images are given without a word
    assert len(said) == 1, said
    pattern = rf"vaekit: warning: {name}: image values in {seen}, \d+% of them outside \[0, 1\]: .*{fix}"
    assert re.match(pattern, said[0]), said[0]


def codes_read(run: Run, monkeypatch) -> list[torch.Tensor]:
    """The codes z (B, D) the run's decoder is given from now on."""
    seen, decode = [], run.model.decode
    monkeypatch.setattr(run.model, "decode", lambda z, y=None: seen.append(z.cpu()) or decode(z, y))
    return seen


@pytest.mark.parametrize("family", ["gumbel", "vq"])
def test_interpolate_decodes_only_codes_a_discrete_decoder_reads(family, monkeypatch, capsys):
    run = untrained(family)
    ends = run.encode(X[:2]).mean.detach()  # (2, D): class probabilities, or the code grids' vectors
    seen = codes_read(run, monkeypatch)
    paths = vaekit.interpolate(run, X[:2], steps=7)
    z = torch.cat(seen)  # (2 * 7, D): lerp's, then slerp's
    if family == "gumbel":  # one-hots of 3 variables of 4 categories, the ends each item's most probable ones
        z, ends = z.view(-1, 3, 4), ends.view(2, 3, 4)
        assert set(z.unique().tolist()) == {0.0, 1.0} and (z.sum(-1) == 1).all()
        assert torch.equal(z[[0, 6]].argmax(-1), ends.argmax(-1))
    else:  # every vector of every grid position one of the codebook's, the ends the items' own code grids
        book, d = run.model.codebook, run.model.codebook.shape[1]
        vectors = z.unflatten(-1, (d, -1)).transpose(1, 2).reshape(-1, d)  # (14 * h * w, D)
        assert (torch.cdist(vectors, book).amin(1) < 1e-5).all()
        assert torch.allclose(z[[0, 6]], ends)  # (not torch.testing: its first call imports for seconds)
    assert paths["lerp"].shape == (7, 1, 6, 6)
    assert f"interpolate: this {family} run's path points are decoded" in capsys.readouterr().err


def test_the_explorer_decodes_a_gumbel_runs_codes_only():
    from vaekit.viz.explore_api import Explorer

    page = Explorer(untrained("gumbel"), X[:4], None)
    codes = torch.tensor(page.interpolate({"a": 0, "b": 1, "steps": 5})["codes"]).view(5, 3, 4)
    assert set(codes.unique().tolist()) == {0.0, 1.0} and (codes.sum(-1) == 1).all()  # one-hots, as interpolate


def test_the_walks_left_figures_and_stay_importable_from_it():
    import vaekit.viz.figures as figures
    import vaekit.viz.latent_walks as walks

    names = ("lerp", "slerp", "decode_mean", "interpolate", "traverse", "traversals", "decoded_dims", "spans")
    assert all(getattr(figures, n) is getattr(walks, n) for n in (*names, "discrete_family", "refuse_discrete"))
    assert len(Path(figures.__file__).read_text(encoding="utf-8").splitlines()) < 300
