"""Evaluation and applications of a trained run: NLL, bits/dim, active units and a probe; anomaly scores and the
scikit-learn detector; disentanglement metrics; codes and scores written to files."""
