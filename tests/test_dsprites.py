"""The dSprites-style renderer: images match their factors, specs parse, the data set splits like any other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaekit.data import dsprites, load_dataset
from vaekit.data.core import build_dataset
from vaekit.data.dsprites import FACTOR_SIZES, DSprites, all_factors, parse_spec, render
from vaekit.errors import VaekitError


def factors(**f) -> np.ndarray:
    """One (1, 5) factor row: shape, scale, orientation, posX, posY (defaults: square, mid size, centred)."""
    row = {"shape": 0, "scale": 3, "orientation": 0, "posX": 16, "posY": 16, **f}
    return np.array([[row["shape"], row["scale"], row["orientation"], row["posX"], row["posY"]]])


def centroid(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img)
    return cols.mean(), rows.mean()


def test_every_combination_is_there_once():
    f = all_factors()
    assert f.shape == (737280, 5) and (f.max(0) + 1).tolist() == list(FACTOR_SIZES)
    assert len(np.unique(np.ravel_multi_index(f.T, FACTOR_SIZES))) == 737280


@pytest.mark.parametrize("size", [32, 64])
def test_centroid_follows_the_position_factors(size):
    xs = [centroid(render(factors(posX=p), size)[0]) for p in range(0, 32, 5)]
    ys = [centroid(render(factors(posY=p), size)[0]) for p in range(0, 32, 5)]
    assert np.all(np.diff([c[0] for c in xs]) > 0) and np.ptp([c[1] for c in xs]) < 0.5
    assert np.all(np.diff([c[1] for c in ys]) > 0) and np.ptp([c[0] for c in ys]) < 0.5
    corners = render(np.vstack([factors(scale=5, orientation=5, posX=p, posY=p) for p in (0, 31)]), size)
    assert corners[:, [0, -1]].sum() == 0 and corners[:, :, [0, -1]].sum() == 0  # shapes stay inside


def test_shape_scale_and_orientation_change_the_image():
    shapes = render(np.vstack([factors(shape=s) for s in range(3)]), 64).astype(int)
    assert all((shapes[a] != shapes[b]).sum() > 20 for a, b in [(0, 1), (0, 2), (1, 2)])
    areas = render(np.vstack([factors(scale=s) for s in range(6)]), 64).sum((1, 2))
    assert np.all(np.diff(areas) > 0) and areas[-1] / areas[0] == pytest.approx(4, rel=0.15)  # area ~ scale^2
    flat, upright = render(np.vstack([factors(shape=1, orientation=o) for o in (0, 10)]), 64)  # 0 and ~90 degrees
    assert np.ptp(np.nonzero(flat)[1]) > 1.5 * np.ptp(np.nonzero(flat)[0])  # the ellipse lies along x ...
    assert np.ptp(np.nonzero(upright)[0]) > 1.5 * np.ptp(np.nonzero(upright)[1])  # ... then stands up
    assert set(np.unique(shapes)) == {0, 1}


def test_factor_sampler_renders_float_images_of_its_size():
    data = DSprites(16)
    f = data.sample_factors(50, np.random.default_rng(0))
    x = data.images(f)
    assert f.shape == (50, 5) and (f < np.array(FACTOR_SIZES)).all() and x.shape == (50, 1, 16, 16)
    assert x.dtype.is_floating_point and set(x.unique().tolist()) == {0.0, 1.0}


def test_spec_gives_a_fixed_subset_with_shape_labels():
    a = load_dataset("dsprites:16:n=200", seed=3)
    b = load_dataset("DSprites:16:n=200", seed=3)
    assert a.shape == (1, 16, 16) and a.classes == ["square", "ellipse", "heart"] and a.num_classes == 3
    assert len(a.train) + len(a.val) + len(a.test) == 200
    assert (a.train.x == b.train.x).all() and set(a.train.y.tolist()) <= {0, 1, 2}
    assert parse_spec("dsprites") == (64, 100_000) and parse_spec("dsprites:n=all:32") == (32, 737280)


@pytest.mark.parametrize(
    "spec, why",
    [
        ("dsprites:abc", "expected"),
        ("dsprites:32:n=2", "n in 3"),
        ("dsprites:8", "size must be in 16..256"),  # at 8x8 9% of the images are blank
        ("dsprites:32:16", "names the size 2 times"),  # not silently 16
        ("dsprites:n=1e9", "expected"),
        ("dsprites:m=5", "expected"),
    ],
)
def test_bad_specs_and_factors_are_refused(spec, why):
    with pytest.raises(VaekitError, match="dsprites") as e:
        load_dataset(spec)
    assert why in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(VaekitError, match="factor"):
        render(np.array([[3, 0, 0, 0, 0]]))


@pytest.mark.parametrize("spec, limit, seed", [("dsprites:16:n=300", 40, 3), ("dsprites:16:n=50", 12, 0)])
def test_a_limit_renders_only_its_items_and_they_are_the_items_of_the_whole_set(spec, limit, seed, monkeypatch):
    """The items a limit takes from every image rendered (``build_dataset`` on the whole set) and from only those
    rendered: equal, split for split, labels too."""
    whole = build_dataset(
        spec, dsprites.load(spec), val_fraction=0.1, test_fraction=0.1, seed=seed, binarize="none", limit=limit
    )
    rendered = counting_render(monkeypatch)
    limited = load_dataset(spec, seed=seed, limit=limit)
    assert sum(rendered) == limit
    for name in ("train", "val", "test"):
        a, b = getattr(whole, name), getattr(limited, name)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y), name
    assert (limited.shape, limited.classes) == (whole.shape, whole.classes)


def test_a_limit_on_every_combination_renders_only_the_items_taken(monkeypatch):
    rendered = counting_render(monkeypatch)
    data = load_dataset("dsprites:16:n=all", limit=30)
    assert sum(rendered) == 30 and len(data.train) + len(data.val) + len(data.test) == 30  # not 737,280
    assert len(load_dataset("dsprites:16:n=20", limit=500).train) == 16 and sum(rendered) == 50  # a limit above n


def counting_render(monkeypatch) -> list[int]:
    """The number of images each call of ``dsprites.render`` renders from now on."""
    rendered, render_all = [], dsprites.render

    def counted(factors: np.ndarray, size: int = 64) -> np.ndarray:
        rendered.append(len(factors))
        return render_all(factors, size)

    monkeypatch.setattr(dsprites, "render", counted)
    return rendered


def test_the_smallest_size_renders_every_shape():
    images = render(DSprites().sample_factors(3000, np.random.default_rng(0)), parse_spec("dsprites:16")[0])
    assert images.sum((1, 2)).min() > 0  # at 8x8, 9% of images (16% of ellipses) held no pixel
