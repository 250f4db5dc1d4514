"""Training and benchmark data: dataset layouts, backgrounds, the data spec, augmentation,
synthetic samples and soft-alpha preparation. Imports :mod:`lpmatte.media` and
:mod:`lpmatte.metrics`, never the model."""
