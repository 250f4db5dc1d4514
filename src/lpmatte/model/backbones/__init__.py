"""Backbones of the low-res network: the paper's Swin Transformer and the off-paper
ImageNet EfficientNet-Lite0 of the shipped default."""
