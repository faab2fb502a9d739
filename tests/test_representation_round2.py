"""Representation round 2: a flow posterior's moments unbiased per dimension, vq's zero scale, encode's label
count, and the latent map's colours, colour bar, class names and table column names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zuko

from vaekit import build_model
from vaekit.config import RunConfig
from vaekit.core.discrete import CodeGrid
from vaekit.core.likelihoods import gaussian
from vaekit.data.table_schema import Column, TableSchema
from vaekit.errors import VaekitError
from vaekit.models.posteriors import MOMENT_DRAWS, FlowPosterior, moment_noise
from vaekit.runs import Run
from vaekit.viz import latent_maps


def tiny_run(shape: list[int], likelihood: str = "bernoulli", kept: dict | None = None, **settings) -> Run:
    """An untrained run of 2-D codes (a conditional one where ``settings`` say family cvae) without a folder."""
    cfg, settings = RunConfig(), dict(input_shape=shape, latent_dim=2, hidden=[8], **settings)
    for k, v in settings.items():
        setattr(cfg.model, k, v)
    cfg.model.likelihood = likelihood
    return Run(None, cfg, build_model(**settings, likelihood=likelihood).eval(), kept=kept or {})


@pytest.fixture
def shown(monkeypatch) -> dict:
    """The latent map's figure, kept instead of written."""
    got: dict = {}
    monkeypatch.setattr(latent_maps, "_save_figure", lambda fig, path: got.update(fig=fig) or path)
    return got


def test_flow_moments_are_exact_for_an_affine_flow_in_every_dimension():
    eps = moment_noise(MOMENT_DRAWS, 4).double()
    torch.testing.assert_close(eps.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(eps.std(0), torch.ones(4, dtype=torch.float64))
    loc, scale, a = torch.randn(3, 4), torch.rand(3, 4) + 0.5, torch.tensor([0.5, 2.0, 1.0, 3.0])
    affine = zuko.transforms.MonotonicAffineTransform(torch.zeros(4), a.log())  # z0 = a' z, a' near a
    q = FlowPosterior(zuko.transforms.DependentTransform(affine, 1), gaussian(loc, scale))
    torch.testing.assert_close(q.stddev, scale / affine.scale, rtol=1e-4, atol=0)  # seed 0's noise: 9% off


def test_a_vq_code_has_a_scale_of_plus_zeros():
    grid = CodeGrid(torch.zeros(2, 1, 3, dtype=torch.long), torch.tensor([[-1.0, 2.0, -0.5], [0.0, -3.0, 1.0]]))
    assert not torch.signbit(grid.stddev).any() and not grid.variance.any()


def test_encode_refuses_a_label_count_other_than_the_items():
    run, x = tiny_run([1, 4, 4], family="cvae", num_classes=3), torch.rand(3, 1, 4, 4)
    assert run.encode(x, 2).mean.shape == run.encode(x, [0, 1, 2]).mean.shape == (3, 2)
    with pytest.raises(VaekitError, match=r"^y has 4 labels for 3 items: give one label, or one per item$") as e:
        run.encode(x, [0, 1, 2, 0])
    assert e.value.key == "y"
    with pytest.raises(VaekitError, match=r"^y has 2 labels for 3 items"):
        run.reconstruct(x, [0, 1])
    with pytest.raises(VaekitError, match=r"needs labels \(y=K, or y with one label per item\)$"):
        run.encode(x)


def test_more_than_ten_classes_get_distinct_colours(shown, tmp_path):
    y = np.arange(25) % 25
    latent_maps.latent_map(tiny_run([1, 4, 4]), torch.rand(25, 1, 4, 4), y, tmp_path / "m.png")
    handles = shown["fig"].axes[0].get_legend().legend_handles
    styles = {(tuple(h.get_facecolor()[0]), h.get_paths()[0].vertices.tobytes()) for h in handles}
    assert len(handles) == len(styles) == 25


def test_a_continuous_y_gets_a_colour_bar_not_a_legend(shown, tmp_path):
    y = np.linspace(0.0, 1.0, 40)
    latent_maps.latent_map(tiny_run([1, 4, 4]), torch.rand(40, 1, 4, 4), y, tmp_path / "m.png")
    fig = shown["fig"]
    assert fig.axes[0].get_legend() is None and any(ax.get_ylabel() == "label" for ax in fig.axes[2:])


@pytest.mark.parametrize("classes", [None, ["ant", "bee", "cat"]])
def test_class_names_and_numbers_are_named_by_the_run(shown, tmp_path, classes):
    y = np.array(["cat", "bee", "cat", "ant"], dtype=object)
    run, x = tiny_run([1, 4, 4], kept={"classes": classes}), torch.rand(4, 1, 4, 4)
    latent_maps.latent_map(run, x, y, tmp_path / "m.png")
    texts = [t.get_text() for t in shown["fig"].axes[0].get_legend().get_texts()]
    assert texts == ["ant", "bee", "cat"]
    if classes:  # numbers and no classes given: the run's names
        latent_maps.latent_map(run, x, [2, 1, 2, 1], tmp_path / "m.png")
        assert [t.get_text() for t in shown["fig"].axes[0].get_legend().get_texts()] == ["ant", "bee", "cat"][1:]


def test_a_conditional_run_reads_class_names_as_its_classes(shown, tmp_path):
    run = tiny_run([1, 4, 4], kept={"classes": ["a", "b", "c"]}, family="cvae", num_classes=3)
    latent_maps.latent_map(run, torch.rand(3, 1, 4, 4), np.array(["c", "b", "c"], dtype=object), tmp_path / "m.png")
    assert shown["fig"].axes[1].get_title() == "decoded manifold of class c (prior quantiles)"
    with pytest.raises(VaekitError, match="no class has this name"):
        latent_maps.latent_map(run, torch.rand(2, 1, 4, 4), ["c", "z"], tmp_path / "m.png")


def test_a_table_runs_manifold_names_its_columns(shown, tmp_path):
    table = TableSchema([Column("alcohol", "numeric"), Column("acid", "numeric"), Column("ph", "numeric")])
    run = tiny_run([3], "gaussian", kept={"table": table})
    latent_maps.latent_map(run, torch.randn(5, 3), None, tmp_path / "m.png")
    ax = shown["fig"].axes[1]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("alcohol", "acid")
