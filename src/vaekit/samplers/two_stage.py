"""The two-stage VAE (Dai & Wipf 2019): a second, small VAE fitted on the first one's codes; new codes are the
second decoder's means at u ~ N(0, I). It is vaekit's own ``VAE`` (MLP nets, Gaussian p(z|u) with a learned
scale), trained by vaekit's trainer."""

from __future__ import annotations

from typing import cast

from torch import Tensor

from .. import logs
from ..config import RunConfig
from ..core.contract import check_model
from ..data.photos import note
from ..data.user import from_user
from ..errors import VaekitError
from ..models import VAE, mlp_nets
from ..training import TrainingStopped, train_model
from ..training.describe import describe
from ..training.guard import warns_at
from .base import Sampler, rate, register, whole

SHRUNK = 0.5  # draws' std / codes' std below it: a note (the second VAE's means gathered near a few codes)


@register
class TwoStageSampler(Sampler):
    """A VAE on the standardised codes: encoder and decoder MLPs of ``hidden`` units, as many latent dims as
    the codes have, trained ``epochs`` epochs (batch ``batch_size``, Adam ``lr``)."""

    name = "two-stage"
    MAIN = ("epochs",)

    def __init__(
        self,
        hidden: int = 256,
        layers: int = 2,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        counts = {"hidden": hidden, "layers": layers, "epochs": epochs, "batch_size": batch_size}
        super().__init__(seed, **{k: whole(v, k) for k, v in counts.items()}, lr=rate(lr))

    def numbers(self, latent_dim: int) -> int:
        h, layers, d = self.settings["hidden"], self.settings["layers"], latent_dim
        return 2 * (d * h + (layers - 1) * (h * h + h) + 2 * h * d + h) + 6 * d  # encoder and decoder MLPs

    def build(self, latent_dim: int) -> TwoStageSampler:
        super().build(latent_dim)
        s, shape = self.settings, (latent_dim,)
        self.vae = VAE(
            *mlp_nets(shape, latent_dim, [s["hidden"]] * s["layers"]), latent_dim, "gaussian", input_shape=shape
        )
        return self

    def fit_codes(self, u: Tensor) -> None:
        s = self.settings
        data = from_user(u, val_fraction=0.1, seed=self.seed)
        cfg = RunConfig(out="")
        cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = s["epochs"], s["batch_size"], s["lr"]
        cfg.train.seed, cfg.train.progress = self.seed, False
        cfg.model = describe(self.vae, "gaussian", (self.latent_dim,), None)
        try:  # the trainer's warning of skipped steps names its train.* settings: said here in the sampler's
            fitted = train_model(check_model(self.vae), data, cfg, warn_skips=False)
        except TrainingStopped as e:  # steps skipped in a row, or a whole epoch of them: one line, in its settings
            if e.key != "train.lr":  # a first step's loss not finite, before any update: not for the lr
                raise
            why = str(e).split(";")[0].removeprefix("training ")
            raise VaekitError(
                f"{self.name} sampler: the fit diverged ({why}); fit it again with a lower lr (now {s['lr']:g})",
                key="lr",
            ) from None
        self.vae = cast(VAE, fitted.model)  # the same VAE, trained
        if fitted.most_skipped >= warns_at(cfg.train.max_bad_steps):  # the fit went on: as the trainer would warn
            logs.warning(
                f"{self.name} sampler: {fitted.most_skipped} steps skipped in a row during its fit; a lower lr may "
                f"help (now {s['lr']:g})",
                bare=True,
            )

    def draw(self, n: int) -> Tensor:
        return self.vae.generate(n).mean  # (n, D): the second decoder's means at u ~ N(0, I)

    def judge(self, draws: Tensor) -> None:
        """``fitted["std_ratio"]``: the median over the D numbers of the standardised draws' (n, D) standard
        deviation, the codes' being 1; a note below ``SHRUNK`` (strong shrinkage: samples alike)."""
        ratio = float(draws.std(0).median()) if len(draws) > 1 else 1.0
        self.fitted["std_ratio"] = round(ratio, 4)
        if ratio < SHRUNK:
            note(
                f"{self.name} sampler: its draws spread {ratio:.2g} of the codes' standard deviation (median over "
                f"{draws.shape[1]} numbers), under {SHRUNK}: strong shrinkage, its samples vary little"
            )
