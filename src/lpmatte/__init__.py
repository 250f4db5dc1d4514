"""lpmatte: automatic, trimap-free, high-resolution portrait matting.

>>> import lpmatte
>>> lpmatte.list_models()[:3]
['lpm', 'lpm-e0', 'lpm-e0-groups']
"""

from lpmatte.model.registry import list_models
from lpmatte.version import __version__

__all__ = ["load", "list_models", "Matter", "InferenceOptions", "__version__"]


def load(name_or_path: str = "default", device: str = "auto", **kwargs):
    """Load a matting model by registered name, ``"default"`` or a checkpoint path.

    See :func:`lpmatte.api.load` for the keyword arguments.
    """
    from lpmatte.api import load as _load

    return _load(name_or_path, device=device, **kwargs)


def __getattr__(name):
    if name == "Matter":
        from lpmatte.api import Matter

        return Matter
    if name == "InferenceOptions":
        from lpmatte.inference.options import InferenceOptions

        return InferenceOptions
    raise AttributeError(name)
