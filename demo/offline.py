"""Keep ultralytics off the network while the demo models are trained and evaluated.

``YOLO_OFFLINE=1`` (set by ``demo/__init__.py``) stops ultralytics' online checks and telemetry,
but its dataset check still asks for the ``Arial.ttf`` plot font and tries to download it when it
is missing. ``offline()`` turns that check into a no-op and makes every socket connection fail
loudly, and records what was attempted, so that a network access shows up instead of hanging.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock


class NetworkAttempts(list[str]):
    """The addresses something tried to reach inside ``offline()`` (empty when all stayed local)."""


@contextmanager
def offline() -> Iterator[NetworkAttempts]:
    """Block the network and ultralytics' font download for the duration of the block.

    Yields:
        A list that collects every address a connection or name lookup was attempted for.
    """
    attempts = NetworkAttempts()

    def refuse_connect(sock: socket.socket, address: object) -> None:
        attempts.append(repr(address))
        raise OSError(f"network access blocked by demo.offline: {address!r}")

    def refuse_lookup(host: object, *args: object, **kwargs: object) -> list:
        attempts.append(repr(host))
        raise socket.gaierror(f"name lookup blocked by demo.offline: {host!r}")

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(socket.socket, "connect", refuse_connect))
        stack.enter_context(mock.patch.object(socket, "getaddrinfo", refuse_lookup))
        try:
            import ultralytics.data.utils as data_utils
        except ImportError:  # ultralytics is not needed for scenes alone
            pass
        else:
            # The font is only used for plots, which the demo never draws.
            stack.enter_context(mock.patch.object(data_utils, "check_font", lambda *args, **kwargs: None))
        yield attempts
