"""A small gated PixelCNN over grids of code indices: the VQ-VAE's autoregressive prior p(z) (van den Oord et al.
2016, "Conditional image generation with PixelCNN decoders": vertical and horizontal stacks, no blind spot).

The logits at position (i, j) read only the codes before it in raster order: rows above, and the same row's
codes to the left. The first layer's masks exclude the position itself; the last layer starts at zero, so an
untrained prior is uniform over the K codes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gate(h: Tensor) -> Tensor:
    """tanh(a) * sigmoid(b) of the two halves of the channels (B, 2C, h, w) -> (B, C, h, w)."""
    a, b = h.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer: a vertical stack (rows above) and a horizontal stack (this row, to the left).

    The vertical conv (k//2 + 1, k) padded by k//2 and cropped to h sees rows i - k//2..i; the horizontal conv
    (1, k//2 + 1) sees columns j - k//2..j. In the ``first`` layer the masks drop row i and column j, and the
    horizontal stack has no residual connection, so no output sees its own input.
    """

    mask_v: Tensor  # buffers: the vertical and horizontal convolutions' masks
    mask_h: Tensor

    def __init__(self, channels: int, kernel: int, first: bool):
        super().__init__()
        self.channels, self.kernel, self.first = channels, kernel, first
        c, k = channels, kernel
        self.v = nn.Conv2d(c, 2 * c, (k // 2 + 1, k), padding=(k // 2, k // 2))
        self.h = nn.Conv2d(c, 2 * c, (1, k // 2 + 1), padding=(0, k // 2))
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
        self.h_out = nn.Conv2d(c, c, 1)
        mask_v, mask_h = torch.ones_like(self.v.weight), torch.ones_like(self.h.weight)
        if first:
            mask_v[:, :, -1] = 0  # not row i
            mask_h[:, :, :, -1] = 0  # not column j
        self.register_buffer("mask_v", mask_v, persistent=False)
        self.register_buffer("mask_h", mask_h, persistent=False)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) vertical and horizontal features -> the next layer's."""
        rows, cols = v.shape[-2:]
        v_pre = F.conv2d(v, self.v.weight * self.mask_v, self.v.bias, padding=self.v.padding)[..., :rows, :]
        h_pre = F.conv2d(h, self.h.weight * self.mask_h, self.h.bias, padding=self.h.padding)[..., :cols]
        h_new = self.h_out(gate(h_pre + self.v_to_h(v_pre)))
        return gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """p(index) = prod_ij p(index_ij | the codes before it): index (B, h, w) in [0, codes) -> logits (B, K, h, w).

    ``channels`` wide, ``layers`` gated layers of kernel ``kernel`` (odd).
    """

    def __init__(self, codes: int, channels: int = 64, layers: int = 5, kernel: int = 5):
        super().__init__()
        self.codes, self.channels, self.layers, self.kernel = codes, channels, layers, kernel
        self.embed = nn.Embedding(codes, channels)
        self.stack = nn.ModuleList(GatedLayer(channels, kernel, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, codes, 1))
        last = self.head[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)  # starts uniform: the prior of an untrained VQ-VAE
        nn.init.zeros_(last.bias)

    def logits_of(self, e: Tensor) -> Tensor:
        """Embedded codes (B, C, h, w) -> logits (B, K, h, w); position i reads only positions before it."""
        v = h = e
        for layer in self.stack:
            v, h = layer(v, h)
        return self.head(h)

    def logits(self, index: Tensor) -> Tensor:
        """(B, h, w) code indices -> (B, K, h, w) logits of each position given the ones before it."""
        return self.logits_of(self.embed(index).permute(0, 3, 1, 2))

    def nll(self, index: Tensor) -> Tensor:
        """-log p(index) (B,) of code grids (B, h, w), in nats."""
        return F.cross_entropy(self.logits(index).float(), index, reduction="none").sum((1, 2))

    @torch.no_grad()
    def sample(self, n: int, rows: int, cols: int, temperature: float = 1.0) -> Tensor:
        """(n, rows, cols) code grids drawn position by position (logits / ``temperature``; 0: the most likely)."""
        index = torch.zeros(n, rows, cols, dtype=torch.long, device=self.embed.weight.device)
        for i in range(rows):
            for j in range(cols):
                logits = self.logits(index)[:, :, i, j].float()  # (n, K)
                index[:, i, j] = (
                    logits.argmax(1)
                    if temperature <= 0
                    else torch.multinomial((logits / temperature).softmax(1), 1).squeeze(1)
                )
        return index
