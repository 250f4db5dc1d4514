"""The package version, importable from anywhere inside the package without a circle."""

__version__ = "0.1.0"
