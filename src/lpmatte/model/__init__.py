"""The paper's model, one concept per module: configs, named variants, weights files,
backbones, the low-res network, region selection, KNN, Cross Region Attention, the refiner
and the two-stage model. Imports only torch, numpy and :mod:`lpmatte.errors`."""
