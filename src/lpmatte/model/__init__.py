"""The paper's model, one concept per module: configs, named variants, weights files,
backbones, the low-res network, region selection, KNN, Cross Region Attention, the refiner
and the two-stage model. Imports only torch, numpy and the lowest-level modules
(:mod:`lpmatte.errors`, :mod:`lpmatte.files`, :mod:`lpmatte.trimap`), never media or data."""
