"""A local autoregressive p(x|z) for binary images: each pixel is a Bernoulli whose logit reads z's features at
that pixel and the pixels already drawn in a K x K causal window above and to its left,

    p(x | z) = prod_i Bernoulli(x_i | x_{<i} in the window, z)    (raster order, channels of a pixel together)

a PixelCNN of one masked convolution (van den Oord et al. 2016), as the decoders of PixelVAE (Gulrajani et al.
2017) and of the variational lossy autoencoder (Chen et al. 2017), whose small window leaves the image's global
structure to z. ``log_prob`` is one pass; ``sample`` draws pixel by pixel (H W small steps); ``mean`` estimates
E[x | z] by averaging the conditional probabilities along ``MEAN_CHAINS`` ancestral draws (an unbiased estimate,
each pixel's probability given the pixels drawn before it), from a fixed seed, so it is the same for the same z.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

MEAN_CHAINS = 16  # ancestral draws averaged by ``mean``
CHUNK = 4096  # rows drawn at once (bounds the memory of ``mean`` and ``sample`` for many items)


class LocalAutoregressive(nn.Module):
    """The head's networks: a masked K x K convolution over x (B, c, H, W) -> (B, width, H, W), added to z's
    context features (B, width, H, W), then a per-pixel GELU -> 1x1 -> GELU -> 1x1 to c logits.

    The mask keeps the window's rows above the pixel and the pixels to its left in its own row ("type A": not
    the pixel itself), so logit i depends on x_{<i} only.
    """

    mask: Tensor  # (1, 1, K, K)

    def __init__(self, channels: int, width: int, kernel: int):
        super().__init__()
        self.channels, self.width, self.kernel = channels, width, kernel
        self.conv = nn.Conv2d(channels, width, kernel)  # no padding: ``window`` pads
        mask = torch.ones(1, 1, kernel, kernel)
        mask[..., kernel // 2, kernel // 2 :] = 0
        mask[..., kernel // 2 + 1 :, :] = 0
        self.register_buffer("mask", mask, persistent=False)
        self.out = nn.Sequential(nn.GELU(), nn.Conv2d(width, width, 1), nn.GELU(), nn.Conv2d(width, channels, 1))

    def window(self, x: Tensor) -> Tensor:
        """(B, c, H', W') already padded by K // 2 -> (B, width, H' - K + 1, W' - K + 1): the masked convolution
        of 2x - 1 (a pixel not yet drawn, or off the image, reads as 0)."""
        return F.conv2d(x, self.conv.weight * self.mask, self.conv.bias)

    def logits(self, x: Tensor, context: Tensor) -> Tensor:
        """x (B, c, H, W) in [0, 1], context (B, width, H, W) -> logits (B, c, H, W), all pixels in one pass."""
        pad = self.kernel // 2
        return self.out(context + self.window(F.pad(2 * x - 1, (pad, pad, pad, pad))))

    def draw(self, context: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Ancestral draws for context (N, width, H, W): x (N, c, H, W) in {0, 1} and each pixel's probability
        given the pixels drawn before it, (N, c, H, W)."""
        k, (n, _, h, w) = self.kernel, context.shape
        padded = context.new_zeros(n, self.channels, h + k - 1, w + k - 1)  # 2x - 1 of the pixels drawn so far
        probs = context.new_empty(n, self.channels, h, w)
        for i in range(h):
            for j in range(w):
                a = self.window(padded[:, :, i : i + k, j : j + k])  # (N, width, 1, 1)
                p = torch.sigmoid(self.out(context[:, :, i : i + 1, j : j + 1] + a))[:, :, 0, 0]  # (N, c)
                probs[:, :, i, j] = p
                padded[:, :, i + k // 2, j + k // 2] = 2 * torch.bernoulli(p, generator=generator) - 1
        pad = k // 2
        return (padded[:, :, pad : pad + h, pad : pad + w] + 1) / 2, probs


class LocalARBernoulli(Distribution):
    """p(x|z) over (c, H, W) binary images from ``context`` (B, width, H, W) and the ``head`` that reads it;
    batch (B,), event (c, H, W). Values in [0, 1] are scored by cross-entropy, as a Bernoulli's are."""

    arg_constraints: dict = {}
    support = constraints.boolean  # likelihoods.support widens it to [0, 1], as for a Bernoulli
    has_rsample = False

    def __init__(self, context: Tensor, head: LocalAutoregressive):
        self.context, self.head = context, head
        shape = (head.channels, *context.shape[2:])
        super().__init__(context.shape[:1], torch.Size(shape), validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        """(B, c, H, W) -> (B,): sum_i x_i l_i - softplus(l_i), the logits l from one pass."""
        logits = self.head.logits(value.to(self.context.dtype), self.context)
        return (value * logits - F.softplus(logits)).flatten(1).sum(1)

    def _chunks(self, context: Tensor, generator: torch.Generator | None, take: int) -> Tensor:
        """``draw``'s output ``take`` (0: x, 1: probabilities) for context (N, width, H, W), CHUNK rows at a time."""
        with torch.no_grad():
            return torch.cat([self.head.draw(c, generator)[take] for c in context.split(CHUNK)])

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> Tensor:
        """Ancestral draws (*sample_shape, B, c, H, W) in {0, 1}."""
        shape = torch.Size(sample_shape)
        context = self.context.repeat(math.prod(shape), 1, 1, 1)  # sample-major, as (*sample_shape, B) flattens
        return self._chunks(context, None, 0).view(*shape, *self.batch_shape, *self.event_shape)

    @property
    def mean(self) -> Tensor:
        """E[x|z] (B, c, H, W), estimated by the conditional probabilities averaged over MEAN_CHAINS ancestral
        draws from a fixed seed (the same estimate for the same z)."""
        g = torch.Generator(self.context.device).manual_seed(0)
        context = self.context.repeat_interleave(MEAN_CHAINS, 0)
        probs = self._chunks(context, g, 1)
        return probs.view(-1, MEAN_CHAINS, *self.event_shape).mean(1)
