"""Export of a run's encoder and decoder (ONNX, checked in onnxruntime)."""
