"""A Gaussian mixture with full covariances on the aggregate posterior (fitted by scikit-learn's EM)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Categorical

from ..data.photos import note
from ..errors import VaekitError, is_whole
from .base import Sampler, n_codes, register, said, whole


@register
class GMMSampler(Sampler):
    """q(z) = sum_k w_k N(loc_k, cov_k) with K = ``components``, or fewer where the codes fit no more; its
    parameters are buffers, sized by the K fitted (a file written before ``sizes``: by the setting)."""

    name = "gmm"
    MAIN = ("components",)
    weights: Tensor  # buffers, made by build: (K,), (K, D), (K, D, D)
    means: Tensor
    covariances: Tensor

    def __init__(self, components: int = 20, seed: int = 0):
        k = whole(components, "components")
        super().__init__(seed, components=k)
        self.components = k
        self.k = k  # the components its buffers hold: the fitted number (``plan``), at most the setting

    def numbers(self, latent_dim: int) -> int:
        """By the setting: settings past ``MAX_NUMBERS`` are refused, whatever number the codes fit."""
        return self.components * (1 + latent_dim + latent_dim * latent_dim) + 2 * latent_dim

    def plan(self, z: Tensor) -> None:
        """K = the components the codes z (N, D) fit: more codes per component than dimensions."""
        n, d = z.shape
        if n <= d:  # a full covariance needs more codes than dimensions
            raise VaekitError(
                f"gmm sampler: {n} codes of {d} numbers cannot fit a full {d}x{d} covariance; use the flow or "
                "two-stage sampler, or more training items",
                key="sampler",
            )
        self.k = min(self.components, n // (d + 1))

    def sizes(self) -> dict[str, int]:
        return {"components": self.k}

    def size_by(self, sizes: dict) -> GMMSampler:
        """K from a saved sampler's ``sizes`` (a file written before them: the setting), at most the setting."""
        k = sizes.get("components", self.components) if isinstance(sizes, dict) else None
        if not is_whole(k, 1) or set(sizes) - {"components"} or int(k) > self.components:
            raise VaekitError(f"gmm sampler: sizes {str(sizes)[:60]} are not 1 to {self.components} components")
        self.k = int(k)
        return self

    def described(self) -> str:
        """Its settings as a note names them, and the components fitted where fewer: "20 components, 3 fitted"."""
        return super().described() + (f", {self.k} fitted" if self.k < self.components else "")

    def build(self, latent_dim: int) -> GMMSampler:
        super().build(latent_dim)
        k = self.k
        self.register_buffer("weights", torch.full((k,), 1.0 / k))  # (K,)
        self.register_buffer("means", torch.zeros(k, latent_dim))  # (K, D)
        self.register_buffer("covariances", torch.eye(latent_dim).repeat(k, 1, 1))  # (K, D, D)
        return self

    def fit_codes(self, u: Tensor) -> None:
        from sklearn.mixture import GaussianMixture

        n, d = u.shape
        k = self.k
        if k < self.components:
            fit = f"{n_codes(n)} of {d} numbers fit no more"
            note(f"gmm sampler: {said('components', k)}, not {self.components}: {fit}")
        self.fitted["components"] = k
        gm = GaussianMixture(k, covariance_type="full", random_state=self.seed, reg_covar=1e-5)
        gm.fit(u.double().numpy())
        self.weights.copy_(torch.from_numpy(gm.weights_))
        self.means.copy_(torch.from_numpy(gm.means_))
        self.covariances.copy_(torch.from_numpy(gm.covariances_))

    def factors(self) -> Tensor:
        """The Cholesky factors (K, D, D) of the covariances. Saved buffers that are no mixture's (negative
        weights, a covariance not positive definite) are refused in one line."""
        tril, info = torch.linalg.cholesky_ex(self.covariances.double())  # float32 Cholesky fails on large D
        w = self.weights
        if bool(info.any()) or bool((w < 0).any()) or not torch.isclose(w.sum(), torch.ones(()), atol=1e-4):
            raise VaekitError(
                "gmm sampler: its saved weights or covariances are not a Gaussian mixture's (a covariance not "
                "positive definite, weights not >= 0 summing to 1); fit it again with refit",
                key="refit",
            )
        return tril.float()

    def draw(self, n: int) -> Tensor:
        """(n, D) draws: a component k ~ w per draw, then loc_k + eps @ L_k^T for the draws of each component
        (n x D numbers at once, not n x K x D^2)."""
        tril = self.factors()  # (K, D, D)
        k = Categorical(probs=self.weights).sample((n,))  # (n,)
        z = torch.randn(n, self.latent_dim)  # (n, D)
        for c in k.unique().tolist():
            at = k == c
            z[at] = self.means[c] + z[at] @ tril[c].T
        return z
