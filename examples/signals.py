"""Your own encoder and decoder, for 1-D signals: any nn.Module in, the same trainer, run folder and answers out.

    python examples/signals.py [EPOCHS]
"""

import sys

import numpy as np
import torch
from torch import nn

import vaekit

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
rng = np.random.default_rng(0)
t = np.linspace(0, 1, 64, dtype=np.float32)
freq, phase = rng.uniform(1, 4, (2000, 1, 1)), rng.uniform(0, 1, (2000, 1, 1))
x = (np.sin(2 * np.pi * (freq * t + phase)) + 0.1 * rng.standard_normal((2000, 1, 64))).astype(np.float32)


def nets():
    encoder = nn.Sequential(nn.Conv1d(1, 16, 5, 2, 2), nn.ReLU(), nn.Flatten())          # x (B, 1, 64) -> (B, F)
    decoder = nn.Sequential(nn.Linear(8, 16 * 32), nn.ReLU(), nn.Unflatten(1, (16, 32)),
                            nn.ConvTranspose1d(16, 1, 4, 2, 1))                          # z (B, 8) -> (B, 1, 64)
    return encoder, decoder


model = vaekit.VAE(*nets(), latent_dim=8, likelihood="gaussian")
run = vaekit.fit(model, x, epochs=epochs, batch_size=128, out="runs/signals", overwrite=True)

qz = run.encode(x[:10])                                   # numpy or torch in; q(z|x) out
new = run.sample(16)                                      # (16, 1, 64)
log_px = vaekit.iwae_bound(run.model, torch.as_tensor(x[:10]), k=100)
again = vaekit.load_run("runs/signals", model=vaekit.VAE(*nets(), latent_dim=8, likelihood="gaussian"))
same = torch.equal(again.encode(x[:10]).mean, qz.mean)
print(f"codes {tuple(qz.mean.shape)}, samples {tuple(new.shape)}, log p(x) ~ {log_px.mean():.1f} nats, "
      f"reloaded model gives the same codes: {same}")
