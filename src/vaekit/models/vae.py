"""The flat VAE: your encoder and decoder networks (or the built-in ones), a prior and a posterior from their
registries (``vaekit.models.priors``, ``vaekit.models.posteriors``), a likelihood."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..core.contract import VAEOutput
from ..core.likelihoods import LIKELIHOODS, Likelihood, diag_normal, support
from ..errors import VaekitError
from . import allowed, positive, register
from .nets import build_nets
from .posteriors import FlowSettings, build_posterior
from .priors import PriorSettings, VampPrior, build_prior

T = TypeVar("T")


def check_net(net: object, what: str) -> None:
    """Refuse, in one line, an encoder or decoder (``what``) that is no ``torch.nn.Module`` (a function)."""
    if not isinstance(net, nn.Module):
        raise VaekitError(
            f"the {what} must be a torch.nn.Module, got {type(net).__name__}: wrap a function in a module whose "
            "forward calls it"
        )


@torch.no_grad()
def dry_run(net: nn.Module, shape: Sequence[int], what: str) -> Tensor:
    """``net``'s output for two zero inputs of item shape ``shape`` (eval mode, so no batch statistics move)."""
    p = next(net.parameters(), None)
    x = torch.zeros(2, *shape, device=None if p is None else p.device, dtype=None if p is None else p.dtype)
    was_training = net.training
    net.eval()
    try:
        out = net(x)
    except Exception as e:  # noqa: BLE001 - a user's network: say which part failed, and on what shape
        raise VaekitError(f"the {what} fails on inputs of shape {tuple(x.shape)}: {type(e).__name__}: {e}") from None
    finally:
        net.train(was_training)
    if not isinstance(out, Tensor):  # a tuple or dict of outputs: the model reads one tensor
        raise VaekitError(f"the {what} must return one tensor; it returns a {type(out).__name__}")
    return out


def features(encoder: nn.Module, shape: Sequence[int]) -> int:
    """F of an encoder mapping (B, *shape) to (B, F), found by a dry run."""
    h = dry_run(encoder, shape, "encoder")
    if h.dim() != 2:
        raise VaekitError(
            f"the encoder must map (B, {', '.join(map(str, shape))}) to features (B, F); it gives "
            f"shape {tuple(h.shape)} (end it with nn.Flatten())"
        )
    return h.shape[1]


class NetsVAE(nn.Module):
    """What the families share: an encoder and a decoder network and a likelihood, built for an item shape.

    ``build(shape)`` finds the encoder's feature size F by a dry run, creates the likelihood and the
    family's heads (``make_heads(F)``), and checks that the decoder's output fits the likelihood.
    """

    # init arguments kept under other attribute names (models.spec rebuilds the model from the rest by name)
    init_renamed: ClassVar[dict[str, str]] = {"likelihood": "likelihood_name"}

    needs_labels = False
    MODULE_ORDER: tuple[str, ...] = ("likelihood", "encoder", "decoder")  # parameter order (checkpoints)
    pz_loc: Tensor  # buffer each family registers: p(z)'s loc (or logits)

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: str, scale: str, components: int = 5):
        super().__init__()
        check_net(encoder, "encoder")
        check_net(decoder, "decoder")
        self.encoder, self.decoder = encoder, decoder
        self.likelihood_name, self.scale, self.components = likelihood, scale, components
        self.auto_likelihood = likelihood == "auto"  # fit chooses it from the data (fit_data.fit_likelihood)
        self.input_shape: tuple[int, ...] | None = None

    def make_heads(self, f: int) -> None:
        """Create the layers that read the encoder's F features (and anything else that needs the shape)."""
        raise NotImplementedError

    def decoder_inputs(self) -> int:
        """The width of what the decoder reads."""
        raise NotImplementedError

    def build(self, shape: Sequence[int]) -> NetsVAE:
        """Build for items of ``shape`` (once; a second call must name the same shape)."""
        shape = tuple(int(s) for s in shape)
        if self.input_shape is not None:
            if shape != self.input_shape:
                raise VaekitError(f"items have shape {shape}, the model was built for {self.input_shape}")
            return self
        if self.likelihood_name == "auto":
            raise VaekitError(
                "likelihood 'auto' is chosen from the data by vaekit.fit; name one to build a model alone: "
                f"{', '.join(LIKELIHOODS)}",
                key="model.likelihood",
            )
        f = features(self.encoder, shape)
        self.likelihood = Likelihood(self.likelihood_name, shape, self.scale, self.components)
        self.make_heads(f)
        self.check_decoder()
        order = [n for n in self.MODULE_ORDER if n in self._modules]
        modules = {n: getattr(self, n) for n in order + [n for n in self._modules if n not in order]}
        for name, module in modules.items():  # re-registered in MODULE_ORDER: the parameter order of earlier runs
            delattr(self, name)
            setattr(self, name, module.to(self.pz_loc))  # new heads join the device and dtype of the rest
        self.input_shape = shape
        return self

    def check_decoder(self) -> None:
        """The decoder's output for two zero inputs must fit the likelihood (``Likelihood.params``); where 'auto'
        chose the likelihood from the data, its refusal says so."""
        out = dry_run(self.decoder, (self.decoder_inputs(),), "decoder")
        try:
            self.likelihood.params(out)
        except VaekitError as e:
            if not self.auto_likelihood:
                raise
            raise VaekitError(
                f"{e}; likelihood 'auto' chose {self.likelihood_name} from the data: where the decoder was made "
                "for another likelihood, name that one (likelihood=...)",
                key="model.likelihood",
            ) from None

    def _built(self, x: Tensor) -> None:
        if self.input_shape is None:
            self.build(x.shape[1:])

    def _likelihood(self, params: Tensor) -> Distribution:
        if self.input_shape is None:
            raise VaekitError("the model is not built yet: pass input_shape, or encode or fit some data first")
        return self.likelihood(params)


@register("vae")
class VAE(NetsVAE):
    """q(z|x) = N(loc(x), diag scale(x)^2) (or a flow on it), p(z) = N(0, I) (or learned), p(x|z) from ``likelihood``.

    ``encoder`` (an ``nn.Module``) maps x (B, *shape) to features (B, F): F is found by a dry run, and a linear
    layer turns the features into q(z|x)'s loc and scale. ``decoder`` maps z (B, latent_dim) to the likelihood's
    parameters: (B, *shape) for bernoulli, cbernoulli and gaussian; (B, 2, *shape) for a Gaussian with
    ``scale="decoded"``; (B, K (C + 2), C, H, W) for discretized_logistic on images (C, H, W), K = ``components``
    (5: (B, 25, 3, H, W) for colour, (B, 15, 1, H, W) for grey), (B, 3K, *shape) on other items. ``likelihood``
    "auto" leaves the choice to ``fit``, from the data: bernoulli for binary data and other grey images in
    [0, 1], discretized_logistic for 8-bit images (uint8, or values k / 255), cbernoulli for colour images in
    [0, 1], gaussian otherwise (a table's columns standardised). ``input_shape`` (the item shape) builds the
    model now (with a named likelihood); left out, it is built from the data by ``fit`` or by the first batch.
    Labels ``y`` are accepted and ignored (``needs_labels`` is false). ``prior`` (standard, mixture, vamp, flow)
    and ``posterior`` (gaussian, iaf, nsf) name registry entries, built with ``prior_components`` (0: 10),
    ``pseudo_inputs``, ``pseudo_init``, ``flow_transforms`` and ``flow_hidden``.
    """

    init_renamed: ClassVar[dict[str, str]] = NetsVAE.init_renamed | {
        "prior": "prior_name",
        "posterior": "posterior_name",
    }

    MODULE_ORDER = ("likelihood", "encoder", "decoder", "to_qz")
    plain_forward = True  # forward is encode, rsample, decode, prior: importance sampling encodes once

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        likelihood: str = "bernoulli",
        *,
        scale: str = "learned",
        components: int = 5,
        prior: str = "standard",
        posterior: str = "gaussian",
        prior_components: int = 0,
        pseudo_inputs: int = 500,
        pseudo_init: str = "data",
        flow_transforms: int = 3,
        flow_hidden: Sequence[int] = (128, 128),
        input_shape: Sequence[int] | None = None,
    ):
        super().__init__(encoder, decoder, likelihood, scale, components)
        self.latent_dim = positive(latent_dim, "latent_dim")
        self.prior_name, self.posterior_name = prior, posterior
        self.prior_components = allowed(prior_components, "prior_components")  # 0: 10 (built lazily)
        self.pseudo_inputs = positive(pseudo_inputs, "pseudo_inputs")
        self.flow_transforms = flow_transforms
        self.flow_hidden, self.pseudo_init = list(flow_hidden), allowed(pseudo_init, "pseudo_init")
        self.register_buffer("pz_loc", torch.zeros(self.latent_dim), persistent=False)
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> VAE:
        """The built-in MLP or conv networks that ``cfg`` describes, for ``cfg.input_shape``."""
        shape = tuple(cfg.input_shape)
        return cls(
            *build_nets(cfg, shape, n_params(cfg)),
            cfg.latent_dim,
            cfg.likelihood,
            scale=cfg.scale,
            components=cfg.likelihood_components,
            prior=cfg.prior,
            posterior=cfg.posterior,
            prior_components=cfg.prior_components,
            pseudo_inputs=cfg.pseudo_inputs,
            pseudo_init=cfg.pseudo_init,
            flow_transforms=cfg.flow_transforms,
            flow_hidden=cfg.flow_hidden,
            input_shape=shape,
        )

    @property
    def data_init_items(self) -> int:
        """Training items the trainer hands ``init_from_data`` before the first step (0: none)."""
        module = getattr(self, "pz_module", None)
        return len(module.u) if isinstance(module, VampPrior) and module.from_data else 0

    def init_from_data(self, x: Tensor) -> None:
        """The data-dependent start: the VampPrior's pseudo-inputs at the items x (N, *shape)."""
        if isinstance(self.pz_module, VampPrior):
            self.pz_module.init_from(x)

    def make_heads(self, f: int) -> None:
        self.to_qz = nn.Linear(f, 2 * self.latent_dim)
        flow = FlowSettings(self.flow_transforms, self.flow_hidden)
        self.qz_module = build_posterior(self.posterior_name, self.latent_dim, f, flow)
        s = support(self.likelihood_name)  # VampPrior's pseudo-inputs stay in the data's range
        self.pz_module = build_prior(
            self.prior_name,
            self.latent_dim,
            self.likelihood.shape,
            PriorSettings(
                self.prior_components or 10,
                self.pseudo_inputs,
                self.pseudo_init,
                getattr(s, "lower_bound", -math.inf),
                getattr(s, "upper_bound", math.inf),
                flow,
            ),
        )

    def decoder_inputs(self) -> int:
        return self.latent_dim

    @property
    def latent_dims(self) -> list[int]:
        return [self.latent_dim]

    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, *shape) -> q(z|x) with batch (B,) and event (D,)."""
        self._built(x)
        h = self.encoder(x)  # (B, F)
        return self.qz_module(diag_normal(self.to_qz(h)), h)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """(B, D) -> p(x|z) with batch (B,) and event ``shape``."""
        return self._likelihood(self.decoder(z))

    def prior(self, y: Tensor | None = None) -> Distribution:
        """p(z) with event (D,): N(0, I) or the learned prior ``prior`` names."""
        if self.input_shape is None:
            raise VaekitError("the model is not built yet: pass input_shape, or encode or fit some data first")
        return self.pz_module(self.encode)

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        """x (B, *shape) -> p(x|z), [q(z|x)], [p(z)] and [z] (B, D), z drawn by rsample(); y is unused."""
        qz = self.encode(x)
        z = qz.rsample()  # (B, D): the reparameterisation trick
        return VAEOutput(px=self.decode(z), qz=[qz], pz=[self.prior()], z=[z])

    def generate(self, n: int, temperature: float = 1.0, y: Tensor | None = None) -> Distribution:
        """p(x|z) for ``n`` draws z ~ p(z), the prior's base noise times ``temperature``."""
        if self.input_shape is None:
            raise VaekitError("the model is not built yet: pass input_shape, or encode or fit some data first")
        return self.decode(self.pz_module.sample(n, temperature, self.encode))


def n_params(cfg: ModelConfig) -> int:
    """How many parameters per data dimension the decoder gives for ``cfg``'s likelihood."""
    return Likelihood(cfg.likelihood, tuple(cfg.input_shape), cfg.scale, cfg.likelihood_components).n_params
