"""What an export feeds its graphs, to trace and to check them: noise items for the encoder, and for the decoder
codes from the model's own prior where it is not N(0, I) (``own_prior``); said in words (``check_inputs``). And why
a part cannot be exported (``encoder_refusal``, ``decoder_refusal``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from ..core.autoregressive import LocalARBernoulli
from ..core.contract import VAEModel, flat, latent_size
from ..core.reading import probing
from ..models.posteriors import FlowPosterior
from ..runs import Run

TRACE_BATCH = 2  # the batch the graphs are traced at; the check also runs another, where a size it fixed fails
N_CHECK = 100  # the inputs each part is checked on (``check_inputs`` says which)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights (else buffers) are: the CPU for a model with neither."""
    first: Tensor | None = next(model.parameters(), None)
    first = next(model.buffers(), None) if first is None else first
    return first.device if first is not None else torch.device("cpu")


def standard_normal(pz: Distribution) -> bool:
    """Whether p(z) is N(0, I): an Independent(Normal) of loc 0 and scale 1."""
    base = pz.base_dist if isinstance(pz, Independent) else None
    return isinstance(base, Normal) and bool((base.loc == 0).all() and (base.scale == 1).all())


def own_prior(model: VAEModel) -> bool:
    """Whether the decoder is probed with codes from the model's own prior: a hierarchy's ancestral draws
    (``prior_codes``), or one level's p(z) other than N(0, I) (a mixture, VampPrior or flow prior, a cvae's learned
    p(z|y), the one-hots of gumbel, the codebook vectors of vq). A prior that cannot be read alone: N(0, I)."""
    if callable(getattr(model, "prior_codes", None)):
        return True
    try:
        with probing(model) as device, torch.no_grad():  # type: ignore[arg-type]  # a VAEModel is an nn.Module
            pz = model.prior(torch.zeros(1, dtype=torch.long, device=device) if model.needs_labels else None)
            return flat(model) and not standard_normal(pz)
    except Exception:  # noqa: BLE001 - a prior that needs more (a model of yours, one on 'meta'): probed on N(0, I)
        return False


def prior_draws(model: VAEModel, n: int, seed: int, y: Tensor | None = None) -> Tensor:
    """``n`` codes (n, D) on the CPU drawn from the model's prior (``own_prior``; p(z|y) for labels y (n,)),
    seeded by ``seed``; the model's mode and the RNGs as they were."""
    with probing(model) as device, torch.no_grad():  # type: ignore[arg-type]
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        codes = getattr(model, "prior_codes", None)
        if callable(codes):
            return codes(n).cpu()
        pz = model.prior(None if y is None else y.to(device))
        return (pz.sample() if tuple(pz.batch_shape) == (n,) else pz.sample((n,))).cpu()


def example_inputs(
    run: Run, part: str, n: int, seed: int = 0, device: torch.device | None = None
) -> tuple[Tensor, ...]:
    """Random inputs for ``part``: x ~ U(0, 1) (n, *shape), or codes (n, D), z ~ N(0, I) or the model's own prior's
    draws (``own_prior``), plus labels (n,) if conditional; on ``device`` (default the CPU)."""
    g = torch.Generator().manual_seed(seed)
    model = run.model
    if part == "encoder":
        first = torch.rand(n, *run.config.model.input_shape, generator=g)
    else:
        first = torch.randn(n, latent_size(model), generator=g)
    y = torch.randint(0, run.config.model.num_classes, (n,), generator=g) if model.needs_labels else None
    if part != "encoder" and own_prior(model):
        first = prior_draws(model, n, seed, y)
    args = (first,) if y is None else (first, y)
    return tuple(a.to(device) for a in args) if device is not None else args


def check_inputs(run: Run, part: str, n: int = N_CHECK) -> str:
    """What ``check_part`` feeds ``part`` at ``n``, in words: ``example_inputs``' noise items (no data items), codes
    z ~ N(0, I) or from the model's prior; where ``n`` is the trace's batch or fewer, 3 inputs too."""
    count = f"{n} and {TRACE_BATCH + 1}" if n <= TRACE_BATCH else f"{n}"
    codes = "codes from the model's prior" if own_prior(run.model) else "codes z ~ N(0, I)"
    what = "noise inputs x ~ U(0, 1) (not data items)" if part == "encoder" else codes
    labels = f", labels y uniform in 0..{run.config.model.num_classes - 1}" if run.model.needs_labels else ""
    return f"{count} {what}{labels}"


def encoder_refusal(run: Run) -> str | None:
    """Why the encoder cannot be exported (a flow posterior: the scale of q(z|x) is estimated by drawing), or None."""
    with torch.no_grad():
        qz = run.model.encode(*example_inputs(run, "encoder", 1, device=model_device(run.model)))
    if not isinstance(qz, FlowPosterior):
        return None
    return (
        f"the encoder's q(z|x) is a flow posterior (model.posterior {run.config.model.posterior}): its scale has no "
        "closed form and is estimated by drawing, which an ONNX graph does not do"
    )


def decoder_refusal(run: Run) -> str | None:
    """Why the decoder cannot be exported (a local autoregressive p(x|z): its mean is drawn), or None."""
    with torch.no_grad():
        px = run.model.decode(*example_inputs(run, "decoder", 1, device=model_device(run.model)))
    if not isinstance(px, LocalARBernoulli):
        return None
    return (
        "the decoder's p(x|z) is local autoregressive (model.deep_ar_channels): its mean is estimated by drawing "
        "pixel by pixel, which an ONNX graph does not do"
    )
