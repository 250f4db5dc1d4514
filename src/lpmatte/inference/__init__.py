"""Running a model: the one two-stage pipeline, its backends (eager, bf16, ONNX Runtime),
FLOP counting, ONNX export and temporal stabilisation. Imports :mod:`lpmatte.model`."""
