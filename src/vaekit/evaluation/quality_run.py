"""``vaekit.quality(run)``: the sample quality of a run (from its prior or a post-hoc sampler) on the features of
its domain network, an Inception-v3 weights file or a user's module, written to RUN/quality.json."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import files
from ..data import Dataset
from ..data.photos import note
from ..data.prepare import prepare_data
from ..errors import VaekitError, is_number, is_whole, whole
from ..io import atomic_write_json, read_json, run_lock
from ..runs import Run, load_run
from ..samplers import ones_as_one, sampler_for, sampler_stamp
from .eval_files import data_path
from .eval_items import named_labels
from .features import InceptionFeatures, class_accuracy, domain_features
from .labels import label_map, numbered_as_run
from .metrics import pick_split
from .quality import quality_benchmark, sample_source, set_size
from .table_quality import own_data, quality_path, table_run_quality


def quality_data(run: Run, spec: str | os.PathLike | None = None) -> Dataset:
    """The run's data (or ``spec``), not binarised: samples are means of p(x|z), compared with the grey items.
    Items in memory (an array, a tensor) are refused in one line: the domain features train on a spec's labelled
    training split, and the samples are compared with its ``split``."""
    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        raise VaekitError(
            f"data: quality takes a data spec such as a .npy path or a dataset's name, not a {type(spec).__name__} "
            "(save the items with numpy.save and name the file)",
            key="data",
        )
    if not spec and not run.config.data.spec:
        raise VaekitError(
            "this run was trained on data passed in memory: quality needs a data spec (data: a .npy path "
            "or a dataset's name) for the items the samples are compared with",
            key="data",
        )
    cfg = copy.deepcopy(run.config)
    cfg.data.binarize = "none"
    return prepare_data(cfg, None if spec is None else os.fspath(spec))[0]


def labelled_as_run(run: Run, data: Dataset) -> Dataset:
    """``data`` with a conditional run's labels numbered as the run numbered its own (by class name, as
    ``evaluate``, ``encode`` and ``anomaly`` number them: a folder of classes 7/ and 9/ gives labels 7 and 9, not
    0 and 1); an unconditional run's data as they are (its samples draw no labels)."""
    return numbered_as_run(run, named_labels(run, data)) if run.model.needs_labels else data


def feature_net(features: str | Path | nn.Module, data: Dataset, **settings) -> tuple[nn.Module, dict]:
    """(module, description) for ``features``: 'domain', an Inception-v3 weights file, or an nn.Module;
    ``settings`` (the domain network's training) are refused for the other two, which take none."""
    if settings and not (isinstance(features, str) and features == "domain"):
        names, what = sorted(settings), "an nn.Module" if isinstance(features, nn.Module) else "an Inception file"
        raise VaekitError(
            f"feature setting(s) {', '.join(names)} are the domain network's; {what} as features takes none",
            key=names[0],
        )
    if isinstance(features, nn.Module):
        return features.eval(), {"kind": "module", "class": type(features).__name__}
    if features == "domain":
        net, info = domain_features(data, **settings)
        return net, {"kind": "domain", **info}
    return InceptionFeatures(features), {"kind": "inception", "file": str(features)}


def quality(
    run: Run | str | Path,
    *,
    features: str | Path | nn.Module = "domain",
    sampler: str | None = None,
    n: int | None = None,
    data: str | os.PathLike | None = None,
    split: str = "test",
    seed: int = 0,
    write: bool = True,
    target: str | None = None,
    temperature: float | list[float] = 1.0,
    **feature_settings,
) -> dict:
    """FID, KID, precision and recall (k = 3) of the run's samples, each beside its data-vs-data value.

    ``features``: 'domain' (a small classifier trained on the data's labelled training split, cached in
    $VAEKIT_CACHE or ~/.cache/vaekit), the path of an Inception-v3 weights file (torch-fidelity's), or any
    nn.Module mapping items (B, *shape) to (B, F). ``sampler``: None draws from the prior, else a post-hoc
    sampler name (``vaekit.SAMPLERS``). ``data``: a data spec (a path or a dataset's name; default: the run's own
    data; items in memory are refused). ``n`` items per set (default: half the ``split``). With ``write`` and a
    run folder the result joins RUN/quality.json (one entry per sampler, for these weights and features), or for
    other data than the run's own, which it names by its absolute "path", ``table_quality.quality_path``'s file.
    A table run gets the measures of ``evaluation.table_quality`` instead (``target``: the column that
    train-on-synthetic predicts). ``feature_settings`` train the domain network (``width``, ``steps``,
    ``batch_size``, ``lr``; see ``evaluation.features.SETTINGS``); other names, or settings with other
    features, are refused in one line. ``temperature`` scales the prior's draws (``Run.sample``'s: one number,
    or one per resolution of a deep run), recorded in quality.json; refused with a sampler and a table run.
    """
    start = time.perf_counter()
    run = run if isinstance(run, Run) else load_run(run)
    t = _check_call(run, sampler, n, seed, temperature)
    dataset = quality_data(run, data)
    table = _table_measures(dataset, features)
    _refuse_unused(table, target, feature_settings, t)
    if table:  # tables get their own measures (``table_quality``): KS, TV, correlations, train-on-synthetic
        ours = labelled_as_run(run, dataset)
        return table_run_quality(
            run, ours, sampler=sampler, n=n, seed=seed, write=write, target=target, split=split, data=data
        )
    own = data is None or own_data(run, dataset, data)  # other data's figures: a file of their own
    with run.writing() if write else nullcontext():  # a folder being written is refused before the work
        out = {
            **_measure(run, dataset, features, (sampler, t), n, split, seed, feature_settings),
            "seconds": round(time.perf_counter() - start, 3),
            files.DIGEST: run.digest,
        } | ({} if own or data is None else {"path": data_path(os.fspath(data))})  # whose figures
        if write and run.path is not None:
            write_quality(run, out, own)
    return out


def _check_call(run: Run, sampler: str | None, n: object, seed: object, temperature: object) -> float | list[float]:
    """One line, before the data are read or a feature network is trained, for a bad ``n``, ``seed`` or
    ``temperature`` (as ``Run.sample`` checks it, which it returns), or a ``sampler`` that cannot draw for this run
    (an unknown name, a conditional or table run) or that is given a temperature."""
    if n is not None:
        whole(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise VaekitError(f"seed must be a whole number, got {seed!r}", key="seed")
    t = run.check_temperature(temperature)
    if sampler is not None:
        sampler_for(run, sampler)
        run.sampler_alone(t := ones_as_one(t), None)  # one a resolution, all 1: the scalar 1 (its draws)
    return t


def _refuse_unused(table: bool, target: str | None, feature_settings: dict, temperature: object) -> None:
    """One line for a setting the measures cannot use: feature settings with a table's own measures (no feature
    network), a temperature there (its rows drawn at 1), ``target`` with FID and the rest (only a table's
    train-on-synthetic predicts a column)."""
    if table and feature_settings:
        names = sorted(feature_settings)
        raise VaekitError(
            f"feature setting(s) {', '.join(names)}: a table run's measures use no feature network", key=names[0]
        )
    if table and temperature != 1.0:
        raise VaekitError("temperature: a table run's measures draw its rows at temperature 1", key="temperature")
    if not table and target is not None:
        raise VaekitError(f"target {target!r}: only a table run's measures (train-on-synthetic) use it", key="target")


def _table_measures(dataset: Dataset, features: str | Path | nn.Module) -> bool:
    """Whether ``quality`` hands over to ``evaluation.table_quality``: a table; features other than 'domain'
    (the default) are refused there in one line, since a table's measures use none."""
    if dataset.kind != "table":
        return False
    if not (isinstance(features, str) and features == "domain"):
        what = type(features).__name__ if isinstance(features, nn.Module) else repr(str(features))
        raise VaekitError(f"features {what}: a table run's measures use no feature network", key="features")
    return True


def _measure(
    run: Run,
    dataset: Dataset,
    features: str | Path | nn.Module,
    source: tuple[str | None, float | list[float]],
    n: int | None,
    split: str,
    seed: int,
    feature_settings: dict,
) -> dict:
    """``quality``'s figures, less the time and digest: the run's samples (``source``: from the sampler or the
    prior, at the temperature) and the ``split``'s items (N, *shape) compared on the features of ``features``."""
    sampler, temperature = source
    test = pick_split(dataset, split, None)  # a split other than train, val or test: one line
    set_size(n, len(test.x))  # before the domain network trains (minutes), not after
    net, about = feature_net(features, dataset, **feature_settings)
    ours, kept = labelled_as_run(run, dataset), dict[str, torch.Tensor]()  # train.y: the classes drawn, as the run
    result = quality_benchmark(sample_source(run, sampler, ours.train.y, kept, temperature), test.x, net, n, seed)
    stamp = None if sampler is None or run.path is None else sampler_stamp(run.path, sampler, run.digest)
    return {
        "data": dataset.name,
        "split": split,
        "n": result["n"],
        "seed": seed,
        "temperature": temperature,
        "features": about,
        "data_vs_data": result["data_vs_data"],
        "samples": {sampler or "prior": result["samples"]},
        "samplers": {} if stamp is None else {sampler: stamp},  # the settings and file of the sampler measured
        **({"fid_caveat": f"{sampler or 'prior'}: {result['fid_caveat']}"} if "fid_caveat" in result else {}),
        **class_figures(run, dataset, ours, split, (net, about), kept),
    }


def class_figures(run: Run, dataset: Dataset, ours: Dataset, split: str, features: tuple, kept: dict) -> dict:
    """{"class_accuracy": the domain classifier's hits on a conditional run's samples ``kept`` (x, y (n,)) and on
    the real ``split`` of ``ours`` (``dataset`` numbered as the run's)}; {"class_accuracy_note": why}; or {}."""
    (net, about), names = features, run.classes or [str(k) for k in range(run.config.model.num_classes)]
    if "y" not in kept:
        return {}
    if about["kind"] != "domain":
        why = "an nn.Module is" if about["kind"] == "module" else "Inception features are"
        return {"class_accuracy_note": f"class accuracy not measured: {why} no classifier of the data's classes"}
    mapped = label_map(run, named_labels(run, dataset).classes, dataset.name)  # the classifier's numbers -> run's
    real = pick_split(ours, split, None)
    figures = class_accuracy(net, (kept["x"], kept["y"]), (real.x, real.y), names, mapped and mapped[0])
    return {"class_accuracy": figures}


def write_quality(run: Run, result: dict, own: bool = True) -> Path:
    """Write ``result`` to RUN/quality.json (its ``own`` data's; else ``quality_path``'s file, by its data, split
    and "path"), keeping the entries of other samplers measured alike (one note names those of other settings that
    it replaces, with the settings); the path written."""
    where = result.get("path")
    path = run.folder / files.QUALITY if own else quality_path(run.folder, result["data"], result["split"], where)
    with run_lock(run.folder):
        try:
            saved = {"temperature": 1.0} | read_quality(path, run.digest)  # a file from before temperatures: 1
        except VaekitError:  # not whole: replaced
            saved = {}
        other = [k for k in ("data", "split", "n", "seed", "features", "temperature") if saved.get(k) != result[k]]
        whole = isinstance(saved.get("samples"), dict) and bool(saved["samples"])  # a file not whole is replaced
        if not other and whole and result["features"]["kind"] != "module":  # two modules may share a class name
            samplers, said = {**saved.get("samplers", {}), **result["samplers"]}, caveats(saved, result)
            result = {**result, "samples": {**saved["samples"], **result["samples"]}, "samplers": samplers, **said}
        elif whole:
            why = [f"{k} {saved.get(k)} (now {result[k]})" if k != "features" else "other features" for k in other]
            replaced = f"{path}: its figures of {', '.join(saved['samples'])} are replaced by these, measured with"
            note(f"{replaced} other settings: {', '.join(why) or 'features of another module'}")
        return atomic_write_json(path, result)


def caveats(saved: dict, result: dict) -> dict:
    """{"fid_caveat": each sampler's FID caveat ("name: why", joined by " | ")}: ``result``'s, and the ``saved``
    file's of the samplers it did not measure (their figures kept beside its); {} where none is left."""
    old = [c for c in str(saved.get("fid_caveat") or "").split(" | ") if c.split(": ")[0] not in result["samples"]]
    kept = [c for c in [*old, result.get("fid_caveat")] if c]
    return {"fid_caveat": " | ".join(kept)} if kept else {}


def read_quality(path: Path, digest: str) -> dict:
    """quality.json when it holds figures of the weights with ``digest``, else {}; of its samplers' figures only
    those of the sampler saved in the run now (``current_samples``). A file whose fields are not of their types (a
    count that is no whole number, a figure that is no number) is refused in one line; whether every part is there
    is the reader's to check (``viz.report`` refuses a file that is not whole)."""
    if not path.is_file() or files.stamp(path) != digest:
        return {}
    q = read_json(path)
    if not isinstance(q, dict):
        raise _not_whole(path, "JSON: not an object")
    bad = next(((k, what) for k, (check, what) in _types(q).items() if k in q and not check(q[k])), None)
    if bad is not None:
        raise _not_whole(path, f"{bad[0]}: {str(q[bad[0]])[:60]!r} is not {bad[1]}")
    return current_samples(q, path.parent, digest) if isinstance(q.get("samples"), dict) else q


def current_samples(q: dict, folder: Path, digest: str) -> dict:
    """quality.json ``q`` with the prior's figures and those of each sampler whose recorded settings and weights
    file are those saved in ``folder`` now (``samplers.sampler_stamp``): a sampler fitted again since, with other
    settings or on other codes, makes its figures stale, as does a file that records no sampler."""
    found = q.get("samplers")
    stamps: dict = found if isinstance(found, dict) else {}
    now = {k: sampler_stamp(folder, k, digest) for k in q["samples"] if k != "prior"}
    kept = {k: v for k, v in q["samples"].items() if k == "prior" or (now[k] is not None and stamps.get(k) == now[k])}
    return {**q, "samples": kept, "samplers": {k: stamps[k] for k in kept if k in stamps}}


def _not_whole(path: Path, why: str) -> VaekitError:
    return VaekitError(f"{path}: not a whole vaekit quality.json ({why}); run vaekit quality again or remove it")


Check = tuple[Callable[[object], bool], str]  # a check of a field and what it checks, in words


def _types(q: dict) -> dict[str, Check]:
    """The check of each field of quality.json ``q`` the report shows (a table run's or an image run's)."""
    table = q.get("kind") == "table"
    counts = ("n_real", "n_synthetic", "n_test", "seed") if table else ("n", "seed")
    types: dict[str, Check] = dict.fromkeys(counts, (is_whole, "a count"))
    types |= dict.fromkeys(("data", "split", "fid_caveat"), (lambda v: isinstance(v, str), "text"))
    types["temperature"] = (lambda v: all(map(is_number, v if isinstance(v, list) else [v])), "a temperature")
    if not table:
        types["data_vs_data"] = (_figures, "figures by name")
        types["samples"] = (lambda v: isinstance(v, dict) and all(map(_figures, v.values())), "figures by sampler")
        types["features"] = (lambda v: isinstance(v, dict) and isinstance(v.get("kind"), str), "a kind of features")
    return types


def _figures(d: object) -> bool:
    """Whether ``d`` is a dict of figures: numbers (not bools) by name."""
    return isinstance(d, dict) and all(map(is_number, d.values()))


def quality_rows(result: dict) -> list[dict]:
    """quality.json as table rows: the data-vs-data yardstick, then one row per sampler."""
    rows = [{"samples": "data vs data (yardstick)", **result["data_vs_data"]}]
    return rows + [{"samples": name, **figures} for name, figures in result["samples"].items()]
