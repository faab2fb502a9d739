"""vaekit in a notebook: a fit leaves the caller's matplotlib and RNG alone, trains the model in place, keeps its
folder after a change of directory, prints a short repr, and its errors and refusals are one line."""

from __future__ import annotations

import copy
import io
import logging
import signal
import subprocess
import sys
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import vaekit
from vaekit import files, logs
from vaekit.config import RunConfig, validate
from vaekit.data import Split
from vaekit.data.images import note
from vaekit.data.lazy import every_item
from vaekit.training import distributed
from vaekit.training.signals import Interrupted
from vaekit.viz.figures import save_interpolation, save_traversal
from vaekit.viz.latent_maps import latent_map
from vaekit.viz.plots import save_reconstructions, save_samples

from .conftest import tiny_config

QUIET = dict(progress=False, pictures=False)


def images(n: int = 48) -> np.ndarray:
    """(n, 1, 4, 4) binary float32 'images'."""
    return (np.random.default_rng(0).random((n, 1, 4, 4)) > 0.5).astype(np.float32)


def model(latent_dim: int = 2):
    torch.manual_seed(0)
    return vaekit.build_model(input_shape=[1, 4, 4], hidden=[8], latent_dim=latent_dim, likelihood="bernoulli")


@pytest.fixture
def svg_backend():
    """pyplot on the svg backend with one figure of the user's open; the backend before is restored after."""
    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    fig = plt.figure()
    yield fig
    plt.close(fig)
    plt.switch_backend(before)


def test_pictures_leave_the_callers_backend_and_figures_alone(svg_backend, tmp_path):
    x, rows = images(), torch.randn(30, 3)  # items of a table get matplotlib figures, images PNG grids
    run = vaekit.fit(model(), x, epochs=1, out=tmp_path / "run", progress=False)  # loss.png is a figure
    latent_map(run, x, np.arange(48) % 3, tmp_path / "map.png")
    save_samples(rows, tmp_path / "s.png")
    save_reconstructions(rows, rows + 0.1, tmp_path / "r.png")
    save_interpolation(rows[:2], {"lerp": rows[:5]}, tmp_path / "i.png")
    save_traversal(rows[:6].view(2, 3, 3), [0, 1], torch.linspace(-1, 1, 3), tmp_path / "t.png")
    assert matplotlib.get_backend() == "svg" and plt.get_fignums() == [svg_backend.number]
    assert plt.gcf() is svg_backend and (tmp_path / "run" / files.LOSS).is_file()


@pytest.mark.parametrize("how", ["fit", "train", "fails", "evaluate", "detector"])
def test_a_fit_leaves_the_callers_rng_as_it_was(how, tiny_images, tmp_path):
    m = model()  # seeded by its builder
    run = vaekit.fit(m, images(), epochs=1, **QUIET) if how == "evaluate" else None
    torch.manual_seed(1)
    before = torch.get_rng_state()
    if run is not None:  # evaluation seeds its own draws too
        vaekit.evaluate(run, images(8), k=2)
    elif how == "detector":
        vaekit.VAEAnomalyDetector(epochs=1, hidden=(4,), latent_dim=2).fit(np.random.default_rng(0).random((40, 3)))
    elif how == "fit":
        vaekit.fit(m, images(), epochs=1, seed=5, **QUIET)
    elif how == "train":
        vaekit.train(tiny_config(str(tiny_images), tmp_path / "run", epochs=1), seed=5, **QUIET)
    else:  # stopped by bad input after the seed was set
        with pytest.raises(vaekit.VaekitError):
            vaekit.fit(m, images(), epochs=1, standardize="true", **QUIET)
    assert torch.equal(torch.get_rng_state(), before)


def test_seed_seeds_the_training_not_the_weights_the_model_was_built_with():
    runs = []
    for caller in (1, 2):  # the caller's RNG differs; the fits' seeds do not
        torch.manual_seed(caller)
        runs.append(vaekit.fit(model(), images(), epochs=2, seed=3, **QUIET))  # model() seeds its build
    assert all(
        torch.equal(a, b) for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values())
    )


class Snapshots(vaekit.Callback):
    """The model's weights at each epoch's end."""

    def __init__(self):
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, epoch, metrics, model):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})


def test_fit_trains_the_model_in_place_and_leaves_it_with_the_best_epochs_weights():
    m, snaps = model(), Snapshots()
    run = vaekit.fit(m, images(), epochs=4, lr=0.05, callbacks=[snaps], **QUIET)
    losses = [row["val_loss"] for row in run.history]
    best = int(np.argmin(losses))
    assert run.model is m and not m.training and next(m.parameters()).device.type == "cpu"
    assert best < len(losses) - 1  # so the weights kept are the best epoch's, not the last's
    assert all(torch.equal(v, snaps.weights[best][k]) for k, v in m.state_dict().items())


def test_a_run_keeps_its_folder_after_the_working_directory_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = images()
    run = vaekit.fit(model(), x, epochs=1, out="runs/cd", **QUIET)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run.path == tmp_path / "runs" / "cd" and run.config.out == str(run.path)
    vaekit.fit_sampler(run, "gmm", x=torch.from_numpy(x), components=2)
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == []
    assert (tmp_path / "runs" / "cd" / files.SAMPLER_SETTINGS.format("gmm")).is_file()
    assert vaekit.load_run("../runs/cd").path == run.path and np.isfinite(vaekit.evaluate(run, x, k=2)["nll"])


def test_a_run_prints_as_one_short_line(tmp_path):
    run = vaekit.fit(model(), images(), epochs=2, out=tmp_path / "run", **QUIET)
    for shown in (repr(run), repr(vaekit.load_run(tmp_path / "run"))):
        assert len(shown) < 250 and "\n" not in shown and f"path='{tmp_path / 'run'}'" in shown
        assert "latent_dims=[2], input_shape=(1, 4, 4), epochs='2 of 2'" in shown
        assert f"best_val_loss={min(r['val_loss'] for r in run.history):.2f}, ended=" in shown
    assert "path=None" in repr(vaekit.fit(model(), images(), epochs=1, **QUIET))


def test_train_with_out_none_writes_no_folder(tiny_images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = vaekit.train(tiny_config(str(tiny_images), "runs/x", epochs=1), out=None, **QUIET)
    assert run.path is None and len(run.history) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.npy"]
    with pytest.raises(vaekit.VaekitError, match="give out") as e:
        vaekit.train(tiny_config(str(tiny_images), "runs/x", epochs=1), out=None, resume=True, **QUIET)
    assert e.value.key == "out"


def test_a_vaekit_error_shows_one_line_in_ipython():
    assert vaekit.VaekitError("x has NaNs")._render_traceback_() == ["VaekitError: x has NaNs"]
    from vaekit.models.spec import SpecError

    assert SpecError("bad spec")._render_traceback_() == ["SpecError: bad spec"]


def test_register_module_of_a_notebook_class_points_to_load_run_with_a_model():
    cls = type("Enc", (torch.nn.Module,), {"__module__": "__main__"})
    with pytest.raises(vaekit.VaekitError, match="notebook") as e:
        vaekit.register_module(cls)
    assert r"load_run(path, model=...)" in str(e.value) and "\n" not in str(e.value)


def test_train_device_takes_one_gpu_by_its_number(tmp_path):
    cfg = RunConfig()
    cfg.train.device = "cuda:0"
    validate(cfg)  # a config names it; the machine is asked when a run starts
    cfg.train.device = "gpu"
    with pytest.raises(vaekit.VaekitError, match="auto, cpu, cuda or cuda:N"):
        validate(cfg)
    beyond = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(vaekit.VaekitError, match=f"'{beyond}' cannot be used here: this machine has") as e:
        vaekit.fit(model(), images(), epochs=1, device=beyond, out=tmp_path / "run", **QUIET)
    assert e.value.key == "train.device" and not (tmp_path / "run").exists()
    with pytest.raises(vaekit.VaekitError, match=f"'{beyond}' cannot be used here: this machine has"):
        vaekit.VAEAnomalyDetector(epochs=1, device=beyond).fit(np.zeros((8, 2)))  # the trainer's own check
    if torch.cuda.is_available():
        run = vaekit.fit(model(), images(), epochs=1, device="cuda:0", **QUIET)
        assert len(run.history) == 1 and torch.isfinite(torch.tensor(run.history[0]["val_loss"]))


def test_a_latent_map_in_the_run_folder_is_stamped_and_goes_stale(tmp_path):
    x = images()
    run = vaekit.fit(model(), x, epochs=1, out=tmp_path / "run", **QUIET)
    latent_map(run, x, None, run.path / "latent.png")
    matplotlib.figure.Figure().savefig(run.path / "mine.png")  # the user's own picture records no weights
    assert files.stamp(run.path / "latent.png") == run.digest and run.stale_files() == []
    other = vaekit.Run(run.path, run.config, model(latent_dim=2).requires_grad_(False).eval())
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)
    assert other.stale_files() == ["latent.png"]


def test_training_imports_plain_tqdm_so_a_kernel_without_ipywidgets_warns_nothing():
    code = textwrap.dedent("""
        import sys, types, warnings
        sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")  # a Jupyter kernel, as tqdm.auto
        sys.modules["IPython"] = types.ModuleType("IPython")  # detects one, without ipywidgets
        sys.modules["IPython"].get_ipython = lambda: types.SimpleNamespace()
        sys.modules["ipywidgets"] = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import vaekit.training.progress, vaekit.training.trainer
        print([str(w.message) for w in caught if "Tqdm" in w.category.__name__])
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-1000:]


def test_a_dataset_prints_shapes_not_values(tmp_path):
    d = vaekit.load_dataset("digits", limit=100)
    assert "Split(x=(80, 1, 8, 8) float32, y=(80,) int64)" in repr(d) and len(repr(d)) < 400
    np.save(tmp_path / "a.npy", images(4))  # streamed: read when indexed
    assert (
        repr(Split(every_item(str(tmp_path / "a.npy"), "false"), None))
        == "Split(x=(4, 1, 4, 4) float32, read lazily, y=None)"
    )


class StopAt(Snapshots):
    """Sends this process ``signum`` at the end of step ``step`` (a Ctrl-C or a kill, mid-fit), with Snapshots'."""

    def __init__(self, step: int, signum: int = signal.SIGINT):
        super().__init__()
        self.step, self.signum = step, signum

    def on_step_end(self, step, metrics, model):
        if step == self.step:
            signal.raise_signal(self.signum)


@pytest.mark.parametrize(
    "step, signum, out", [(7, signal.SIGINT, None), (0, signal.SIGTERM, None), (7, signal.SIGINT, "run")]
)
def test_an_interrupted_fit_leaves_the_model_as_a_return_does_and_hands_over_what_it_trained(
    step, signum, out, tmp_path
):
    m, stop = model(), StopAt(step, signum)  # 3 steps an epoch: step 7 is in epoch 3, step 0 the first
    folder = None if out is None else tmp_path / out
    with pytest.raises(Interrupted) as e:
        vaekit.fit(m, images(), epochs=4, batch_size=16, lr=0.05, callbacks=[stop], out=folder, **QUIET)
    assert len(e.value.history) == len(stop.weights) == step // 3 and e.value.model is m
    assert not m.training and all(p.grad is None for p in m.parameters())
    if stop.weights:  # the best finished epoch's weights, as a return keeps them
        best = stop.weights[int(np.argmin([row["val_loss"] for row in e.value.history]))]
        assert all(torch.equal(v, best[k]) for k, v in m.state_dict().items())
    assert e.value._render_traceback_() == [f"Interrupted: {e.value}"] and "\n" not in str(e.value)
    assert e.value.code == 128 + signum and e.value.run == (None if folder is None else str(folder))
    if folder is not None:  # its checkpoint goes on as before
        resumed = vaekit.fit(m, images(), epochs=4, batch_size=16, lr=0.05, out=folder, resume=True, **QUIET)
        assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]


A_RUN = r"takes a Run, got VAE: pass the Run \(vaekit.fit's return, or vaekit.load_run\(folder\)\)"
PNG = "latent_map writes a PNG file: path must be a file name ending in .png, or None for the picture itself, got "
REFUSED = {  # a call with something in the wrong place -> the one line that says what to pass
    "evaluate": (lambda run: vaekit.evaluate(run.model, images(8), k=2), f"evaluate {A_RUN}"),
    "latent_map": (lambda run: vaekit.latent_map(run.model, images(8), None, "m.png"), f"latent_map {A_RUN}"),
    "fit_sampler": (lambda run: vaekit.fit_sampler(run.model, "gmm"), f"fit_sampler {A_RUN}"),
    "manifold": (lambda run: vaekit.manifold(run.model), f"manifold {A_RUN}"),
    "active_units": (lambda run: vaekit.active_units(run), r"means \(N, D\), got Run: pass run.encode\(x\).mean"),
    "file object": (lambda run: vaekit.latent_map(run, images(8), None, io.BytesIO()), PNG + "BytesIO"),
    "jpg": (lambda run: vaekit.latent_map(run, images(8), None, "m.jpg"), r"m.jpg: expected a .png file name \("),
    "no data": (lambda run: vaekit.fit(model()), "data is required: pass the items to fit on"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_model_a_run_a_file_or_nothing_in_the_wrong_place_is_one_line(case):
    call, says = REFUSED[case]
    with pytest.raises(vaekit.VaekitError, match=says) as e:
        call(vaekit.fit(model(), images(), epochs=1, **QUIET))
    assert "\n" not in str(e.value)


@pytest.fixture
def vaekit_logger():
    """The logger "vaekit" at its level after the test as before."""
    logger = logging.getLogger("vaekit")
    before = logger.level
    yield logger
    logger.setLevel(before)


def test_notes_and_warnings_are_the_vaekit_loggers_records_said_on_the_stderr_of_the_moment(vaekit_logger, capsys):
    note("a note")
    distributed.warn("a warning")
    logs.warning("a sampler's warning", bare=True)  # a line that names its source
    assert capsys.readouterr().err == "vaekit: a note\nvaekit: warning: a warning\na sampler's warning\n"
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    vaekit_logger.addHandler(handler)
    try:
        vaekit_logger.setLevel(logging.ERROR)  # silenced: the user's own handler hears nothing either
        note("hushed")
        distributed.warn("hushed")
        vaekit_logger.setLevel(logging.INFO)
        distributed.warn("heard")
    finally:
        vaekit_logger.removeHandler(handler)
    assert capsys.readouterr().err == "vaekit: warning: heard\n"
    assert [(r.levelname, r.getMessage()) for r in records] == [("WARNING", "heard")]


@pytest.mark.parametrize("standardize, said", [(None, True), ("true", False)])
def test_the_standardisation_note_is_said_only_where_auto_chose_it(standardize, said, capsys):
    torch.manual_seed(0)
    gaussian = vaekit.build_model(input_shape=[3], hidden=[4], latent_dim=2, likelihood="gaussian")
    x = np.random.default_rng(0).normal(5.0, 2.0, (40, 3)).astype(np.float32)
    run = vaekit.fit(gaussian, x, epochs=1, standardize=standardize, **QUIET)
    assert run.config.data.standardize == "true"
    assert ("each feature of the data is standardised" in capsys.readouterr().err) == said


@pytest.mark.parametrize("batch_size, said", [(1, True), (8, False)])
def test_a_dataloader_of_batch_size_1_is_noted(batch_size, said, capsys):
    loader = DataLoader(TensorDataset(torch.from_numpy(images(24))), batch_size=batch_size)
    run = vaekit.fit(model(), loader, epochs=1, **QUIET)
    assert run.config.train.batch_size == batch_size
    assert ("DataLoader: its batch_size is 1 (torch's default)" in capsys.readouterr().err) == said


def test_fit_takes_a_vaekit_dataset_as_its_train_and_val_splits():
    d = vaekit.load_dataset("digits", limit=100)
    m = vaekit.build_model(input_shape=[1, 8, 8], hidden=[8], latent_dim=2, likelihood="bernoulli")
    runs = [
        vaekit.fit(copy.deepcopy(m), data, epochs=1, seed=1, **QUIET, **kw)
        for data, kw in ((d, {}), ((d.train.x, d.train.y), {"val_data": (d.val.x, d.val.y)}))
    ]
    assert runs[0].history[0]["val_loss"] == runs[1].history[0]["val_loss"]
