"""The application verbs: encode (embeddings), anomaly (scores), anomaly-eval (metrics), disentangle."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from .. import files
from ..errors import VaekitError, is_seed
from ..evaluation.score_names import SCORES, SETTINGS
from ..io import printable
from .columns import COLUMNS, column_csv, refuse_columns
from .detectors import SCORES_CSV, detector_anomaly, detector_eval, print_metrics
from .reading import SET, no_settings, reading, threshold_of
from .verbs import arg, at_least, count, data_arg, not_data, out_path, positive, seed, split_arg, unknown_arg, verb


def scoring(name: str, help: str, *extra: tuple, limit: str = "", examples: tuple[str, ...] = ()) -> Callable:
    """``verb`` for the two scoring verbs, with the arguments they share (--split: all or a seeded split, the
    default ``default_split``'s); ``limit`` ends --limit's help; ``examples`` end the help page."""
    return verb(
        name,
        help,
        arg("run", help="run folder, or a multi-scale detector's (VAEAnomalyDetector's out; scored on --data)"),
        split_arg(),
        arg(
            "--score",
            help=f"comma-separated, from {', '.join(SCORES)} (default: every one that applies: "
            "complexity needs images, llr a hierarchy, likelihood_regret a Gaussian q(z|x))",
        ),
        *(
            arg("--" + k.replace("_", "-"), type=count, help=f"{s.help} (default {s.default})")
            for k, s in SETTINGS.items()
        ),
        arg("--limit", type=count, help="only the first N items" + limit),
        arg("--seed", type=count, default=0, help="seed of the scores' random draws (default 0)"),
        arg("--batch-size", type=count, default=256),
        unknown_arg(),
        SET,
        *extra,
        examples=examples,
    )


@verb(
    "encode",
    "posterior means and scales of every item as given (a binarised run's grey) -> .npy, .npz or .csv",
    arg("run", help="run folder"),
    data_arg("grey"),
    split_arg("all"),
    arg(
        "--out",
        required=True,
        help=".npy (N, 2D: loc then scale), .npz (loc, scale) or .csv; the .npz and .csv also hold each item's row "
        "in its file (index) where it is known (a split's; all's where a table's rows were left out), a photo "
        "folder's each item's file, and where the data has labels each item's label (a conditional run's codes "
        "are q(z|x, y)) and, where they are named, its class_name (the .npz: the classes, label 0 first); the "
        ".csv's columns in anomaly's order: index, label, loc_i, scale_i, class_name, file",
    ),
    arg("--limit", type=count, help="only the first N items"),
    arg("--batch-size", type=count, default=1000),
    unknown_arg(),
    SET,
    examples=("vaekit encode runs/d --out codes.npz", "vaekit encode runs/d --data new.npy --out codes.csv"),
)
def cmd_encode(args: argparse.Namespace) -> None:
    import numpy as np

    from ..data.table_cells import unknown_categories
    from ..evaluation.codes import CODE_SUFFIXES, write_codes
    from ..evaluation.outputs import item_files, item_rows, prepared_split
    from ..models.posteriors import MOMENT_DRAWS
    from ..runs import Run

    if Path(args.out).suffix.lower() not in CODE_SUFFIXES:
        raise VaekitError(f"--out {args.out}: expected a .npy, .npz or .csv file name")
    positive(args.batch_size, "--batch-size")
    positive(args.limit, "--limit")  # None: every item
    run = reading(args, Run.load(args.run, args.device), args.data)
    not_data(args.out, args.data, run.config.data.spec)
    with unknown_categories(args.unknown):  # grey, as run.encode
        s, classes = prepared_split(run, args.data, args.split, args.limit, binarized=False)
    x, rows = s.x, item_rows(s)  # each item's row in its file; all's where rows were left out (a table's gaps)
    if args.split == "all" and rows is not None and np.array_equal(rows, np.arange(len(rows))):
        rows = None  # every row, in file order: its place says it
    files = item_files(run.config, args.data, None if args.split == "all" else rows)  # a photo folder's, in order
    files = None if files is None else files[: len(x)]
    d = write_codes(run, x, args.out, args.batch_size, files, rows, s.y, classes)
    flow = run.config.model.posterior != "gaussian"  # iaf, nsf: q(z|x)'s scale has no closed form
    how = f" (flow posterior: scale estimated from {MOMENT_DRAWS} fixed draws of q(z|x))" if flow else ""
    print(f"{len(x)} posterior means and scales ({d} dims) written to {printable(args.out)}{how}")


def scores_of(args: argparse.Namespace, run, x, y=None) -> dict:
    """The scores --score names (default: every one that applies, those the model leaves out said in a note) of the
    first --limit items of x (and labels y (N,), which a conditional run needs)."""
    import numpy as np

    from ..data.images import note
    from ..data.lazy import head
    from ..evaluation.score_checks import left_out_note
    from ..evaluation.scores import anomaly_scores, check_scores, scores_that_apply

    given = {k: s.default if getattr(args, k) is None else getattr(args, k) for k, s in SETTINGS.items()}
    if run.model.needs_labels:
        if y is None:
            raise VaekitError("this run is conditional: its scores need each item's label, and this data has none")
        y = run.labels(y[: args.limit], len(y[: args.limit]))  # each in the run's classes 0..K-1
    if args.score is None:  # every score that applies to these items; those the model leaves out said once
        first, left = (x[:1].to(run.device), None if y is None else y[:1].to(run.device)), dict[str, str]()
        names = scores_that_apply(run.model, len(run.config.model.input_shape) == 3, *first, left=left)
        if (said := left_out_note(left)) and not vars(args).get("left_said"):  # anomaly-eval: in, then out
            note(said)
            args.left_said = True
    else:
        names = check_scores([s.strip() for s in args.score.split(",") if s.strip()])
    y = None if y is None else y[: args.limit]
    draws = (given["samples"], given["iw_samples"], given["steps"], args.seed, args.batch_size)
    scores = anomaly_scores(run.model, head(x, args.limit), names, *draws, y=y, llr_k=given["llr_k"])
    for name, v in scores.items():  # float32 arithmetic overflows for items far beyond the training data
        if (bad := int((~np.isfinite(v)).sum())) == len(v):  # every item: the model, not the data
            raise VaekitError(
                f"{name} is no finite number for any of the {bad} items scored: their values lie too far from the "
                "training items, or the run's weights diverged (see its validation loss in metrics.csv)"
            )
        if bad:
            i = int(np.argmin(np.isfinite(v)))
            raise VaekitError(
                f"{name} is no finite number for {bad} of {len(v)} items, the first the {ordinal(i + 1)} scored: "
                "its values lie too far from the training items"
            )
    return scores


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@scoring(
    "anomaly",
    "anomaly scores per item -> .csv",
    data_arg("drawn"),
    arg("--out", required=True, help=SCORES_CSV),
    arg(
        "--contamination",
        type=float,
        metavar="FRACTION",
        help="in (0, 0.5]: label items by the one --score, 1 (outlier) above its (1 - FRACTION) quantile on the "
        "run's training split, in an outlier column after it (PyOD's threshold_ and labels_)",
    ),
    arg("--label-column", help="a table file's column read as labels, not scored: written as label (and class_name)"),
    COLUMNS,
    examples=("vaekit anomaly runs/d --out scores.csv", "vaekit anomaly runs/d --data new.npy --out new-scores.csv"),
)
def cmd_anomaly(args: argparse.Namespace) -> None:
    from ..data.table_cells import unknown_categories
    from ..evaluation.detector_fit import check_contamination
    from ..evaluation.detector_folder import is_detector
    from ..evaluation.outputs import default_split, item_files, item_rows, write_scores
    from ..runs import Run
    from .anomaly_sets import labelled_split

    if Path(args.out).suffix.lower() != ".csv":
        raise VaekitError(f"--out {args.out}: expected a .csv file name")
    positive(args.batch_size, "--batch-size")
    positive(args.limit, "--limit")  # None: every item
    not_data(args.out, args.data)
    no_settings(args, is_detector(args.run))
    refuse_columns(args)
    if is_detector(args.run):
        return detector_anomaly(args)
    seed(args.seed)  # a detector's folder checks its own
    labelled = args.contamination is not None
    if labelled:  # refused before anything is read or scored
        check_contamination(args.contamination)
        if len([v for v in (args.score or "").split(",") if v.strip()]) != 1:
            raise VaekitError("--contamination labels items by one score: name it with --score (such as neg_elbo)")
    run = Run.load(args.run, args.device)
    not_data(args.out, args.data, run.config.data.spec)
    cut, n_train = 0.0, 0
    if labelled:  # the threshold first: on every item of the run's training split, as the detector's offset_
        every, own = argparse.Namespace(**{**vars(args), "limit": None}), reading(args, run)
        cut, n_train = threshold_of(own, args.contamination, lambda x, y: scores_of(every, own, x, y))
    run = reading(args, run, args.data)
    split = args.split or default_split(run.config, args.data)
    with unknown_categories(args.unknown):  # a table's --label-column read as labels, not scored
        s, classes = labelled_split(args, run, split, args.limit)
    scores = scores_of(args, run, s.x, s.y)
    name, columns = next(iter(scores)), dict(scores)
    if labelled:
        columns["outlier"] = (scores[name] > cut).astype(int)  # PyOD's labels_: 1 = outlier
    extra, worst = column_csv(args, run, s.x, s.y, scores)  # --columns: col:<name> per column, worst_column
    columns.update(extra)
    rows = item_rows(s)  # each item's row in its file; a photo folder's file names them, in every split
    files = item_files(run.config, args.data, None if split == "all" else rows)
    y = None if s.y is None else s.y[: args.limit]
    n = write_scores(args.out, columns, y, classes, None if files is None else files[: args.limit], rows)
    print(
        f"{n} items of the {split} split scored ({', '.join(scores)}; higher = more anomalous) -> {printable(args.out)}"
    )
    if args.label_column is not None and s.y is None:  # readers.py said which rows have none
        print(f"no label column written: column {args.label_column!r} has rows without a label (a gap is no class)")
    if worst:
        print(worst)
    if labelled:
        q, flagged = 1 - args.contamination, int(columns["outlier"].sum())
        print(f"threshold {cut:.7g} ({name}'s {q:.4g} quantile of {n_train} training items): {flagged} of {n} flagged")


@scoring(
    "anomaly-eval",
    "AUROC, AUPRC and FPR at 95%% TPR per score",
    data_arg("drawn", name="--in", what="in-distribution data spec (default: the run's own data)", dest="inliers"),
    arg("--ood", help="out-of-distribution data spec, its items taken as --in's"),
    data_arg("drawn", what="one labelled data set: --normal names its in-distribution classes"),
    arg("--normal", help="comma-separated class names counted as in-distribution (with --data; unnamed: 0, 1, ...)"),
    arg("--label-column", help="a table file's column holding the labels --normal names, for a run trained without"),
    arg("--json", action="store_true", help="print the item counts and each score's AUROC, AUPRC, FPR@95%%TPR as JSON"),
    limit=" of each set",
    examples=("vaekit anomaly-eval runs/d --ood mnist5k", "vaekit anomaly-eval runs/d --data digits --normal 0,1"),
)
def cmd_anomaly_eval(args: argparse.Namespace) -> None:
    from ..data.images import note
    from ..data.prepare import same_spec
    from ..data.table_cells import unknown_categories
    from ..evaluation.detector_folder import is_detector
    from ..runs import Run
    from .anomaly_sets import eval_sets

    positive(args.batch_size, "--batch-size")
    positive(args.limit, "--limit")  # None: every item
    no_settings(args, is_detector(args.run))
    if is_detector(args.run):
        return detector_eval(args)
    seed(args.seed)
    run = reading(args, Run.load(args.run, args.device), *((args.data,) if args.data else (args.inliers, args.ood)))
    with unknown_categories(args.unknown):
        (x_in, y_in), (x_out, y_out) = eval_sets(args, run)  # --in/--ood, or --data split by --normal
    if len(x_in) == 0 or len(x_out) == 0:
        raise VaekitError(f"anomaly-eval: {len(x_in)} in-distribution and {len(x_out)} anomalous items; need both")
    if args.ood is not None and same_spec(args.ood, args.inliers or run.config.data.spec):
        note(f"--in and --ood are the same data and split ({args.ood}): each item scores as its twin, AUROC 0.5")
    print_metrics(scores_of(args, run, x_in, y_in), scores_of(args, run, x_out, y_out), args.json)


@verb(
    "disentangle",
    "MIG, FactorVAE, beta-VAE, DCI, SAP of a dsprites run -> RUN/disentangle.json",
    arg("run", help="run folder (a flat, unconditional run of family vae trained on a dsprites spec)"),
    arg("--n", type=count, default=10000, help="sampled items of MIG, SAP, DCI (as many again / 2 to test); >= 1000"),
    arg(
        "--votes",
        type=count,
        default=1000,
        help="training votes of the FactorVAE and beta-VAE scores (half as many evaluate; dl uses 10000); >= 100",
    ),
    arg("--seed", type=count, default=0, help="seed of the sampled items and votes (default 0)"),
    arg("--range", type=float, default=2.5, help="traversal values from -R to R"),
    arg("--n-dims", type=count, default=10, help="the traversal figure's rows: the dims of most normalised MI"),
    arg("--out", help=f"traversal figure (default: RUN/{files.DISENTANGLE_FIGURE})"),
    arg("--json", action="store_true", help="print the metrics as JSON"),
)
def cmd_disentangle(args: argparse.Namespace) -> None:
    from ..evaluation.disentangle_run import MIN_N, MIN_VOTES, WHY_N, WHY_VOTES, evaluate_run, unwritable
    from ..io import atomic_write_json, run_lock
    from ..runs import Run
    from ..viz.figures import save_factor_traversals
    from ..viz.plots import stamped

    at_least(args.n, MIN_N, "--n", WHY_N)
    at_least(args.votes, MIN_VOTES, "--votes", WHY_VOTES)
    at_least(args.n_dims, 1, "--n-dims", "the figure's rows")
    if not is_seed(args.seed):  # as train.seed and the detectors' --seed
        raise VaekitError(f"--seed must be in [0, 2**32), got {args.seed}")
    if not 0 < args.range < float("inf"):
        raise VaekitError(f"--range must be a positive finite number, got {args.range}")
    run = Run.load(args.run, args.device)  # RUN first: a file named as RUN is no folder for --out's default
    out = out_path(args, files.DISENTANGLE_FIGURE)
    if why := unwritable(out):
        raise VaekitError(f"--out {out}: {why}")
    result = {**evaluate_run(run, args.n, args.votes, args.seed, args.n_dims), files.DIGEST: run.digest}
    with run_lock(run.folder), stamped(run.digest):
        save_factor_traversals(run, result["dims"], out, args.range, shown=result["traversal_dims"])
        atomic_write_json(run.folder / files.DISENTANGLE, result)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("  ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in result["metrics"].items()))
    active, std = result["active_dims"], result["settings"]["active_std"]
    none = "; the FactorVAE score needs one" if not active else ""
    print(f"active dims (std of the posterior means >= {std}): {active} of {len(result['dims'])}{none}")
    print("  ".join(f"z{d['dim']}:{d['factor'] or '-'}({d['normalised_mi']:.2f})" for d in result["dims"]))
    drawn = result["traversal_dims"]
    print(
        f"-> {printable(Path(args.run) / files.DISENTANGLE)}, {printable(out)}"  # both as RUN and --out were given
        + (f" (dims {', '.join(map(str, drawn))})" if len(drawn) < len(result["dims"]) else "")
    )
