"""Running the model frame after frame: the fast path, ONNX Runtime, int8, heatmaps and their overlay."""
