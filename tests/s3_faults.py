"""S3 reads that fail the way S3 fails: 503 SlowDown, 500 InternalError, a reset connection.

``S3Faults`` hooks the shared client's ``before-send.s3.GetObject`` event, which botocore emits for
every attempt of a request just before sending it. For a chosen key the hook answers with S3's own
error response (or raises a connection error), ahead of moto; botocore then parses it, and its
standard retry mode retries it as it would a real one. Every other request reaches moto.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from wildlife_common import storage

EVERY_TIME = -1
"""``times`` for a key whose every GET fails."""

# What S3 answers, by error code: the HTTP status and the XML body of its error responses.
ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "AccessDenied": (403, "Access Denied"),
    "KMS.DisabledException": (400, "The KMS key is disabled."),
}
CONNECTION_RESET = "connection reset"
"""An ``error`` that raises botocore's ConnectionClosedError instead of answering."""


class _Body:
    """The raw stream AWSResponse reads an error body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class S3Faults:
    """Failing GETs for chosen keys of the shared S3 client; ``calls`` counts every attempt per key."""

    def __init__(self) -> None:
        self._faults: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        storage.s3_client().meta.events.register("before-send.s3.GetObject", self._before_send)

    def fail(self, key: str, times: int = EVERY_TIME, error: str = "SlowDown") -> None:
        """The next ``times`` GETs of ``key`` (every one: EVERY_TIME) fail with ``error``."""
        with self._lock:
            self._faults[key] = (times, error)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        path = unquote(urlparse(request.url).path)
        with self._lock:
            key = next((k for k in self._faults if path.endswith("/" + k)), None)
            if key is None:
                return None
            self.calls[key] += 1
            times, error = self._faults[key]
            if times == 0:
                return None
            if times > 0:
                self._faults[key] = (times - 1, error)
        if error == CONNECTION_RESET:
            raise ConnectionClosedError(endpoint_url=request.url)
        status, message = ERRORS[error]
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{error}</Code><Message>{message}</Message></Error>'
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Body(body.encode()))
