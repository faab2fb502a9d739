"""Pictures of a run: grids, curves, interpolations, traversals, latent maps, the report page, the explorer,
and the training callbacks that draw them (TensorBoard, the run folder's pictures)."""
