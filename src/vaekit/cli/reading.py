"""How the scoring verbs (encode, anomaly, anomaly-eval) read files: --set's settings of how (never what: a run's
data is read as it trained), another photo folder at the run's item shape, --contamination's threshold, and
--unknown refused where it cannot take effect (``refuse_unknown``, for every verb that has it)."""

from __future__ import annotations

import argparse
import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

from .. import files
from ..errors import VaekitError
from .verbs import arg

READING = ("data.skip_unreadable", "data.cache", "data.in_memory", "data.workers", "data.data_dir")  # how, not what
SET = arg(  # dest: not "set", whose flag the CLI would offer for any setting an error names
    "--set",
    action="append",
    default=[],
    dest="reading",
    metavar="data.KEY=VALUE",
    help=f"how files are read, one of {', '.join(READING)} (data.skip_unreadable=true skips unreadable photos)",
)


def reading(args: argparse.Namespace, run, *specs: str | None):
    """``run`` (a copy) reading files as --set says (``READING``; any other setting refused in one line) and, where
    it set no data.image_size, a photo folder of ``specs`` other than its own data (None: its own) at its items'
    H, W (resized, not refused for its size), a run trained on arrays' at their channels too (``at_run_items``)."""
    from ..config.checks import validate
    from ..config.keys import full_keys
    from ..config.parse import set_value
    from ..data.photos import at_run_items
    from ..data.prepare import same_spec
    from .train_flags import given_sets

    cfg = copy.deepcopy(run.config)
    sets = full_keys(given_sets(args.reading))  # data.cache or cache
    for key in sets:
        if key not in READING:
            raise VaekitError(f"--set {key}: a run's data is read as it trained; --set takes {', '.join(READING)}")
    try:
        for key, value in sets.items():
            set_value(cfg, key, value, given=True)
        validate(cfg)
    except VaekitError as e:  # a setting of the run's own that today's checks refuse is not --set's fault
        if e.key in sets:
            raise VaekitError(f"--set: {str(e).removeprefix('config: ')}") from None
    own = [s is None or same_spec(s, cfg.data.spec) for s in specs]
    if any(not o and Path(str(s)).expanduser().is_dir() for s, o in zip(specs, own)):
        at_run_items(cfg.data, cfg.model.input_shape)  # (C, H, W): at its size, a run of arrays' at its channels
    return dataclasses.replace(run, config=cfg)


def refuse_unknown(args: argparse.Namespace) -> None:
    """Refuse --unknown other than its default, before anything is read, where no category could be read as a gap:
    RUN a multi-scale detector's folder (its items arrays, read with no settings), or a run not trained on a table
    with categorical columns (its table.json: ``files.TABLE``). Run by the dispatch for every verb given --unknown;
    a folder that is no run, or a table.json that cannot be read, is left to the run's loading to name."""
    how, run = getattr(args, "unknown", "refuse"), Path(getattr(args, "run", None) or "")
    if how == "refuse" or not getattr(args, "run", None) or not run.is_dir():
        return
    from ..data.run_json import read_schema  # here: a verb without --unknown imports nothing more
    from ..evaluation.detector_folder import is_detector

    if is_detector(run):
        raise VaekitError(f"--unknown {how}: {args.run} holds a multi-scale detector: its items are arrays")
    if not (run / files.CONFIG).is_file():
        return
    what = f"--unknown {how} reads a table run's unseen categories as gaps; {args.run}"
    if not (run / files.TABLE).is_file():
        raise VaekitError(f"{what} was not trained on a table (it has no {files.TABLE})")
    try:
        columns = read_schema(run / files.TABLE)["columns"]
    except VaekitError:  # the run's loading says what is wrong with it
        return
    if not any(c["kind"] == "categorical" for c in columns):
        raise VaekitError(f"{what}'s table has no categorical column")


def no_settings(args: argparse.Namespace, detector: bool) -> None:
    """Refuse --set for a multi-scale ``detector``'s folder: its items are arrays, read with no settings."""
    if detector and args.reading:
        raise VaekitError(f"--set: {args.run} holds a multi-scale detector, which reads its items with no settings")


def threshold_of(run, contamination: float, score: Callable[..., dict]) -> tuple[float, int]:
    """(--contamination's threshold: the (1 - contamination) quantile of the run's training split's ``score``s
    (``score(x, y)``: {name: (N,) scores}, the first taken), as the detector's offset_; the split's size), refused
    where its data is gone; one line where ties at it leave fewer than that share above it."""
    from ..data.builtin import builtin_name
    from ..data.images import note
    from ..evaluation.detector_fit import training_threshold

    spec, got = run.config.data.spec, {}
    if spec and builtin_name(spec) is None and not Path(spec).expanduser().exists():
        raise VaekitError(
            f"--contamination sets its threshold on the run's training split, read from its training data {spec}, "
            "which is not there: put it back, or score without --contamination"
        )

    def kept(x, y) -> dict:  # the training scores, for the ties
        got.update(score(x, y))
        return got

    cut, n = training_threshold(run, contamination, kept)
    train = next(iter(got.values()))  # (N,)
    above, tied = int((train > cut).sum()), int((train == cut).sum())
    if tied > 1 and above < contamination * n <= above + tied:
        note(
            f"{tied} of {n} training items tie at the threshold: {above} ({above / n:.1%}) score above it, fewer "
            f"than --contamination {contamination:g}; an item that scores as they do is not flagged"
        )
    return cut, n
