"""One training of benchmarks/peer.py, in a process of its own: ``python peer_worker.py JOB`` trains the library
and net that the JSON ``JOB`` names and prints its epoch times, test NLLs, FLOPs and peak memory as JSON."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import common
import torch

if TYPE_CHECKING:
    from pythae.models import VAE

    from vaekit.data import Dataset


def settings(net: str, args: argparse.Namespace):
    """The run's vaekit config: the benchmark's model and training settings."""
    from vaekit.config import RunConfig, set_value

    cfg = RunConfig(out="")
    nets = {"model.hidden": "400,400"} if net == "mlp" else {}  # the conv nets: vaekit's default channels
    for key, value in {
        "data.spec": "fashion-mnist",
        "data.binarize": "dynamic",
        "model.likelihood": "bernoulli",
        "model.net": net,
        **nets,
        "model.latent_dim": 20,
        "train.batch_size": 128,
        "train.lr": 1e-3,
        "train.seed": args.seed,
        "train.progress": False,
        "train.precision": args.precision,
        "train.device": args.device,
        "train.epochs": args.epochs if net == "mlp" else args.conv_epochs,
    }.items():
        set_value(cfg, key, value)
    return cfg


def flops_per_item(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Matmul/conv FLOPs of one training step (forward and backward) per item, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    from vaekit.core import elbo

    with FlopCounterMode(display=False) as counter:
        elbo(model(x), x)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def nll(model: torch.nn.Module, x: torch.Tensor, k: int) -> tuple[float, float]:
    """(NLL in nats, seconds) of vaekit's importance-weighted estimator with K samples, float32."""
    from vaekit.core import iwae_bound

    model.eval()
    torch.manual_seed(0)
    start = time.perf_counter()
    bound = torch.cat([iwae_bound(model, xb, k) for xb in x.split(100)])
    return -bound.mean().item(), time.perf_counter() - start


def worker(job: dict) -> dict:
    """Train one library's model as ``job`` says; returns its epoch times, NLLs and peak memory."""
    from vaekit.models import build_model

    args = argparse.Namespace(**job["args"])
    torch.set_num_threads(args.threads) if args.threads else None
    cfg = settings(job["net"], args)
    with tempfile.TemporaryDirectory() as tmp:
        if job["library"] == "vaekit":  # fit loads the data itself: load it for the test images only after
            trained, data, result = fit_vaekit(cfg, args, tmp)
        else:
            import peer_pythae

            best, data, result = fit_pythae(cfg, args, tmp, dynamic=job["library"] == "pythae")
            trained, result["precision"] = peer_pythae.AsVaekit(best.eval()).to(args.device), "fp32"
    x_test = data.test.x[: args.nll_items].to(args.device)
    cfg.model.input_shape = list(data.shape)
    result["flops"] = flops_per_item(build_model(cfg.model).to(args.device), x_test[:128])
    result["items"] = len(data.train.x)
    result["nll"], result["nll_seconds"] = nll(trained, x_test, job["nll_k"])
    if job["library"] == "pythae" and job["net"] == "mlp":  # pythae's own estimator on the same model
        start = time.perf_counter()
        result["pythae_nll"] = -best.get_nll(x_test, n_samples=job["nll_k"], batch_size=100)
        result["pythae_nll_seconds"] = time.perf_counter() - start
    return result


def fit_vaekit(cfg, args: argparse.Namespace, tmp: str) -> tuple[torch.nn.Module, Dataset, dict]:
    """vaekit's training with its run folder in ``tmp``: the trained model, the data, the result so far."""
    from vaekit.api import train
    from vaekit.data.prepare import prepare_data
    from vaekit.runs import Run

    cfg.out = tmp + "/run"
    train(cfg)
    result: dict = {"peak_mib": common.peak_mib(args.device)}
    result["seconds"] = [float(r["seconds"]) for r in common.metrics_rows(cfg.out)]
    trained, result["precision"] = Run.load(cfg.out, device=args.device).model, _precision(cfg)
    data, _ = prepare_data(cfg)
    return trained, data, result


def fit_pythae(cfg, args: argparse.Namespace, tmp: str, dynamic: bool) -> tuple[VAE, Dataset, dict]:
    """pythae's trainer on vaekit's networks, its files in ``tmp``: its best model, the data, the result so far.
    ``dynamic``: a fresh binarisation per item access."""
    import peer_pythae

    from vaekit.data.prepare import prepare_data
    from vaekit.models import build_model

    data, _ = prepare_data(cfg)
    cfg.model.input_shape = list(data.shape)
    torch.manual_seed(args.seed)
    pmodel = peer_pythae.build(build_model(cfg.model), cfg.model.latent_dim)
    best, seconds = peer_pythae.train(
        pmodel, data.train.x, data.val.x, cfg.train.epochs, 128, 1e-3, args.seed, tmp, args.device, dynamic
    )
    return best, data, {"seconds": seconds, "peak_mib": common.peak_mib(args.device)}


def _precision(cfg) -> str:
    from vaekit.training.step import autocast_dtype, resolve_device

    return (
        "bf16"
        if autocast_dtype(cfg.train.precision, resolve_device(cfg.train.device), cfg.model.likelihood)
        else "fp32"
    )


if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):  # run by peer.py, one JSON job as its argument
        sys.exit(print(__doc__))
    if len(sys.argv) != 2:
        sys.exit(f"peer_worker.py: expected one argument, a JSON job (peer.py runs it)\n{__doc__}")
    print(json.dumps(worker(json.loads(sys.argv[1]))))
