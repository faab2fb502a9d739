"""A run folder is data: loading one imports only allowed classes (vaekit's, torch.nn's, registered ones) through the
API, the console script and ``python -m vaekit`` run in it, unless ``trust_code``; its sizes, JSON and derived files
are checked or escaped; CSV cells are no formulas; the explorer answers only its own page (Host and Origin)."""

from __future__ import annotations

import csv
import http.client
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit.cli import main
from vaekit.data.table_values import write_csv
from vaekit.evaluation.outputs import write_scores
from vaekit.io import csv_cell
from vaekit.models import trust
from vaekit.models.spec import build
from vaekit.viz.explore import Explorer, make_server
from vaekit.viz.report import quality_html

from .conftest import train_argv

MARKER = "imported.txt"
NET = f"""import pathlib, vaekit
pathlib.Path(__file__).with_name({MARKER!r}).write_text("net.py ran")
class Model(vaekit.VAE):
    pass
"""
# an entry point beside net.py: metadata in the working directory must not allow what it declares
DIST = {
    "METADATA": "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    "entry_points.txt": "[vaekit.modules]\nnet = net:Model\n",
}


class Stack(nn.Sequential):
    """A user's own module class, importable as tests.test_security:Stack."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """A run of a VAE with nn.Sequential networks on 64 (1, 4, 4) images, and the images."""
    x = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    nets = nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4)))
    run = vaekit.fit(
        vaekit.VAE(*nets, latent_dim=2),
        x,
        epochs=1,
        out=tmp_path_factory.mktemp("s") / "run",
        progress=False,
        pictures=False,
    )
    return run.path, x


def copy_naming(trained, tmp_path: Path, edit) -> Path:
    """A copy of the run whose model.json ``edit(spec)`` changed, with net.py and an evil.dist-info beside it."""
    folder = shutil.copytree(trained[0], tmp_path / "run")
    saved = json.loads((folder / "model.json").read_text())
    edit(saved["spec"])
    (folder / "model.json").write_text(json.dumps(saved))
    (folder / "net.py").write_text(NET)
    (folder / "evil-1.0.dist-info").mkdir()
    for name, text in DIST.items():
        (folder / "evil-1.0.dist-info" / name).write_text(text)
    return folder


@pytest.fixture
def evil(trained, tmp_path, monkeypatch) -> Path:
    """The run, its model.json naming net:Model, opened as from a notebook started in it (cwd on sys.path)."""
    folder = copy_naming(trained, tmp_path, lambda spec: spec.update({"class": "net:Model"}))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("net", None)


@pytest.mark.parametrize("how", ["load_run", "script", "module"])
def test_a_folder_naming_its_own_code_is_refused_in_one_line(evil, how):
    if how == "load_run":
        with pytest.raises(vaekit.VaekitError) as e:
            vaekit.load_run(".")
        line = str(e.value)
    else:
        script = Path(sys.executable).with_name("vaekit")
        if how == "script" and not script.exists():  # vaekit on the path, not installed (a lent GPU machine)
            pytest.skip("the vaekit console script is not installed")
        cmd = [str(script)] if how == "script" else [sys.executable, "-m", "vaekit"]
        done = subprocess.run(
            [*cmd, "evaluate", "."], cwd=evil, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 2 and done.stdout == "", done.stderr
        line = done.stderr.strip()
        assert line.startswith("vaekit: error:") and line.endswith("(--trust-code)")
    assert "\n" not in line and "net:Model" in line and "register_module(Model)" in line and "trust_code" in line
    assert not (evil / MARKER).exists() and "net" not in sys.modules


def test_trust_code_imports_what_the_folder_names(evil, trained, capsys):
    run = vaekit.load_run(".", trust_code=True)
    assert (evil / MARKER).read_text() == "net.py ran" and type(run.model).__name__ == "Model"
    x = trained[1][:4]
    assert torch.equal(run.encode(x).mean, vaekit.load_run(trained[0]).encode(x).mean)  # the same weights
    assert main(["sample", ".", "--n", "4", "--out", "s.png"]) == 2  # each call decides for itself
    assert main(["sample", ".", "--n", "4", "--out", "s.png", "--trust-code"]) == 0 and (evil / "s.png").is_file()


@pytest.mark.parametrize("allow", ["register", "entry point: class", "entry point: module"])
def test_a_registered_class_loads(trained, tmp_path, monkeypatch, allow):
    path = f"{Stack.__module__}:{Stack.__qualname__}"
    folder = copy_naming(trained, tmp_path, lambda spec: spec["args"]["encoder"]["module"].update({"class": path}))
    monkeypatch.setattr(trust, "REGISTERED", {})
    with pytest.raises(vaekit.VaekitError, match=rf"names the class {path}, .*register_module\(Stack\)"):
        vaekit.load_run(folder)
    if allow == "register":
        assert vaekit.register_module(Stack) is Stack
    else:  # an installed package declares it (site directories are where installed packages live)
        site = tmp_path / "site"
        (site / "user-1.0.dist-info").mkdir(parents=True)
        (site / "user-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: user\nVersion: 1.0\n")
        value = path if allow.endswith("class") else Stack.__module__
        (site / "user-1.0.dist-info" / "entry_points.txt").write_text(f"[vaekit.modules]\nstack = {value}\n")
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setattr(trust, "_site_dirs", lambda: {site.resolve()})
    run = vaekit.load_run(folder)
    assert type(run.model.encoder) is Stack
    assert torch.equal(run.encode(trained[1][:4]).mean, vaekit.load_run(trained[0]).encode(trained[1][:4]).mean)


REFUSED = {  # name -> what the one line says; none of these is imported
    "vaekitevil:Model": "names the class",
    "vaekit_x.nets:Model": "names the class",
    "torch.nnx:Model": "names the class",
    "torch:nn.Linear": "names the class",
    "os:system": "names the class",
    "net:Model": "names the class",
    "torch.nn:Module.__subclasses__": "not a class name",
    "net": "not a class name",
    "vaekit.x:Y\n": "not a class name",
    "vaekit.models.trust:import_path": "not a torch.nn.Module class",
    "torch.nn:functional.relu": "not a torch.nn",
    "vaekit.evaluation.features:InceptionFeatures": "names the class",  # it opens the file its spec names
    "vaekit.models.trust:nn.Module.__class__": "not a class name",
}


@pytest.mark.parametrize("name", REFUSED)
def test_names_are_checked_before_any_import(name, tmp_path, monkeypatch):
    for module in ("vaekitevil", "vaekit_x", "net"):  # importing any of these would leave a marker
        (tmp_path / f"{module}.py").write_text(NET)
    (tmp_path / "vaekit_x").mkdir()
    (tmp_path / "vaekit_x" / "nets.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(vaekit.VaekitError, match=REFUSED[name]):
        trust.resolve_class(name, "model.json")
    assert not (tmp_path / MARKER).exists() and not (tmp_path / "vaekit_x" / MARKER).exists()


@pytest.mark.parametrize(
    "args",
    [
        {"encoder": {"module": {"class": "net:Model"}}},
        {"f": {"callable": "os:system"}},
        {"f": {"module": {"class": "torch.nn:Linear", "code": "x"}}},
        "os:system",
    ],
)
def test_arguments_are_json_values_and_nested_specs_only(args):
    with pytest.raises(vaekit.VaekitError, match=r"names the class net:Model|not a vaekit model spec"):
        build({"class": "torch.nn:Identity", "args": args})
    assert "net" not in sys.modules


@pytest.fixture
def unallocated(monkeypatch):
    """Fails a test that initialises a layer of over 10^5 weights outside the meta device."""
    init = nn.Linear.reset_parameters

    def checked(self: nn.Linear) -> None:
        if self.weight.numel() > 10**5 and not self.weight.is_meta:
            pytest.fail(f"{self} was allocated")
        init(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", checked)


@pytest.mark.parametrize(
    "edit",
    [
        lambda spec: spec.update({"class": "torch.nn:Module"}),  # allowed, but takes none of the VAE's arguments
        lambda spec: spec["args"].update({"encoder": {"module": {"class": "torch.nn:Linear", "args": [10**7, 10**7]}}}),
        lambda spec: spec["args"]["encoder"]["module"]["args"][1]["module"]["args"].update(out_features=10**5),
    ],
    ids=["arguments", "impossible", "allocatable"],
)
def test_a_spec_that_builds_no_model_or_not_these_weights_model_is_one_line(trained, tmp_path, edit, unallocated):
    with pytest.raises(vaekit.VaekitError, match=r"model.json do not build a model \(|builds a model of [0-9.]+ MB"):
        vaekit.load_run(copy_naming(trained, tmp_path, edit))


@pytest.mark.parametrize("verb", [["sample", "{run}", "--out", "{run}/s.png"], ["train", "--resume", "{run}"]])
def test_a_config_sized_beyond_its_weights_is_refused_before_it_is_allocated(tmp_path, capsys, verb, unallocated):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 4, 4), dtype=np.float32))
    run = tmp_path / "run"
    assert main(train_argv(tmp_path / "x.npy", run, "--set", "model.hidden=[8]")) == 0
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["hidden"] = [10**6, 10**6]  # 8 TB of float32 weights (encoder and decoder)
    (run / "config.json").write_text(json.dumps(cfg))
    assert main([a.format(run=run) for a in verb]) == 2
    assert "config.json builds a model of 8,000,336.0 MB, and " in capsys.readouterr().err


def test_a_sampler_file_that_is_no_object_is_one_line(trained, tmp_path):
    from vaekit.samplers import load_sampler, sampler_paths

    run = vaekit.load_run(shutil.copytree(trained[0], tmp_path / "run"))
    sampler_paths(run.path, "gmm")[1].write_text("[1]")
    with pytest.raises(vaekit.VaekitError, match=r"not the settings of a gmm sampler"):
        load_sampler(run, "gmm")


def test_own_and_torch_classes_load_without_a_skeleton(trained):
    spec = json.loads((trained[0] / "model.json").read_text())["spec"]
    assert spec["class"] == "vaekit.models.vae:VAE" and spec["args"]["encoder"]["module"]["class"].startswith(
        "torch.nn."
    )
    x = trained[1][:4]
    assert vaekit.load_run(trained[0]).encode(x).mean.shape == (4, 2)


@pytest.mark.parametrize("many", [True, False], ids=["10^4 modules", "10^5 deep"])
def test_a_model_json_of_too_many_modules_or_nested_too_deep_is_one_line(trained, tmp_path, many):
    more = [{"module": {"class": "torch.nn:Identity"}}] * 10**4  # 200,000 took over 300 s
    folder = copy_naming(trained, tmp_path, lambda spec: spec["args"]["encoder"]["module"]["args"].extend(more))
    many or (folder / "model.json").write_text("[" * 10**5 + "]" * 10**5)
    said = r"names 10,00\d modules; a model.json may name at most 10,000" if many else r"JSON \(nested too deeply\)"
    with pytest.raises(vaekit.VaekitError, match=said):
        vaekit.load_run(folder)


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(tmp_path):
    names = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+cmd|' /C calc'!A0", "-2+3", "\tx", "-1.5", "a=b"]
    paths = [n + "/1.png" for n in names]
    write_scores(out := tmp_path / "s.csv", {"nll": np.full(7, -1.5)}, torch.arange(7), names, paths)
    rows = list(csv.reader(out.open(newline="")))[1:]
    assert [r[3] for r in rows] == ["'" + n for n in names[:5]] + ["-1.5", "a=b"]  # a number stays a number
    assert [r[4] for r in rows[:5]] == [f"'{n}/1.png" for n in names[:5]] and {r[2] for r in rows} == {"-1.5"}
    assert [csv_cell(c) for c in ("\rx", "-inf", "1e-5", "")] == ["'\rx", "'-inf", "1e-5", ""]


@pytest.mark.parametrize("writer", ["scores", "table"])
def test_csv_names_holding_a_carriage_return_keep_their_rows(tmp_path, writer):
    """A "\\r" in a class, file, score or column name is quoted as "\\n" is: 2 rows read back, names exact."""
    pd, out, names, paths = pytest.importorskip("pandas"), tmp_path / "s.csv", ["ca\rt", "d\nog"], ["x\r.png", "y"]
    if writer == "scores":
        write_scores(out, {"el\rbo": np.array([1.0, 2.0])}, torch.arange(2), names, paths)
    else:
        write_csv({"el\rbo": np.array([1.0, 2.0]), "class_name": np.array(names, object), "file": np.array(paths)}, out)
    rows = list(csv.reader(out.open(newline="")))
    assert len(rows) == 3 and "el\rbo" in rows[0] and [r[rows[0].index("class_name")] for r in rows[1:]] == names
    frame = pd.read_csv(out)
    assert frame.shape[0] == 2 and frame["class_name"].tolist() == names and frame["file"].tolist() == paths
    assert frame["el\rbo"].tolist() == [1.0, 2.0] and not out.read_bytes().endswith(b"\r\n")  # rows end in "\\n"


def test_quality_json_fields_of_other_types_are_refused_and_its_text_escaped(trained, tmp_path, capsys):
    run = vaekit.load_run(shutil.copytree(trained[0], tmp_path / "run"))
    q = {"vaekit_weights_sha256": run.digest, "data": "x", "split": "test", "n": 40, "seed": 0}
    q |= {"features": {"kind": "<b>"}, "data_vs_data": {"fid": 1.0}, "samples": {"prior": {"fid": 2.0}}}
    (run.folder / "quality.json").write_text(json.dumps(q))
    assert "(&lt;b&gt; features, 40 items per set)" in "".join(quality_html(run))
    assert "quality.json: the folder's figures for these weights" in capsys.readouterr().err  # said, not taken as ours
    for key, value in [("n", "<script>alert(1)</script>"), ("data_vs_data", {"fid": "x"}), ("n", True)]:
        (run.folder / "quality.json").write_text(json.dumps({**q, key: value}))
        with pytest.raises(vaekit.VaekitError, match=f"not a whole vaekit quality.json \\({key}: .* is not"):
            quality_html(run)


def test_report_says_which_figures_are_the_folders_and_checks_metrics_csv_first(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 4, 4), dtype=np.float32))
    run, report = tmp_path / "run", ["report", str(tmp_path / "run"), "--iw-samples", "2", "--limit", "8"]
    assert main(train_argv(tmp_path / "x.npy", run, "--set", "model.hidden=[8]")) == 0
    metrics = (run / "metrics.csv").read_text()
    (run / "metrics.csv").write_text("epoch,train_loss\n1,<img src=x onerror=alert(2)>\n")
    assert main(report) == 2 and "not a vaekit metrics.csv" in capsys.readouterr().err
    assert not (run / "eval.json").exists()  # refused before eval.json was written
    (run / "metrics.csv").write_text(metrics)
    assert main(report) == 0 and "eval.json" not in capsys.readouterr().err  # computed
    assert main(report) == 0
    assert capsys.readouterr().err.startswith(f"vaekit: {run / 'eval.json'}: the folder's figures for these weights")


def ask(port: int, method: str, path: str, headers: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"z": [0.5, -1.0]}).encode() if method == "POST" else None
    conn.request(method, path, body, {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    status = response.status
    return status


def test_the_explorer_answers_only_its_own_page(trained, capsys):
    x = trained[1]
    server = make_server(Explorer(vaekit.load_run(trained[0]), x, None), 0, token="")  # the Host check alone
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        own = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        assert ask(port, "GET", "/api/items", {}) == 200 and ask(port, "POST", "/api/decode", {}) == 200
        assert ask(port, "GET", "/api/items", own) == 200 and ask(port, "POST", "/api/decode", own) == 200
        assert ask(port, "GET", "/api/items", {"Host": "example.com"}) == 403
        assert ask(port, "GET", "/", {"Host": f"example.com:{port}"}) == 403
        assert ask(port, "POST", "/api/decode", {"Origin": "http://example.com"}) == 403
        assert ask(port, "POST", "/api/decode", {"Origin": f"http://127.0.0.1:{port + 1}"}) == 403
        assert ask(port, "POST", "/api/decode", {"Origin": "null"}) == 403
        assert ask(port, "GET", "/api/info", {"Origin": "http://example.com"}) == 200  # a GET: CORS keeps it unread
    finally:
        server.shutdown()
        server.server_close()
    assert server.refused == {"Host": 2, "Origin": 3}
    log = capsys.readouterr().err.strip().splitlines()
    assert len(log) == 5 and log[-1].endswith("(refused so far: 2 by Host, 3 by Origin)")
    assert "403 GET '/api/items': Host 'example.com'" in log[0]
