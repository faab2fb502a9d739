"""Image grids of any channel count: every writer of a grid makes its items displayable itself."""

from __future__ import annotations

import errno
import threading
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit import build_model
from vaekit.cli import main
from vaekit.config import RunConfig
from vaekit.errors import NotFinite, VaekitError
from vaekit.runs import Run
from vaekit.viz import callbacks as figures_callbacks
from vaekit.viz import curves, latent_maps, plots, tensorboard
from vaekit.viz import figures as figures_module
from vaekit.viz.plots import save_reconstructions, save_samples

from .conftest import train_argv

MODES = {1: "L", 2: "RGB", 3: "RGB", 4: "RGBA", 5: "RGB", 7: "RGB"}


@pytest.mark.parametrize("c", sorted(MODES))
@pytest.mark.parametrize("writer", ["samples", "reconstructions"])
def test_grids_of_any_channel_count_show_the_first_channels(tmp_path, c, writer):
    x = torch.rand(2, c, 28, 28)  # 28 pixels: not enlarged, so pixel (2, 2) is item 0's (0, 0)
    if writer == "samples":
        save_samples(x, tmp_path / "g.png")
    else:
        save_reconstructions(x, x, tmp_path / "g.png")
    im = Image.open(tmp_path / "g.png")
    assert im.mode == MODES[c]
    shown = np.asarray(im)[2, 2].reshape(-1)  # (C',)
    want = (x[0, :, 0, 0] * 255).round().to(torch.uint8).numpy()
    if c == 2:  # a blank third channel
        want = np.append(want, 0)
    np.testing.assert_array_equal(shown, want[:3] if c > 4 else want)


def test_a_five_channel_run_draws_its_pictures_and_samples(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "five.npz", x=rng.random((60, 5, 8, 8)).astype("f4"), y=rng.integers(0, 3, 60))
    run = tmp_path / "run"
    flags = ["--likelihood", "gaussian", "--latent-dim", "3", "--hidden", "16"]
    assert main(train_argv(tmp_path / "five.npz", run, *flags)) == 0
    assert Image.open(run / "samples.png").mode == Image.open(run / "reconstructions.png").mode == "RGB"
    for verb in ("sample", "reconstruct"):
        assert main([verb, str(run), "--n", "4", "--out", str(tmp_path / f"{verb}.png")]) == 0
        assert Image.open(tmp_path / f"{verb}.png").mode == "RGB"


def test_a_table_runs_pictures_name_its_columns_in_standardised_units(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    rows = ["small,big,kind"] + [
        f"{rng.normal(0.5, 0.1):.3f},{rng.normal(1200, 300):.1f},{'ab'[i % 2]}" for i in range(60)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    figures = {}  # file name -> the figure, kept open to be read instead of written
    for module in (plots, curves):
        monkeypatch.setattr(module, "_save_figure", lambda fig, path: figures.setdefault(Path(path).name, fig) and path)
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "t.csv", run, "--latent-dim", "2", "--hidden", "8")) == 0
    for verb, name in (("sample", "s.png"), ("reconstruct", "r.png")):  # the verbs' pictures as training's
        assert main([verb, str(run), "--n", "16", "--out", str(tmp_path / name)]) == 0
    for sample, recon in (("samples.png", "reconstructions.png"), ("s.png", "r.png")):
        (samples,), (rec,) = figures[sample].axes, figures[recon].axes
        assert (samples.get_xlabel(), samples.get_ylabel()) == ("small (standardised)", "big (standardised)")
        assert [t.get_text() for t in rec.get_legend().get_texts()] == ["small", "big", "kind=a", "kind=b"]
        shown = np.concatenate([c.get_offsets() for c in rec.collections])  # (input, reconstruction) pairs
        assert np.abs(shown).max() < 10  # standardised: the big column in raw units would reach ~2000
    assert figures["loss.png"].axes[0].get_title() == "loss: -ELBO"


def test_panels_keep_their_tick_labels_clear_of_the_next_panel(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = ["epoch,train_loss,val_loss,train_rec,val_rec,train_kl,val_kl"]
    rows += [f"{e},{17 - e / 9},{16.7},{-16.45 - e / 50},{-16.47 - e / 99},{1.2 - e / 9},0.2" for e in (1, 2)]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    figures = []
    monkeypatch.setattr(curves, "_save_figure", lambda fig, path: figures.append(fig) or Path(path))
    curves.plot_losses(tmp_path / "metrics.csv", tmp_path / "c.png")
    (fig,) = figures
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for left, right in zip(fig.axes, fig.axes[1:]):  # the right panel's y tick labels (-16.450) start after
        assert right.get_tightbbox(renderer).x0 > left.get_window_extent(renderer).x1  # the left panel ends


KL = {  # name -> (kl_per_dim, caption words, what the caption must not say)
    "one level": ([[0.5] * 16], "KL per latent dimension (evaluated split)", "sorted"),
    "ladder of 784": ([[0.1] * n for n in (4, 196, 196, 784, 784)], "sorted largest first", "one total"),
    "deep of 4096": ([[0.1] * n for n in (16, 1024, 1024, 4096, 4096)], "a bar per dim up to 200 dims", "one total"),
    "flow and gaussian levels": ([None, [0.2] * 8], "has one total KL (kl_per_level)", "sorted"),
    "iaf or vamp": ([None], "KL per latent level: q(z|x) or p(z) is not factorised", "per latent dimension"),
}


@pytest.mark.parametrize("name", KL)
def test_the_kl_figure_stays_readable_and_its_caption_says_what_it_shows(tmp_path, name):
    from vaekit.viz.report_pictures import kl_picture

    levels, says, never = KL[name]
    caption, path = kl_picture({"kl_per_dim": levels, "kl_per_level": [1.0] * len(levels)}, tmp_path / "kl.png")
    width, height = Image.open(path).size
    assert width <= 2500 and height <= 700, (width, height)  # 76,010 px wide for the deep run before
    assert says in caption and never not in caption


def table_paths(scale: float) -> dict[str, torch.Tensor]:
    """Two decoded paths of 5 steps over items (small, big): big in units ``scale`` times small's."""
    t = torch.linspace(0, 1, 5)[:, None]
    path = torch.cat([0.5 + 0.1 * t, scale * (1 + t)], 1)  # (5, 2)
    return {"lerp": path, "slerp": path.flip(0)}


@pytest.mark.parametrize("writer", ["interpolation", "traversal"])
@pytest.mark.parametrize("scaled", [False, True], ids=["by the picture's items", "by the run's scale"])
def test_table_paths_are_drawn_in_standardised_units_and_name_their_columns(tmp_path, monkeypatch, writer, scaled):
    from vaekit.viz.figures import save_interpolation, save_traversal

    figures = []
    monkeypatch.setattr(figures_module, "_save_figure", lambda fig, path: figures.append(fig) or Path(path))
    paths = table_paths(50_000.0)
    scale = (np.array([0.5, 50_000.0]), np.array([0.1, 20_000.0])) if scaled else (None, None)
    columns = plots.Columns(("small", "income"), *scale)
    if writer == "interpolation":
        save_interpolation(torch.zeros(2, 2), paths, tmp_path / "i.png", columns=columns)
    else:
        save_traversal(torch.stack(list(paths.values())), [3, 1], torch.linspace(-3, 3, 5), tmp_path / "t.png", columns)
    (fig,) = figures
    lines = [line.get_ydata() for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 4 and max(np.abs(y).max() for y in lines) < 10  # raw income would reach 100,000
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["small", "income"]
    first, second = (ax.get_position() for ax in fig.axes)
    assert second.x0 > first.x1 and second.y0 == first.y0  # side by side, as path_layout says


@pytest.mark.parametrize(
    "shape, layout", [((1, 9, 11), "lerp (top), slerp (bottom)"), ((8,), "lerp (left), slerp (right)")]
)
def test_the_interpolation_caption_places_the_paths_as_the_figure_does(shape, layout):
    from vaekit.viz.figures import path_layout

    assert path_layout(shape, ["lerp", "slerp"]) == layout


def conditional_run(components: int):
    """An untrained conditional run (3 classes, 2-D codes, 4x4 items) whose class 1 has p(z|y) moved off N(0, I)."""
    cfg = RunConfig()
    settings = dict(family="cvae", input_shape=[1, 4, 4], latent_dim=2, num_classes=3, hidden=[8])
    model = build_model(**settings, likelihood="bernoulli", prior_components=components)
    for k, v in settings.items():
        setattr(cfg.model, k, v)
    cfg.model.likelihood, cfg.model.prior_components = "bernoulli", components
    with torch.no_grad():
        weight = model.pz_table.weight.view(3, components, -1)
        weight[1, :, :2] += torch.tensor([[2.0, -1.0]]) + torch.arange(components)[:, None]  # locs
        weight[1, :, 2:4] -= 1.0  # scales below 1
    return Run(None, cfg, model.eval())


@pytest.mark.parametrize("components", [1, 3])  # a Gaussian p(z|y), a mixture (its mean and sd)
def test_the_manifold_and_the_default_traversal_lie_over_the_class_prior(components, monkeypatch):
    run = conditional_run(components)
    pz = run.model.prior(torch.tensor([1]))
    loc, sd = pz.mean[0].detach(), pz.stddev[0].detach()
    assert not torch.allclose(loc, torch.zeros(2)) and not torch.allclose(sd, torch.ones(2))  # not N(0, I)
    codes, decode = [], run.model.decode
    monkeypatch.setattr(run.model, "decode", lambda z, y: codes.append(z.detach()) or decode(z, y))
    latent_maps.manifold(run, 2, torch.tensor([1]))
    q = torch.tensor([-1.0, 1.0]) * 1.6448536  # N(0, 1)'s 5% and 95% quantiles
    z0, z1 = loc[0] + sd[0] * q, loc[1] + sd[1] * q.flip(0)  # columns: low to high z0; rows: high to low z1
    want = torch.stack([z0.repeat(2), z1.repeat_interleave(2)], 1)
    torch.testing.assert_close(codes[-1], want, atol=1e-5, rtol=1e-5)
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([1, 0, 2, 1])
    _, _, values = figures_module.traversals(run, x, y, dims=[0], span=1.0, steps=3)
    torch.testing.assert_close(codes[-1][:, 1], loc[1].repeat(3))  # the other dim stays at p(z|y=1)'s mean
    torch.testing.assert_close(codes[-1][:, 0], loc[0] + sd[0] * values)  # swept over p(z|y=1): mean +- 1 sd
    assert values.tolist() == [-1.0, 0.0, 1.0]  # in its sds: a run without labels sweeps N(0, I), the values
    plain = Run(
        None, RunConfig(), build_model(input_shape=[1, 4, 4], latent_dim=2, hidden=[8], likelihood="bernoulli").eval()
    )
    decode = plain.model.decode
    monkeypatch.setattr(plain.model, "decode", lambda z, y: codes.append(z.detach()) or decode(z, y))
    figures_module.traversals(plain, x, None, dims=[1], span=2.0, steps=3)
    torch.testing.assert_close(codes[-1], torch.tensor([[0.0, -2.0], [0.0, 0.0], [0.0, 2.0]]))


def test_the_latent_map_names_the_class_its_manifold_is_drawn_for(tmp_path, monkeypatch):
    shown = {}
    monkeypatch.setattr(latent_maps, "_save_figure", lambda fig, path: shown.setdefault("fig", fig) and path)
    run = conditional_run(1)
    latent_maps.latent_map(run, torch.rand(6, 1, 4, 4), [1, 0, 2, 1, 0, 2], tmp_path / "m.png", 3, ["a", "b", "c"])
    assert shown["fig"].axes[1].get_title() == "decoded manifold of class b (prior quantiles)"


class FullDisk:
    """A SummaryWriter on a full disk: its method ``fails`` raises ENOSPC."""

    fails = "__init__"

    def __init__(self, **kwargs) -> None:
        self.check("__init__")

    def check(self, name: str) -> None:
        if name == self.fails:
            raise OSError(errno.ENOSPC, "No space left on device")

    def add_scalar(self, *args, **kwargs) -> None:
        self.check("add_scalar")

    def flush(self) -> None:
        self.check("flush")

    add_image = add_scalar
    close = flush


@pytest.mark.skipif(find_spec("tensorboard") is None, reason="needs tensorboard")
@pytest.mark.parametrize("fails", ["__init__", "add_scalar", "flush", "thread"])
def test_tensorboard_events_on_a_full_disk_are_one_line(tiny_images, tmp_path, capsys, monkeypatch, fails):
    hooked = []  # what reached threading.excepthook: the writer thread's traceback, were it printed
    monkeypatch.setattr("threading.excepthook", hooked.append)
    if fails == "thread":  # the real writer, whose thread writes the events
        from tensorboard.summary.writer.record_writer import RecordWriter

        monkeypatch.setattr(RecordWriter, "write", lambda self, data: FullDisk.check(FullDisk, "__init__"))
    else:
        monkeypatch.setattr(FullDisk, "fails", fails)
        monkeypatch.setattr(tensorboard, "_writer_class", lambda: FullDisk)
    assert main(train_argv(tiny_images, tmp_path / "run", "--hidden", "8", "--latent-dim", "2")) == 1
    events = tmp_path / "run" / "events.out.tfevents.*"
    err, room = capsys.readouterr().err, f"; continue with vaekit train --resume {tmp_path / 'run'} once there is room"
    assert err in (f"vaekit: error: {events}: cannot write (No space left on device){r}\n" for r in ("", room))
    assert hooked == [] and threading.excepthook == hooked.append


def test_a_run_stopped_while_drawing_its_pictures_names_the_verb_that_draws_them(
    tiny_images, tmp_path, capsys, monkeypatch
):
    """Its epochs are trained: a resume trains nothing and draws the pictures that are missing."""

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(figures_callbacks, "plot_losses", stopped)
    run = tmp_path / "run"
    assert main(train_argv(tiny_images, run, "--hidden", "8", "--latent-dim", "2")) == 130
    err = capsys.readouterr().err
    hint = f"its epochs are all trained, its pictures not all drawn (vaekit train --resume {run} draws them)"
    assert err == f"vaekit: interrupted; {hint}\n"


def test_grids_show_at_most_their_first_items_and_every_reconstruction(tmp_path):
    save_samples(torch.rand(3000, 1, 4, 4), tmp_path / "s.png")  # 4 pixels: tiles of 28 + 2
    assert Image.open(tmp_path / "s.png").size == (32 * 30 + 2,) * 2  # the first 1024: 55 x 55 tiles before
    shown, nrow = plots.grid_head(torch.arange(3 * 2000.0), nrow=2000)  # a class grid: 3 rows of 2000
    assert nrow == 341 and shown.view(3, 341)[:, 0].tolist() == [0.0, 2000.0, 4000.0]  # each class's first
    with pytest.raises(VaekitError, match="steps 300: over 256"):
        figures_module.save_interpolation(
            torch.rand(2, 1, 4, 4), {"lerp": torch.rand(300, 1, 4, 4)}, tmp_path / "i.png"
        )
    x = torch.zeros(9, 1, 28, 28)  # black: blank tiles stay white
    save_reconstructions(x, x, tmp_path / "r.png")
    grid = np.asarray(Image.open(tmp_path / "r.png"))
    assert grid.shape == (4 * 30 + 2, 8 * 30 + 2)  # two rows of pairs: item 8 was dropped before
    third = grid[2 + 2 * 30 : 2 + 2 * 30 + 28]  # the second row of inputs: item 8, then blank tiles
    assert third[:, 2:30].max() == 0 and third[:, 32:60].min() == 255


def test_a_ladder_is_traversed_only_along_the_dims_its_decoder_reads():
    cfg = RunConfig()
    cfg.model.family, cfg.model.input_shape, cfg.model.latent_dims = "ladder", [1, 4, 4], [3, 2]
    model = build_model(family="ladder", input_shape=[1, 4, 4], latent_dims=[3, 2], hidden=[8], likelihood="bernoulli")
    run = Run(None, cfg, model.eval())  # codes [z_2 (2), z_1 (3)]: the decoder reads z_1, dims 2..4
    assert figures_module.decoded_dims(run) == [2, 3, 4]
    x = torch.rand(20, 1, 4, 4)
    _, dims, _ = figures_module.traversals(run, x, n_dims=5)
    assert sorted(dims) == [2, 3, 4]
    with pytest.raises(VaekitError, match=r"dims \[0\]: this run's decoder reads only dims 2..4"):
        figures_module.traversals(run, x, dims=[0, 3])
    plain = Run(None, RunConfig(), build_model(input_shape=[1, 4, 4], latent_dim=2, likelihood="bernoulli").eval())
    assert figures_module.decoded_dims(plain) == [0, 1]


def test_sample_and_reconstruct_pictures_record_their_weights_and_name_their_rows(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((60, 1, 4, 4)).astype("f4"), y=rng.integers(0, 3, 60))
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "d.npz", run, "--conditional", "--latent-dim", "2", "--hidden", "8")) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "6", "--out", str(run / "samples.png")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "rows, top to bottom: 0, 1, 2"
    assert main(["reconstruct", str(run), "--n", "9", "--out", str(run / "reconstructions.png")]) == 0
    assert Run.load(run).stale_files() == []  # both stamped with the weights' digest
    assert main(["sample", str(run), "--n", "3300", "--out", str(tmp_path / "big.png")]) == 0
    err = capsys.readouterr().err
    assert "big.png shows the first 341 of each class's 1100 of the 3300 samples; a .npy --out holds them all" in err
    with pytest.raises(VaekitError, match=r"temperature 1e\+39: over float32's largest number"):
        Run.load(run).sample(4, temperature=1e39, label=0)


def test_samples_gone_infinite_at_a_temperature_other_than_1_name_it():
    plain = Run(None, RunConfig(), build_model(input_shape=[1, 4, 4], latent_dim=2, likelihood="bernoulli").eval())
    with pytest.raises(NotFinite, match=r"temperature 3e\+38 drew codes too far out, or the model diverged"):
        plain.sample(8, temperature=3e38)
