"""Patch 2: a Lambda invocation calls the Python handler registered for the function.

What moto does: its Lambda needs Docker; with ``"lambda": {"use_docker": False}`` it uses
``LambdaSimpleBackend``, whose ``invoke`` echoes the payload back.

What we do: replace ``invoke`` so that the function of a name calls the handler registered for that
name, with a Lambda context. An exception becomes a Lambda function error (the
``X-Amz-Function-Error: Unhandled`` header, a payload of ``errorMessage`` / ``errorType`` /
``stackTrace``), which the interpreter turns into a task failure whose error name is ``errorType``:
Retry and Catch match it as in AWS.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend

from wildlife.engine.moto.patching import Patch, attribute_problems, signature_problems

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalLambdaContext:
    """The Lambda context object a handler receives, with the attributes Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_monotonic: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout."""
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


LambdaHandler = Callable[[Any, LocalLambdaContext], Any]
"""``handler(event, context) -> result``; the result must be JSON-serialisable."""


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _error(message: str, kind: str, request_id: str, stack: list[str]) -> dict[str, Any]:
    """The payload of a function error, as Lambda's Python runtime writes it."""
    return {"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": stack}


def _call(handler: LambdaHandler, function: LambdaFunction, arn: str, body: Any, request_id: str) -> tuple[Any, bool]:
    """Call a handler as Lambda would: (payload, whether it is a function error)."""
    text = body.decode() if isinstance(body, bytes) else body
    event = json.loads(text) if text else {}
    context = LocalLambdaContext(
        function_name=function.function_name,
        invoked_function_arn=arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=request_id,
        deadline_monotonic=time.monotonic() + float(function.timeout),
        log_group_name=f"/aws/lambda/{function.function_name}",
    )
    try:
        return handler(event, context), False
    except Exception as error:
        LOG.info("local Lambda %s raised %s: %s", function.function_name, type(error).__name__, error)
        # Without this function's own frame: Lambda shows the handler's frames only.
        stack = traceback.format_list(traceback.extract_tb(error.__traceback__)[1:])
        return _error(str(error), type(error).__name__, request_id, stack), True


def patches(handlers: Mapping[str, LambdaHandler]) -> list[Patch]:
    """Replace ``LambdaSimpleBackend.invoke``; ``handlers`` (function name -> handler) is read at each call."""

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        function: LambdaFunction = self.get_function(function_name, qualifier)  # moto's 404 when missing
        if _header(headers, "X-Amz-Invocation-Type") == "DryRun":
            return b""
        request_id = str(uuid.uuid4())
        handler = handlers.get(function.function_name)
        if handler is None:
            # The error Lambda itself reports for a function whose handler cannot be found.
            message = f"No local handler registered for function {function.function_name!r}"
            payload, failed = _error(message, "Runtime.HandlerNotFound", request_id, []), True
        else:
            arn = f"arn:aws:lambda:{self.region_name}:{self.account_id}:function:{function.function_name}"
            payload, failed = _call(handler, function, arn, body, request_id)
        try:
            encoded = json.dumps(payload).encode()
        except (TypeError, ValueError) as error:
            # What Lambda's Python runtime reports for a result it cannot serialise.
            encoded = json.dumps(
                {"errorMessage": f"Unable to marshal response: {error}", "errorType": "Runtime.MarshalError"}
            ).encode()
            failed = True
        if failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(encoded))
        return encoded

    return [Patch(LambdaSimpleBackend, "invoke", invoke)]


def check() -> list[str]:
    return [
        *signature_problems(
            LambdaSimpleBackend, "invoke", ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
        ),
        *signature_problems(LambdaBackend, "get_function", ["self", "function_name_or_arn", "qualifier"]),
        *attribute_problems(LambdaFunction, ["function_name", "memory_size", "timeout"]),
    ]
