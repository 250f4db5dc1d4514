"""ONNX: the two networks of the model as one self-contained ``.onnx`` file.

The file holds two independent graphs side by side (weights inside, no external data):

- low-res network: ``image`` (B, 3, H, W) in [0, 1], H and W multiples of 16 (any size:
  the Swin padding masks are computed in the graph) -> ``alpha_logits`` (B, 1, H/8, W/8),
  ``trimap_logits`` (B, 3, H/8, W/8);
- refiner: ``crops`` (N, 4, 8, 8), ``regions`` (N, 3) int64, ``neighbours`` (N, k) int64,
  ``valid`` (N, k) bool -> ``patches`` (N, 1, 8, 8), for any N >= 1 (without CRA only
  ``crops``).

Region selection and the k-nearest-region search stay outside the graphs, in
:mod:`lpmatte.inference.pipeline`. The model config travels in the file's ``metadata_props``, so
``lpmatte.load("model.onnx")`` needs nothing else. onnxruntime splits the file back into
its two graphs at load time (:func:`lpmatte.inference.onnx.graphs.split_graphs`).
"""
