"""The model zoo (issue 28): a row per prior, posterior, objective, discrete model and post-hoc sampler on
dynamically binarised Fashion-MNIST at one stated budget, side by side with the pythae 0.1.2 models that pythae
also has, trained in the same run on the same data, networks and budget.

Columns: test NLL (IWAE bound, K samples, on the first --test-limit test images), FID, precision and recall on
the domain features (vaekit.evaluation.features, the same network as benchmarks/fid_sanity.py) of --fid-n
sample means against --fid-n test images, with the data-vs-data floor, and training samples per second.

    make bench-peer-install                               # the peers (pythae beside torch) into .venv
    .venv/bin/python benchmarks/zoo.py                    # the stated budget (about 30 min on 2 CPU threads)
    .venv/bin/python benchmarks/zoo.py --quick            # a smoke run
    .venv/bin/python benchmarks/zoo.py --only pythae --rows factor  # rerun rows in place of the stored ones
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback

import common
import runner
import torch
import zoo_rows as zr

from vaekit.data import load_dataset
from vaekit.evaluation.features import domain_features
from vaekit.evaluation.quality import quality_benchmark
from vaekit.models import build_model

COLUMNS = ["library", "axis", "model", "test NLL (nats)", "FID", "precision", "recall", "train samples/s", "note"]
FLOOR = ["fid", "precision", "recall"]
PAIRS = [  # (vaekit row, pythae row) for the side-by-side targets
    ("standard", "VAE"),
    ("iwae K=5", "IWAE K=5"),
    ("miwae M=5 K=5", "MIWAE M=5 K=5"),
    ("vamp", "VAMP"),
    ("iaf", "VAE_IAF"),
    ("mmd", "INFOVAE_MMD"),
    ("factor gamma=10", "FactorVAE gamma=10"),
    ("vq", "VQVAE + PixelCNN"),
    ("standard + gmm", "VAE + GMM"),
    ("standard + flow", "VAE + MAF"),
]


def score(name: str, sample, nll_value, rate_value, note: str, ctx: dict) -> list:
    """One row's figures: FID, precision, recall of ``sample`` (n -> (n, 1, 28, 28)) against the test images."""
    q = quality_benchmark(sample, ctx["fid_x"], ctx["features"], n=ctx["args"].fid_n, seed=ctx["args"].seed)
    ctx["floor"] = q["data_vs_data"]
    s = q["samples"]
    r = lambda v, d=2: "-" if v is None else round(v, d)  # noqa: E731
    return [r(nll_value), r(s["fid"]), r(s["precision"], 3), r(s["recall"], 3), r(rate_value, 0), note]


def row(ctx: dict, library: str, axis: str, label: str, make) -> None:
    """Run ``make`` () -> figures; a failure becomes a row that says why; the JSON is rewritten after each."""
    if ctx["args"].rows and not any(w.lower() in label.lower() for w in ctx["args"].rows):
        return
    print(f"== {library} {axis} {label}", flush=True)
    try:
        figures = make()
    except Exception as e:  # noqa: BLE001  (a failed row is reported, the others still run)
        traceback.print_exc()
        figures = ["-"] * 5 + [f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"]
    ctx["rows"].append([library, axis, label, *figures])
    print(ctx["rows"][-1], flush=True)
    save(ctx)


def vaekit_rows(ctx: dict) -> None:
    args, x_nll, runs = ctx["args"], ctx["x_nll"], {}

    def one(label, settings):
        from peer_worker import nll

        runs[label] = run = zr.train_vaekit(settings, args, f"{ctx['tmp']}/{label.replace(' ', '_')}")
        value, note = nll(run.model, x_nll, args.k)[0], ""
        if settings.get("model") == "vq":
            note = "NLL: -log p(x|z_q) - log p(z_q), a bound (q is one point)"
        return score(label, run.sample, value, zr.rate(run.history), note, ctx)

    for axis, label, settings in zr.VAEKIT_ROWS:
        row(ctx, "vaekit", axis, label, lambda label=label, settings=settings: one(label, settings))
    for name in zr.SAMPLER_NAMES:

        def post_hoc(name=name):
            sample = lambda n: runs["standard"].sample(n, sampler=name)  # noqa: E731
            return score(name, sample, None, None, "post-hoc on the standard run; NLL as the standard run", ctx)

        row(ctx, "vaekit", "sampler", f"standard + {name}", post_hoc)


def peer_model(args, shape: tuple, family: str = "vae"):
    """A fresh vaekit model of ``family`` whose networks a pythae row runs on (seeded by --seed)."""
    from vaekit.config import RunConfig

    cfg = RunConfig().model
    cfg.family, cfg.hidden, cfg.latent_dim, cfg.likelihood = family, args.hidden, args.latent, "bernoulli"
    cfg.input_shape = list(shape)
    torch.manual_seed(args.seed)
    return build_model(cfg)


def pythae_rows(ctx: dict) -> None:
    args, data, models = ctx["args"], ctx["data"], {}

    def one(label, cls_name, config):
        model = zr.pythae_model(cls_name, config, peer_model(args, data.shape), args.latent)
        best, rate = zr.train_pythae(model, data.train.x, data.val.x, args, f"{ctx['tmp']}/pythae")
        models[label] = best
        value, how = zr.pythae_nll(best, ctx["x_nll"], args.k)
        return score(label, zr.pythae_sampler(best, "prior", data.train.x, args), value, rate, how, ctx)

    for label, cls_name, config in zr.PYTHAE_ROWS:
        row(ctx, "pythae", "model", label, lambda a=label, b=cls_name, c=config: one(a, b, c))

    def vq():
        vq_model = peer_model(args, data.shape, "vq")
        sample, rate = zr.pythae_vq(vq_model, args, data.train.x, data.val.x, f"{ctx['tmp']}/pythae")
        return score("vq", sample, None, rate, "MSE loss (pythae's VQVAE): no NLL; PixelCNN sampler", ctx)

    row(ctx, "pythae", "discrete", "VQVAE + PixelCNN", vq)
    for name, title in (("gmm", "GMM"), ("maf", "MAF")):

        def post_hoc(name=name):
            sample = zr.pythae_sampler(models["VAE"], name, data.train.x, args)
            return score(name, sample, None, None, "post-hoc on pythae's VAE", ctx)

        row(ctx, "pythae", "sampler", f"VAE + {title}", post_hoc)


def targets(rows: list[list], apart: frozenset = frozenset()) -> list[str]:
    """The issue's targets, each with its figures and met / NOT met; a speed target with a row of ``apart``
    ((library, label) of rows measured in a rerun of their own) is not compared."""
    by = {(r[0], r[2]): r for r in rows}
    out = []

    def num(lib, label, col):
        v = by.get((lib, label), [None] * 9)[col]
        return v if isinstance(v, (int, float)) else None

    def say(text, ok):
        out.append(f"{text}: {'met' if ok else 'NOT met' if ok is not None else 'not measured'}")

    for v, p in PAIRS:
        a, b = num("vaekit", v, 3), num("pythae", p, 3)
        if a is not None and b is not None:
            say(f"NLL {v} {a} vs pythae {p} {b} (at most 0.5 nats above)", a <= b + 0.5)
        a, b = num("vaekit", v, 4), num("pythae", p, 4)
        say(f"FID {v} {a} vs pythae {p} {b} (no worse)", None if None in (a, b) else a <= b)
        a, b = num("vaekit", v, 7), num("pythae", p, 7)
        text = f"samples/s {v} {a} vs pythae {p} {b} (at least)"
        if {("vaekit", v), ("pythae", p)} & apart:
            out.append(f"{text}: not compared (a rerun row: measured in another process, under another load)")
        elif a is not None or b is not None:
            say(text, None if None in (a, b) else a >= b)
    std, vamp, iw = num("vaekit", "standard", 3), num("vaekit", "vamp", 3), num("vaekit", "iwae K=5", 3)
    say(f"VampPrior NLL {vamp} >= 2 nats below standard {std}", None if None in (std, vamp) else vamp <= std - 2)
    say(f"IWAE-trained (K=5) NLL {iw} below ELBO-trained {std}", None if None in (std, iw) else iw < std)
    flows = [x for x in (num("vaekit", "iaf", 3), num("vaekit", "nsf", 3)) if x is not None]
    say(f"flow posterior NLL (best of iaf, nsf) {min(flows, default=None)} below Gaussian {std}",
        None if std is None or not flows else min(flows) < std)  # fmt: skip
    fids = [num("vaekit", f"standard + {s}", 4) for s in zr.SAMPLER_NAMES]
    fids, fid0 = [f for f in fids if f is not None], num("vaekit", "standard", 4)
    best = min(fids, default=None)
    say(f"best post-hoc sampler FID {best} vs the plain VAE's {fid0} (>= 20% lower)",
        None if best is None or fid0 is None else best <= 0.8 * fid0)  # fmt: skip
    return out


def merged(stored: list[list], new: list[list]) -> list[list]:
    """The stored rows (less their data floor row), each row of ``new`` in place of the stored row of the same
    library and label (after them when there is none)."""
    fresh = {(r[0], r[2]): r for r in new}
    return [fresh.pop((r[0], r[2]), r) for r in stored if r[0] != "data"] + list(fresh.values())


def save(ctx: dict) -> None:
    """The table, the targets and the notes so far: printed and written to <out>.partial after every row, moved
    onto the result at the end (a run stopped midway leaves the result as it was); with --rows, the rows run
    merged into the stored result, whose provenance stays."""
    args, floor, base = ctx["args"], ctx.get("floor") or {}, ctx.get("base")
    ctx["load"].append(os.getloadavg()[0])
    rows = merged(base["tables"][0]["rows"], ctx["rows"]) if base else ctx["rows"]
    t = common.table(
        f"The zoo on dynamically binarised Fashion-MNIST ({ctx['n_train']} training images, {args.epochs} epochs, "
        f"batch {args.batch}, MLP {args.hidden} nets, latent {args.latent}); NLL: IWAE K={args.k} on "
        f"{len(ctx['x_nll'])} test images; FID/precision/recall: {args.fid_n} sample means vs {args.fid_n} test "
        f"images; data-vs-data floor FID {floor.get('fid')}, precision {floor.get('precision')}, recall "
        f"{floor.get('recall')}",
        COLUMNS,
        [*rows, ["data", "floor", "test half B vs half A", "-", *[floor.get(k, "-") for k in FLOOR], "-", ""]],
    )
    met = targets(rows, frozenset((r[0], r[2]) for r in ctx["rows"]) if base else frozenset())
    n_met, apart = sum(m.endswith(": met") for m in met), sum(": not compared" in m for m in met)
    headline = f"{len(rows)} rows; {n_met} of {len(met) - apart} targets met" + (
        f" ({apart} speed target{'s' * (apart > 1)} of rerun rows not compared)" if apart else ""
    )
    headline += f"; data-vs-data FID {floor.get('fid')}" + (
        "" if ctx.get("done") else " (run in progress: partial result)"
    )
    notes, partial = [*met, *zr.run_notes(ctx)], ctx["out"].with_name(ctx["out"].name + ".partial")
    if base:
        common.rewrite(ctx["out"], into=partial, headline=headline, tables=[t], notes=[*notes, zr.rerun_note(ctx)])
    else:
        common.write("zoo", "The model zoo against pythae", headline, [t], notes, partial)
    if ctx.get("done"):
        os.replace(partial, ctx["out"])  # atomic: the whole result, or the one before


def main() -> None:
    p = runner.parser(__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=10000, help="data.limit: training + validation images")
    p.add_argument("--test-limit", type=int, default=500, help="test images the NLL is estimated on")
    p.add_argument("--k", type=int, default=1000, help="importance samples of the NLL's IWAE bound")
    p.add_argument("--fid-n", type=int, default=2000, help="samples (and test images) per FID")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[512, 256])
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--sampler-epochs", type=int, default=20, help="epochs of pythae's MAF sampler")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["vaekit", "pythae"], help="one library only")
    rows = "words: rerun the rows whose label holds one, in place of the same rows of --out (a note says which)"
    p.add_argument("--rows", type=lambda s: [w for w in s.split(",") if w], help=rows)
    p.add_argument("--why", help="with --rows: why the rows were rerun, for the page's note")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 epoch, 2,000 images, K=50")
    p.add_argument("--out")
    args = p.parse_args()
    common.budget(p, args, "epochs", "train_limit", "test_limit", "k", "fid_n", "sampler_epochs")
    if args.quick:
        args.epochs, args.train_limit, args.test_limit, args.k, args.fid_n = 1, 2000, 100, 50, 500
    out = common.result_path("zoo", args.out)
    if args.rows and args.quick and not args.out:
        p.error("--rows merges into a stored result: with --quick, name a copy of one with --out")
    if args.rows and not out.is_file():
        p.error(f"--rows merges into a stored result: {out} is not a file")
    if args.only != "vaekit":
        runner.need_peers("zoo", "pythae", skip="--only vaekit for vaekit's rows alone")
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", limit=args.train_limit)
    full = load_dataset("fashion-mnist")  # the feature network's cache key is the full data's
    features, info = domain_features(full)
    x_nll = torch.bernoulli(data.test.x[: args.test_limit], generator=torch.Generator().manual_seed(args.seed + 2))
    ctx = {"args": args, "data": data, "n_train": len(data.train), "x_nll": x_nll}  # binarised once
    ctx.update(rows=[], features=features, feature_info=info, fid_x=full.test.x, out=out, load=[os.getloadavg()[0]])
    if args.rows:
        ctx["base"] = json.loads(out.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        ctx["tmp"] = tmp
        if args.only != "pythae":
            vaekit_rows(ctx)
        if args.only != "vaekit":
            pythae_rows(ctx)
    ctx["done"] = True
    save(ctx)


if __name__ == "__main__":
    runner.entry(main)
