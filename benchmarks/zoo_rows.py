"""The rows of benchmarks/zoo.py: vaekit's zoo axes trained by ``vaekit.train``, and the pythae 0.1.2 models
that pythae also has, built on the same networks (benchmarks/peer_pythae.py) and trained by pythae's trainers.

Each row is scored the same way: test NLL (an IWAE bound with K samples), sample quality on the domain features
(FID, precision, recall against half of the test split), and training samples per second (median epoch).
The notes after the table say how the rows were run (run_notes, rerun_note).
"""

from __future__ import annotations

import datetime
import os
import statistics
import time
from collections.abc import Callable

import common
import torch
from torch import Tensor

# vaekit's rows: (axis, label, settings); the sampler rows reuse the "standard" run
VAEKIT_ROWS = [
    ("prior", "standard", {}),
    ("prior", "mixture", {"prior": "mixture", "prior_components": 10}),
    ("prior", "vamp", {"prior": "vamp", "pseudo_inputs": 500}),
    ("prior", "flow", {"prior": "flow"}),
    ("posterior", "iaf", {"posterior": "iaf"}),
    ("posterior", "nsf", {"posterior": "nsf"}),
    ("objective", "iwae K=5", {"objective": "iwae", "iw_samples": 5}),
    ("objective", "miwae M=5 K=5", {"objective": "miwae", "iw_samples": 5, "iw_groups": 5}),
    ("objective", "ciwae K=5 beta=0.5", {"objective": "ciwae", "iw_samples": 5, "ciwae_beta": 0.5}),
    ("objective", "piwae M=5 K=5", {"objective": "piwae", "iw_samples": 5, "iw_groups": 5}),
    ("objective", "mmd", {"objective": "mmd", "mmd_weight": 100.0}),
    ("objective", "factor gamma=10", {"objective": "factor", "factor_gamma": 10.0}),
    ("discrete", "vq", {"model": "vq"}),
    ("discrete", "gumbel", {"model": "gumbel", "categories": 10}),
]
SAMPLER_NAMES = ["gmm", "two-stage", "flow"]
# the notes of zoo.py on the pythae models it leaves out, and those vaekit has that it does not pair
LEFT_OUT = [
    "HVAE, RHVAE: Hamiltonian (and Riemannian) MCMC inside the posterior; not an axis of issue 28.",
    "PoincareVAE, SVAE: hyperbolic and hyperspherical latents, whose distributions torch.distributions lacks.",
    "Adversarial_AE, VAEGAN: adversarial training of the prior or the decoder; no likelihood bound to compare.",
    "RAE_L2, RAE_GP: deterministic autoencoders without q(z|x) (no NLL); their ex-post density is what vaekit's "
    "post-hoc samplers give any run.",
    "VAE_LinNF (planar/radial flows): vaekit's flow posteriors are IAF and a neural spline flow instead.",
    "MSSSIM_VAE: a perceptual reconstruction loss, not a likelihood.",
]
NOT_PAIRED = [
    "BetaVAE, BetaTCVAE, DisentangledBetaVAE, WAE_MMD, CIWAE, PIWAE, AE: vaekit has them (ELBO settings, "
    "mmd with beta 0, ciwae, piwae) but pythae's are not trained here, to keep the run within its budget.",
    "pythae's IAF and two-stage samplers (vaekit's two-stage row has no pythae partner here); its hypersphere, "
    "manifold (RHVAE) and Poincare samplers belong to models not built; its VAMP sampler draws the VAMP row.",
]
# pythae's rows: (label, model class name, config settings); all on pythae's BCE loss
PYTHAE_ROWS = [
    ("VAE", "VAE", {}),
    ("IWAE K=5", "IWAE", {"number_samples": 5}),
    ("MIWAE M=5 K=5", "MIWAE", {"number_samples": 5, "number_gradient_estimates": 5}),
    ("VAMP", "VAMP", {"number_components": 500}),
    ("VAE_IAF", "VAE_IAF", {}),
    ("INFOVAE_MMD", "INFOVAE_MMD", {"lbd": 100.0, "kernel_choice": "imq"}),
    ("FactorVAE gamma=10", "FactorVAE", {"gamma": 10.0}),
]


def rate(history: list[dict]) -> float:
    """Training samples/s: the median over epochs 2.. (all epochs when there is one)."""
    rates = [float(r["samples_per_s"]) for r in history]
    return statistics.median(rates[1:] or rates)


def train_vaekit(settings: dict, args, out: str):
    """One vaekit run on the benchmark's data and budget; returns the Run."""
    import vaekit

    return vaekit.train(
        data="fashion-mnist",
        binarize="dynamic",
        likelihood="bernoulli",
        hidden=args.hidden,
        latent_dim=args.latent,
        limit=args.train_limit,
        epochs=args.epochs,
        batch_size=args.batch,
        lr=1e-3,
        seed=args.seed,
        out=out,
        overwrite=True,
        progress=False,
        pictures=False,
        **settings,
    )


def pythae_model(cls_name: str, config: dict, vaekit_model, latent: int):
    """A pythae model of class ``cls_name`` on fresh copies of ``vaekit_model``'s networks."""
    import pythae.models as pm
    from peer_pythae import Decoder, Encoder

    shape = tuple(vaekit_model.input_shape)
    cfg_cls = getattr(pm, cls_name + ("_Config" if "_" in cls_name else "Config"))
    cfg = cfg_cls(input_dim=shape, latent_dim=latent, reconstruction_loss="bce", **config)
    enc, dec = Encoder(vaekit_model.encoder, vaekit_model.to_qz), Decoder(vaekit_model.decoder, shape)
    return getattr(pm, cls_name)(cfg, encoder=enc, decoder=dec)


def learning_rates(adversarial: bool, lr: float = 1e-3) -> dict[str, float]:
    """pythae trainer settings for Adam's lr: its AdversarialTrainer (FactorVAE) reads one per network and
    ignores ``learning_rate`` (leaving both at its 1e-4 default)."""
    if adversarial:
        return {"autoencoder_learning_rate": lr, "discriminator_learning_rate": lr}
    return {"learning_rate": lr}


def train_pythae(model, x_train: Tensor, x_val: Tensor, args, out: str) -> tuple[object, float]:
    """pythae's trainer (its adversarial one for FactorVAE) on dynamically binarised images (N, 1, 28, 28);
    returns (best model, training samples/s: items over the median epoch's training pass)."""
    from peer_pythae import Binarised, EpochClock
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import AdversarialTrainer, AdversarialTrainerConfig, BaseTrainer, BaseTrainerConfig

    adversarial = type(model).__name__ == "FactorVAE"
    cfg_cls, trainer_cls = (
        (AdversarialTrainerConfig, AdversarialTrainer) if adversarial else (BaseTrainerConfig, BaseTrainer)
    )
    cfg = cfg_cls(
        output_dir=out,
        num_epochs=args.epochs,
        per_device_train_batch_size=args.batch,
        per_device_eval_batch_size=args.batch,
        **learning_rates(adversarial),
        seed=args.seed,
        no_cuda=True,
        steps_saving=None,
    )
    clock = EpochClock()
    val = torch.bernoulli(x_val, generator=torch.Generator().manual_seed(args.seed + 1))
    train_set = Binarised(x_train, torch.zeros(len(x_train)))
    trainer = trainer_cls(model, train_set, BaseDataset(val, torch.zeros(len(val))), cfg, callbacks=[clock])
    trainer.train()
    seconds = clock.seconds[1:] or clock.seconds
    return trainer._best_model.eval(), len(x_train) / statistics.median(seconds)


def pythae_nll(model, x: Tensor, k: int) -> tuple[float, str]:
    """Test NLL (nats) of a trained pythae model: vaekit's IWAE estimator through peer_pythae.AsVaekit where the
    model has a standard prior and a Gaussian posterior, else pythae's own ``get_nll`` (VAMP, VAE_IAF)."""
    from peer_pythae import AsVaekit
    from peer_worker import nll

    if type(model).__name__ in ("VAMP", "VAE_IAF"):
        torch.manual_seed(0)
        return -float(model.get_nll(x, n_samples=k, batch_size=100)), "pythae get_nll"
    return nll(AsVaekit(model), x, k)[0], "vaekit estimator"


def pythae_sampler(model, name: str, x_train: Tensor, args) -> Callable[[int], Tensor]:
    """n -> (n, 1, 28, 28) sample means of a pythae model: from its prior (VAMP: its own sampler) or from a
    post-hoc GMM or MAF sampler fitted by pythae on the training images."""
    from pythae import samplers as ps

    if name == "prior" and type(model).__name__ != "VAMP":
        return lambda n: model.decoder(torch.randn(n, args.latent))["reconstruction"].detach()
    if name == "prior":
        sampler = ps.VAMPSampler(model)
    elif name == "gmm":
        sampler = ps.GaussianMixtureSampler(model, ps.GaussianMixtureSamplerConfig(n_components=10))
        sampler.fit(x_train)
    else:
        from pythae.trainers import BaseTrainerConfig

        sampler = ps.MAFSampler(model, ps.MAFSamplerConfig())
        sampler.fit(x_train, training_config=BaseTrainerConfig(num_epochs=args.sampler_epochs, no_cuda=True))
    return lambda n: sampler.sample(num_samples=n, batch_size=500).detach()


def timed(fn: Callable, *a, **kw) -> tuple[object, float]:
    start = time.perf_counter()
    return fn(*a, **kw), time.perf_counter() - start


def pythae_vq(vaekit_vq, args, x_train: Tensor, x_val: Tensor, out: str) -> tuple[Callable[[int], Tensor], float]:
    """pythae's VQVAE (codebook loss, not EMA) on fresh copies of vaekit's VQ networks (a 1 x positions grid
    of code_dim vectors), trained by pythae's trainer on its MSE loss, then its PixelCNN sampler fitted on the training
    codes; returns (n -> sample means, training samples/s)."""
    from peer_pythae import Decoder
    from pythae import samplers as ps
    from pythae.models import VQVAE, VQVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseEncoder
    from pythae.trainers import BaseTrainerConfig

    class GridEncoder(BaseEncoder):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x: Tensor) -> ModelOutput:
            return ModelOutput(embedding=self.net(x))  # (B, code_dim, 1, positions)

    shape = tuple(vaekit_vq.input_shape)
    cfg = VQVAEConfig(
        input_dim=shape,
        latent_dim=vaekit_vq.codebook.shape[1],
        num_embeddings=vaekit_vq.codebook_size,
        use_ema=False,  # pythae 0.1.2's PixelCNN sampler fails on the EMA quantizer (its embeddings: a tensor)
        commitment_loss_factor=0.25,
    )
    model = VQVAE(cfg, encoder=GridEncoder(vaekit_vq.encoder), decoder=Decoder(vaekit_vq.decoder, shape))
    best, rate_value = train_pythae(model, x_train, x_val, args, out)
    sampler = ps.PixelCNNSampler(best, ps.PixelCNNSamplerConfig(n_layers=5, kernel_size=5))
    x_fit = torch.bernoulli(x_train, generator=torch.Generator().manual_seed(args.seed))
    sampler.fit(x_fit, training_config=BaseTrainerConfig(num_epochs=5, no_cuda=True, output_dir=out))
    return lambda n: sampler.sample(num_samples=n, batch_size=500).detach(), rate_value


def rerun_note(ctx: dict) -> str:
    """What a --rows run says of its rows: which, why, when, where, by what command, whether its features (the
    data-vs-data floor) are the first run's, and the load its samples/s was measured under."""
    m, why, old, new = common.machine(), ctx["args"].why, ctx["base"]["tables"][0]["rows"][-1][4], ctx["floor"]["fid"]
    return (
        f"Rerun alone, in place of the first run's: {', '.join(f'{r[0]} {r[2]}' for r in ctx['rows'])}"
        f"{f' ({why})' if why else ''}; on {datetime.date.today()}, {m['cpu']}, {m['threads']} threads, torch "
        f"{m['torch']}, commit {common.STARTED}, by `{common.command()}`; data-vs-data floor FID {new} (the first "
        f"run's {old}). Its samples/s was measured in another process under another load (1-minute load average "
        f"{ctx['load'][0]:.1f} as it started, {ctx['load'][-1]:.1f} as it ended, on {os.cpu_count()} cores): it "
        "does not compare with the other rows'."
    )


def run_notes(ctx: dict) -> list[str]:
    """The notes after the targets: the data, the shared budget, the features and each library's settings."""
    args = ctx["args"]
    return [
        f"Data: fashion-mnist, the first {ctx['n_train']} training images (data.limit {args.train_limit}, "
        f"{len(ctx['data'].val)} held out for validation), dynamically binarised (a fresh Bernoulli draw per "
        "epoch, per item for pythae); all models score grey (mean) samples against grey test images.",
        f"Both libraries: the same MLP networks (vaekit's, hidden {args.hidden}, fresh copies), Adam lr 1e-3, "
        f"batch {args.batch}, {args.epochs} epochs, seed {args.seed}, {torch.get_num_threads()} CPU threads, "
        "one process, rows in sequence; samples/s is the median over epochs 2.. of the training pass.",
        f"Domain features: {ctx['feature_info'].get('features')} features of a conv classifier "
        f"({ctx['feature_info'].get('steps')} steps, test accuracy {ctx['feature_info'].get('test_accuracy')}).",
        "pythae's NLL: vaekit's IWAE estimator on the pythae model (peer_pythae.AsVaekit) for models with a "
        "standard prior and a Gaussian posterior; pythae's own get_nll (same K) for VAMP and VAE_IAF. The test "
        f"images are binarised once (seed {args.seed + 2}), the same for every row.",
        "Each library's own defaults where a row has them: IAF vaekit 3 steps of 2 hidden layers of 128, each "
        "step also reading the encoder's features, pythae 2 MADE blocks of 3 hidden layers of 128 (vaekit with "
        "pythae's sizes: 1.6 and 2.9 nats worse than with its own, seeds 0 and 1, K = 200); "
        "VampPrior K = 500 for both; GMM samplers: pythae 10 components (as run here), vaekit its default 20; "
        "flow samplers: pythae's MAF sampler defaults for 20 epochs, vaekit's flow sampler defaults "
        "(MAF, 5 steps of 128, 3000 steps of 256 codes). vaekit's VampPrior starts its pseudo-inputs at training "
        "items (model.pseudo_init = data, its default); pythae's start near 0 (a linear layer's initialisation).",
        "pythae's VQVAE runs on vaekit's VQ networks (the same 1 x latent grid of code vectors, commitment "
        "0.25) with its codebook loss, not EMA updates (pythae 0.1.2's PixelCNN sampler fails on its EMA "
        "quantizer: TypeError, 'Tensor' object is not callable), and trains on pythae's MSE loss (it has no "
        "Bernoulli likelihood), so it has no NLL; "
        "its PixelCNN sampler (5 layers, kernel 5, 5 epochs) is fitted on the codes of binarised training images.",
        *[f"Not built (pythae models): {x}" for x in LEFT_OUT],
        *[f"Built, not paired with pythae in this run: {x}" for x in NOT_PAIRED],
        "Each row is one training and one measurement: samples/s differences of a few percent are noise.",
    ]
