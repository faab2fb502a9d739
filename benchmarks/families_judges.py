"""The judges of benchmarks/families.py's conditional table: classifiers trained on real grey Fashion-MNIST
images that judge whether a conditional VAE's samples show the class they were drawn for."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaekit.data import Dataset

JUDGES = {
    "784-256-10 MLP": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
    "small conv net": lambda: nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    ),
}


def classifier(name: str, data: Dataset, epochs: int, limit: int | None = None) -> tuple[nn.Module, Tensor]:
    """The judge ``name`` of JUDGES trained on real (grey) Fashion-MNIST ``data`` train images (the first ``limit``;
    Adam, batch 128); returns it and its accuracy per class on the real test set, (10,)."""
    torch.manual_seed(0)
    net = JUDGES[name]()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = data.train.x[:limit], data.train.y[:limit]
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return net, per_class_hits(net, data.test.x, data.test.y)


@torch.no_grad()
def per_class_hits(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The share of each class's items (N, 1, 28, 28) with labels y (N,) that ``net`` assigns to it, (10,)."""
    predicted = torch.cat([net(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return torch.stack([(predicted[y == c] == c).float().mean() for c in range(10)])
