"""Emitters: a compiled model written for other tools and runtimes (ONNX, NIR, Lava)."""
