"""Loading checkpoints of the original YOLOv5 repository (MegaDetector v5a/v5b) with the ``yolov5`` package.

An MDv5 file is a pickle of ``{"model": models.yolo.Model, ...}``: its classes are named by the
top-level packages of a YOLOv5 checkout, ``models`` and ``utils``. The ``yolov5`` package on PyPI
(the code MegaDetector and SpeciesNet run these files with) holds the same code as ``yolov5.models``
and ``yolov5.utils``. Putting the package's folder on ``sys.path`` would make those names resolve,
but also shadow every other ``models`` and ``utils`` in the process (ours, a user's, a library's),
so instead the unpickler is told where each class lives: ``models.X`` → ``yolov5.models.X``. The
process is left as it was: ``sys.path`` is restored after importing ``yolov5`` (whose
``models/yolo.py`` appends its folder on import), and no top-level ``models`` or ``utils`` module
is ever created.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import torch

_REPOSITORY_PACKAGES = ("models", "utils")
"""Top-level packages of a YOLOv5 checkout that checkpoints refer to."""


def import_yolov5() -> types.ModuleType:
    """``yolov5.models.yolo``, imported without changing ``sys.path`` for the rest of the process.

    Raises:
        ImportError: the ``yolov5`` package is not installed.
    """
    path = list(sys.path)
    try:
        with warnings.catch_warnings():
            # yolov5 7.0 imports pkg_resources at import time, which setuptools marks deprecated.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("yolov5.models.yolo")
        # Its logger (its own handler, not the root's) says "Fusing layers..." and a model summary at
        # INFO on every load, on the screen of `wildlife run`, which loads the model before the run
        # starts; nothing a user acts on. Its warnings still show.
        logging.getLogger("yolov5").setLevel(logging.WARNING)
        return module
    except ModuleNotFoundError as error:
        if error.name != "yolov5":
            raise
        raise ImportError(
            "YOLOv5-repository checkpoints need the yolov5 package, installed without its declared "
            "dependencies: make venv does it (requirements/lock/dev-nodeps.txt); elsewhere "
            "pip install --no-deps yolov5==7.0.11"
        ) from error
    finally:
        sys.path[:] = path


class _RepositoryUnpickler(pickle.Unpickler):
    """Finds ``models.*`` and ``utils.*`` classes in the ``yolov5`` package."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".", 1)[0] in _REPOSITORY_PACKAGES:
            module = f"yolov5.{module}"
        return super().find_class(module, name)


_pickle_module = types.ModuleType("wildlife_yolov5_pickle")
_pickle_module.Unpickler = _RepositoryUnpickler  # type: ignore[attr-defined]
_pickle_module.load = pickle.load  # type: ignore[attr-defined]  # torch reads a legacy file's header with it


def load(path: str | Path) -> torch.nn.Module:
    """The model of a YOLOv5-repository checkpoint, in float32 with conv and batch-norm fused, for inference.

    As MegaDetector's ``PTDetector`` loads it (``checkpoint["model"].float().fuse().eval()``, with the
    ``Upsample`` fix for checkpoints pickled by older PyTorch), so the numbers are the same.

    Raises:
        ImportError: the ``yolov5`` package is not installed.
        Exception: whatever torch or the pickle raises for a damaged file.
    """
    import_yolov5()
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_pickle_module)
    model = None
    if isinstance(checkpoint, dict):
        model = checkpoint["model"] if checkpoint.get("model") is not None else checkpoint.get("ema")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"the checkpoint holds no model (keys: {', '.join(map(str, checkpoint)) or 'none'})")
    for module in model.modules():
        if isinstance(module, torch.nn.Upsample) and not hasattr(module, "recompute_scale_factor"):
            module.recompute_scale_factor = None
    loaded: Any = model  # YOLOv5's Model: fuse() is its own method, unknown to torch's types
    return loaded.float().fuse().eval()
