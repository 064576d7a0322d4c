"""Patch 1: ``batch:submitJob.sync`` speaks the ASL's parameter names (moto issue 10076).

What moto does: ``StateTaskService._normalise_parameters`` and ``_normalise_response`` are empty
stubs, so the ASL's ``JobName`` reaches botocore unchanged and SubmitJob fails with
``States.Runtime 'JobName'``; and the ``.sync`` poller then cannot find ``JobId`` in the response.

What we do: what LocalStack (where the interpreter comes from) does, for the Batch service class
only (``StateTaskServiceBatch``): map ASL names onto the botocore shape of the operation and back,
with moto's own ``_to_boto_request`` / ``_from_boto_response`` and botocore's Batch model.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_batch,
)

from wildlife.engine.aws_model import operation_model
from wildlife.engine.moto.patching import Patch, signature_problems

_StateTaskService = state_task_service.StateTaskService
_StateTaskServiceBatch = state_task_service_batch.StateTaskServiceBatch


def _operation(task: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
    return operation_model(
        task._get_boto_service_name(boto_service_name), task._get_boto_service_action(service_action_name)
    )


def _normalise_parameters(
    self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """ASL names (``JobName``) to botocore's (``jobName``), in place, by the operation's input shape."""
    operation = _operation(self, boto_service_name, service_action_name)
    if operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """botocore names (``jobId``) to the ASL's (``JobId``), in place, by the operation's output shape."""
    operation = _operation(self, boto_service_name, service_action_name)
    if operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


def patches() -> list[Patch]:
    return [
        Patch(_StateTaskServiceBatch, "_normalise_parameters", _normalise_parameters),
        Patch(_StateTaskServiceBatch, "_normalise_response", _normalise_response),
    ]


def check() -> list[str]:
    """What this patch replaces and calls, and whether moto still needs it."""
    problems = [
        *signature_problems(
            _StateTaskService,
            "_normalise_parameters",
            ["self", "parameters", "boto_service_name", "service_action_name"],
        ),
        *signature_problems(
            _StateTaskService, "_normalise_response", ["self", "response", "boto_service_name", "service_action_name"]
        ),
        *signature_problems(_StateTaskService, "_to_boto_request", ["self", "parameters", "structure_shape"]),
        *signature_problems(_StateTaskService, "_from_boto_response", ["self", "response", "structure_shape"]),
        *signature_problems(_StateTaskService, "_get_boto_service_name", ["self", "boto_service_name"]),
        *signature_problems(_StateTaskService, "_get_boto_service_action", ["self", "service_action_name"]),
    ]
    for name in ("_normalise_parameters", "_normalise_response"):
        if name in _StateTaskServiceBatch.__dict__:
            problems.append(f"StateTaskServiceBatch.{name} now exists: moto may have fixed issue 10076")
    probe = {"JobName": "probe"}
    try:
        _StateTaskService._normalise_parameters(None, probe)  # type: ignore[arg-type]
        changed = probe != {"JobName": "probe"}
    except Exception:
        changed = True
    if changed:
        problems.append("StateTaskService._normalise_parameters is no longer empty: moto issue 10076 may be fixed")
    return problems
