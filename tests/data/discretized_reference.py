"""The discretized logistic mixture over 8-bit values (PixelCNN++: Salimans et al. 2017; NVAE, VDVAE).

Each pixel's value v in 0..255 is the bin [y - 1/255, y + 1/255] of y = 2 v / 255 - 1 in [-1, 1], the end bins
stretching to -inf and +inf, under a mixture of K logistics shared by the pixel's channels; channel c's mean
moves linearly with the values of channels 0..c-1 (coefficients tanh-bounded). Every bin's probability is
computed exactly in log space, so the 256 values of a pixel sum to 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor
HALF_BIN = 1.0 / 255  # half the width of a bin on [-1, 1]


def n_params(shape: tuple[int, ...], components: int) -> int:
    """Parameters per data element: K logits, K means, K log-scales and K coefficients per earlier channel."""
    return components * (channels(shape) + 2)


def channels(shape: tuple[int, ...]) -> int:
    """C of (C, H, W) images; other item shapes have one channel per element."""
    return shape[0] if len(shape) == 3 else 1


class DiscretizedLogisticMixture(Distribution):
    """p(x) over items x (B, *shape) with values k / 255 in [0, 1]; ``params`` (B, K (C + 2), *shape).

    Slots of the parameter axis: [0, K) mixture logits (read from channel 0), [K, 2K) means, [2K, 3K)
    log-scales, then for each earlier channel j a block of K coefficients (read by the channels after j).
    """

    arg_constraints: dict = {}
    support = constraints.unit_interval

    def __init__(self, params: Tensor, shape: tuple[int, ...], components: int):
        self.shape, self.k, self.c = tuple(shape), components, channels(shape)
        b = params.shape[0]
        p = params.reshape(b, self.c + 2, components, self.c, -1)  # (B, slot, K, C, P): P pixels
        self.logits = torch.log_softmax(p[:, 0, :, 0], dim=1)  # (B, K, P)
        self.means, self.log_scales = p[:, 1], p[:, 2].clamp(min=MIN_LOG_SCALE)  # (B, K, C, P)
        self.coeffs = torch.tanh(p[:, 3:])  # (B, C - 1, K, C, P): block j for channels after j
        super().__init__(torch.Size([b]), torch.Size(self.shape), validate_args=False)

    def _mean_of(self, c: int, y: Tensor) -> Tensor:
        """Channel c's component means (B, K, P) given the earlier channels' values y (B, 1 or K, C, P) in
        [-1, 1]: one value per pixel, or one per component."""
        mean = self.means[:, :, c]
        for j in range(c):
            mean = mean + self.coeffs[:, j, :, c] * y[:, :, j]
        return mean

    def log_prob(self, value: Tensor) -> Tensor:
        """(B,) log-probability of items with values in [0, 1] (snapped to the nearest of the 256 levels)."""
        y = (torch.round(value.reshape(value.shape[0], 1, self.c, -1) * 255) / 255) * 2 - 1  # (B, 1, C, P)
        log_p = self.logits
        for c in range(self.c):
            log_p = log_p + bin_log_prob(y[:, :, c], self._mean_of(c, y), self.log_scales[:, :, c])
        return torch.logsumexp(log_p, dim=1).sum(-1)  # (B,)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Items (B, *shape) with values k / 255: a component per pixel, then each channel in turn."""
        with torch.no_grad():
            if sample_shape != torch.Size():
                raise NotImplementedError("draw one sample per item")
            pick = torch.distributions.Categorical(logits=self.logits.transpose(1, 2)).sample()  # (B, P)
            onehot = F.one_hot(pick, self.k).transpose(1, 2).to(self.means.dtype)  # (B, K, P)
            y = torch.zeros(self.means.shape[0], 1, self.c, self.means.shape[-1], device=self.means.device)
            for c in range(self.c):
                mean = (self._mean_of(c, y) * onehot).sum(1)  # (B, P)
                scale = (self.log_scales[:, :, c] * onehot).sum(1).exp()
                u = torch.rand_like(mean).clamp(1e-5, 1 - 1e-5)
                y[:, 0, c] = (mean + scale * (u.log() - (-u).log1p())).clamp(-1, 1)
            return (torch.round((y + 1) / 2 * 255) / 255).reshape(-1, *self.shape)

    @property
    def mean(self) -> Tensor:
        """(B, *shape) in [0, 1]: per component and channel the mean of the logistic clamped to [-1, 1] (the
        end bins take the tails), a channel's location moved by the earlier channels' means; mixed by the weights.

        E[clamp(Y, -1, 1)] = -1 + s (softplus((m + 1) / s) - softplus((m - 1) / s)) for Y ~ Logistic(m, s).
        """
        y = torch.zeros_like(self.means)  # (B, K, C, P): each component's mean values
        for c in range(self.c):
            m, s = self._mean_of(c, y), self.log_scales[:, :, c].exp()
            y[:, :, c] = -1 + s * (F.softplus((m + 1) / s) - F.softplus((m - 1) / s))
        return ((self.logits.exp()[:, :, None] * y).sum(1) + 1).div(2).reshape(-1, *self.shape)


def bin_log_prob(y: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(bin of y) under Logistic(mean, exp(log_scale)), exactly: the end bins take the tails.

    sigmoid(a) - sigmoid(b) = e^b (e^(a - b) - 1) / ((1 + e^a)(1 + e^b)), so its log is
    b + log(expm1(a - b)) - softplus(a) - softplus(b), which loses nothing in either tail.
    """
    inv = torch.exp(-log_scale)
    a, b = inv * (y - mean + HALF_BIN), inv * (y - mean - HALF_BIN)
    middle = b + torch.log(torch.expm1(2 * HALF_BIN * inv)) - F.softplus(a) - F.softplus(b)
    low, high = -F.softplus(-a), -F.softplus(b)  # P(y <= -1 + 1/255), P(y >= 1 - 1/255)
    return torch.where(y < -1 + HALF_BIN, low, torch.where(y > 1 - HALF_BIN, high, middle))
