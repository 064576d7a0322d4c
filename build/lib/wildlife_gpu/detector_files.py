"""What a detector weights file is, read from the file itself, without running any of its code.

Two families of files hold the detectors camera-trap users have:

- ``ultralytics``: checkpoints written by the ultralytics package (YOLOv5u/8/9/10/11; MegaDetector
  v1000 larch and sorrel, MegaDetector v6): the pickle names ``ultralytics.nn.tasks`` classes.
- ``yolov5``: checkpoints of the original YOLOv5 repository (MegaDetector v5a/v5b, v1000 redwood and
  spruce, and any YOLOv5 model a user trained with that code): the pickle names ``models.yolo.Model``
  and ``models.common`` classes, top-level packages of a YOLOv5 checkout.

MegaDetector v1000-cedar comes from the YOLOv9 repository, which is neither; it is named as such.

A PyTorch checkpoint is a zip archive whose ``data.pkl`` is the pickle; the class names it refers
to are read with ``pickletools`` (nothing is unpickled, so nothing in the file runs). MegaDetector
adds its own metadata to some files (``megadetector_info.json`` in the archive: ``model_type``,
``image_size``), which is read too.
"""

from __future__ import annotations

import io
import json
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("ultralytics", "yolov5")
"""The detector families we load; the ``detector_format`` setting names one to override detection."""

METADATA_NAME = "megadetector_info.json"
"""MegaDetector's metadata file inside the checkpoint's archive folder."""

_PICKLE_LIMIT = 64 << 20
"""A model's pickle (its structure; the weights are stored beside it) is kilobytes to a few MB."""


_TENSOR_PLUMBING = frozenset({"torch", "torch._utils", "collections", "builtins", "__builtin__", "_codecs"})
"""Modules every checkpoint's pickle names for tensors and dicts, whatever model it holds."""


class NotADetector(Exception):
    """The file is not a detector we can load; ``str(e)`` says what it is instead."""


@dataclass(frozen=True)
class DetectorFile:
    """What a weights file holds.

    Attributes:
        format: ``ultralytics`` or ``yolov5``.
        metadata: MegaDetector's metadata in the file (``image_size``, ``model_type``), or empty.
        modules: the Python modules whose classes the pickle names (for messages and tests).
    """

    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    modules: frozenset[str] = frozenset()


def pickled_modules(pickle_bytes: bytes) -> frozenset[str]:
    """The modules of every class a pickle refers to, read opcode by opcode without unpickling.

    Protocol 2 names a class with ``GLOBAL "module name"``; protocol 4 and later push the two
    strings and ``STACK_GLOBAL`` pops them, the strings possibly fetched back from the memo.
    """
    modules: set[str] = set()
    recent: list[Any] = []  # values pushed lately, enough to see STACK_GLOBAL's two operands
    memo: dict[int, Any] = {}
    for opcode, arg, _ in pickletools.genops(io.BytesIO(pickle_bytes)):
        name = opcode.name
        if name == "GLOBAL":
            modules.add(str(arg).split(" ", 1)[0])
        elif name == "STACK_GLOBAL" and len(recent) >= 2 and isinstance(recent[-2], str):
            modules.add(recent[-2])
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(str(arg))] = recent[-1] if recent else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(str(arg))))
        elif isinstance(arg, str) and "UNICODE" in name:
            recent.append(arg)
        else:
            recent.append(None)
        del recent[:-4]
    return frozenset(modules)


def inspect(path: str | Path) -> DetectorFile:
    """What the weights file at ``path`` is.

    Raises:
        NotADetector: it is no PyTorch detector checkpoint of a family we load; the message says what it is.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(16)
    if not zipfile.is_zipfile(path):
        return _not_zip(head, path.stat().st_size)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in names):
            raise NotADetector("a TorchScript export, not a checkpoint (use the .pt file it was exported from)")
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not pickles:
            raise NotADetector("a zip archive, not a PyTorch checkpoint")
        info = archive.getinfo(pickles[0])
        if info.file_size > _PICKLE_LIMIT:
            raise NotADetector(f"a PyTorch file with a {info.file_size / 1e6:.0f} MB pickle, not a detector checkpoint")
        modules = pickled_modules(archive.read(pickles[0]))
        metadata = _metadata(archive, pickles[0].split("/")[0] + "/" + METADATA_NAME, names)
    if metadata.get("model_type") == "yolov9":
        raise NotADetector(
            "a checkpoint of the YOLOv9 repository (MegaDetector v1000-cedar), which this pipeline does not load yet"
        )
    if any(m == "ultralytics" or m.startswith("ultralytics.") for m in modules):
        return DetectorFile("ultralytics", metadata, modules)
    if "models.yolo" in modules or "models.common" in modules:
        return DetectorFile("yolov5", metadata, modules)
    raise NotADetector(_what_else(modules))


def _metadata(archive: zipfile.ZipFile, name: str, names: list[str]) -> dict[str, Any]:
    if name not in names:
        return {}  # MDv5a/b and most files carry none
    try:
        data = json.loads(archive.read(name))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _not_zip(head: bytes, size: int) -> DetectorFile:
    if size == 0:
        raise NotADetector("an empty file")
    if head[:4] == b"PK\x03\x04":
        raise NotADetector(f"a damaged zip archive of {size} bytes (a checkpoint cut short while copying?)")
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        raise NotADetector(
            "a PyTorch file in the legacy (pre-1.6) format; load it and save it again with torch.save to convert it"
        )
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        raise NotADetector("a Keras/HDF5 file, not a PyTorch checkpoint")
    if head.lstrip()[:1] in (b"{", b"["):
        raise NotADetector("a JSON file, not a PyTorch checkpoint")
    if b"onnx" in head.lower() or head[:1] == b"\x08":
        raise NotADetector("an ONNX model or other protobuf, not a PyTorch checkpoint (use the .pt file)")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise NotADetector(f"not a PyTorch checkpoint (it starts with bytes {head[:8].hex(' ')})") from None
    raise NotADetector(f"a text file, not a PyTorch checkpoint (it starts {text[:16]!r})")


def _what_else(modules: frozenset[str]) -> str:
    """A PyTorch checkpoint of neither family: say what it seems to hold."""
    if any(m.startswith("timm") for m in modules):
        return "a timm model (a classifier), not a detector"
    if "speciesnet" in " ".join(modules):
        return "a SpeciesNet model, not a detector"
    own = sorted(m for m in modules - _TENSOR_PLUMBING if not m.startswith("numpy"))
    if not own:
        return "a PyTorch state dict or tensors only (weights without the model's classes), not a detector checkpoint"
    return f"a PyTorch checkpoint of {', '.join(own[:3])} classes, neither ultralytics nor YOLOv5"
