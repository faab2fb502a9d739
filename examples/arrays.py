"""A VAE on an in-memory array with the built-in networks: fit, then sample, encode and reconstruct.

    python examples/arrays.py [EPOCHS]
"""

import sys

import numpy as np
from sklearn.datasets import load_digits

import vaekit

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
x = (load_digits().images[:, None] / 16.0).astype(np.float32)  # (1797, 1, 8, 8) grey levels in [0, 1]

model = vaekit.build_model(net="conv", input_shape=x.shape[1:], latent_dim=8, channels=[16, 32], likelihood="bernoulli")
run = vaekit.fit(model, x, epochs=epochs, batch_size=64, out="runs/digits-array", overwrite=True)

codes = run.encode(x[:5])          # q(z|x): .mean (5, 8) are the embeddings, .stddev their scales
new = run.sample(16)               # (16, 1, 8, 8) means of p(x|z), z from the prior
again = run.reconstruct(x[:5])     # (5, 1, 8, 8)
print(f"embeddings {tuple(codes.mean.shape)}, samples {tuple(new.shape)}, "
      f"reconstruction error {float(((again.numpy() - x[:5]) ** 2).mean()):.4f}, best val loss "
      f"{min(r['val_loss'] for r in run.history):.2f}; pictures in {run.path}")
