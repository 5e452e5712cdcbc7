"""Shared by the tests-only stand-ins for torchvision and torchaudio (see vision/torchvision/__init__.py)."""

import importlib
import importlib.util


class Unavailable:
    """Stands for any name of a missing package: attribute access works (``InterpolationMode.BICUBIC``
    as a default argument), calling it raises and says what is missing."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Unavailable(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name}: {self._name.split('.')[0]} is not installed (a tests-only "
                           "stand-in; ComfyUI needs it only for model families the tests do not run)")

    def __repr__(self) -> str:
        return f"<unavailable {self._name}>"


def missing(module: str):
    """A module ``__getattr__`` for a stand-in: a submodule that exists here is imported; any other
    name is an :class:`Unavailable`."""

    def getattr_(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        package = importlib.import_module(module)
        if hasattr(package, "__path__") and importlib.util.find_spec(f"{module}.{name}") is not None:
            return importlib.import_module(f"{module}.{name}")
        return Unavailable(f"{module}.{name}")

    return getattr_
