"""What the local engine takes from template.yaml: the state machine and what it calls.

The local engine runs the deployed design, not a copy of it: the ASL file, its
DefinitionSubstitutions, the Lambda handlers and the Batch job definitions (command, parameters,
retry strategy) all come from the SAM template, resolved against the ARNs of their local stand-ins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from wildlife.engine.aws_model import operation_model

# Pseudo parameters as a local "account" answers them. The account id is moto's documented
# default: it never names a real account.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "wildlife-local",
    "AWS::URLSuffix": "amazonaws.com",
}


class TemplateError(Exception):
    """template.yaml does not have what the local engine needs."""


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template: where its code is and which handler to call."""

    logical_id: str
    code_uri: Path
    handler: str


@dataclass(frozen=True)
class PipelineTemplate:
    """The parts of template.yaml that the local engine runs."""

    root: Path
    definition: str
    substitutions: dict[str, Any]
    functions: dict[str, FunctionSpec]
    job_definitions: dict[str, dict[str, Any]]
    job_queues: dict[str, dict[str, Any]]
    """Logical id -> the queue's Properties."""
    roles: list[str] = field(default_factory=list)
    """Logical ids of the IAM roles (locally, one moto role stands in for all of them)."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Template parameter name → its Default (None when it has none)."""

    @classmethod
    def load(cls, path: Path) -> PipelineTemplate:
        """Read the template and the ASL file it names."""
        # The SAM translator's YAML reader knows CloudFormation's short forms (!Ref, !Sub); it is
        # imported here, not at the top, so that commands that never read the template stay light.
        from samtranslator.yaml_helper import yaml_parse

        document = yaml_parse(path.read_text())
        resources = document.get("Resources", {})
        machines = [r for r in resources.values() if r.get("Type") == "AWS::Serverless::StateMachine"]
        if len(machines) != 1:
            raise TemplateError(f"{path} must define exactly one AWS::Serverless::StateMachine, found {len(machines)}")
        props = machines[0]["Properties"]
        definition = (path.parent / props["DefinitionUri"]).read_text()
        globals_ = document.get("Globals", {}).get("Function", {})
        functions = {
            name: FunctionSpec(
                name,
                path.parent / r["Properties"]["CodeUri"],
                r["Properties"].get("Handler") or globals_.get("Handler", "app.lambda_handler"),
            )
            for name, r in resources.items()
            if r.get("Type") == "AWS::Serverless::Function"
        }
        jobs = {name: r["Properties"] for name, r in resources.items() if r.get("Type") == "AWS::Batch::JobDefinition"}
        queues = {name: r["Properties"] for name, r in resources.items() if r.get("Type") == "AWS::Batch::JobQueue"}
        roles = [name for name, r in resources.items() if r.get("Type") == "AWS::IAM::Role"]
        parameters = {name: spec.get("Default") for name, spec in document.get("Parameters", {}).items()}
        return cls(
            path.parent,
            definition,
            props.get("DefinitionSubstitutions", {}),
            functions,
            jobs,
            queues,
            roles,
            parameters,
        )

    def capacity_waits(self) -> dict[str, float]:
        """Queue -> seconds a job may wait for capacity before the queue cancels it (its
        JobStateTimeLimitAction for CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY), for queues that have one."""
        waits = {}
        for name, properties in self.job_queues.items():
            for action in properties.get("JobStateTimeLimitActions", []):
                if action.get("Reason") == "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY":
                    waits[name] = float(action["MaxTimeSeconds"])
        return waits

    def render(self, arns: dict[str, str]) -> str:
        """The ASL with every ``${Name}`` replaced, as CloudFormation would, using local ARNs.

        Args:
            arns: logical id → ARN of the local stand-in of that resource.
        """
        values = {key: str(resolve_properties(value, arns)) for key, value in self.substitutions.items()}
        missing = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", self.definition)) - set(values))
        if missing:
            raise TemplateError(f"the state machine uses ${{{missing[0]}}} but DefinitionSubstitutions has no such key")
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], self.definition)


def resolve_properties(value: Any, names: dict[str, Any]) -> Any:
    """Resolve the intrinsic functions in a resource's Properties, recursively, as CloudFormation would.

    Handles Ref, Fn::GetAtt, Fn::Sub (string form) and Fn::Join. ``names`` maps what a Ref or GetAtt
    names (a parameter, a logical id, or ``Logical.Attribute``) to its local value; pseudo parameters
    come from ``PSEUDO``.

    Raises:
        TemplateError: an intrinsic function or a name the local engine has no value for.
    """

    def lookup(name: str) -> Any:
        # A GetAtt (``Logical.Attribute``) gets the value of its resource: locally every attribute
        # the template reads of a resource (Arn, Name) is the one stand-in value.
        if name in PSEUDO:
            return PSEUDO[name]
        if name in names:
            return names[name]
        if "." in name and name.split(".")[0] in names:
            return names[name.split(".")[0]]
        raise TemplateError(f"the local engine has no value for {name!r}")

    if isinstance(value, list):
        return [resolve_properties(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "Ref":
            return lookup(arg)
        if kind == "Fn::GetAtt":
            return lookup(".".join(arg) if isinstance(arg, list) else arg)
        if kind == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", lambda m: str(lookup(m.group(1))), arg)
        if kind == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            return str(arg[0]).join(str(resolve_properties(part, names)) for part in arg[1])
        if kind.startswith("Fn::") or kind == "Condition":
            raise TemplateError(f"the local engine cannot resolve {kind} in {value!r}")
    return {key: resolve_properties(item, names) for key, item in value.items()}


# AWS Batch limits: RetryStrategy.attempts is 1 to 10, with at most 5 evaluateOnExit rules.
_MAX_ATTEMPTS = 10
_MAX_EXIT_RULES = 5


# Properties CloudFormation acts on itself, with no counterpart in RegisterJobDefinition.
_CLOUDFORMATION_ONLY = ("ResourceRetentionPolicy",)


def job_definition_arguments(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """RegisterJobDefinition's arguments from an ``AWS::Batch::JobDefinition``'s resolved Properties.

    CloudFormation's PascalCase keys become the API's member names (by botocore's model; maps such as
    ``Parameters`` keep their keys), and the RetryStrategy is checked as AWS Batch checks it (1-10
    attempts, at most 5 rules, RETRY or EXIT, ``*`` only at the end of a pattern), so that a
    template mistake shows up locally, not at deploy time.

    Args:
        name: the job definition's name when the Properties have no ``JobDefinitionName``.
        properties: the resource's Properties, every intrinsic function already resolved.

    Raises:
        TemplateError: a key Batch does not know, an unresolved intrinsic, or a RetryStrategy AWS rejects.
    """
    shape = operation_model("batch", "register_job_definition").input_shape
    assert shape is not None  # botocore's RegisterJobDefinition always has an input
    api_properties = {key: value for key, value in properties.items() if key not in _CLOUDFORMATION_ONLY}
    arguments: dict[str, Any] = _to_api(api_properties, shape, name)
    arguments.setdefault("jobDefinitionName", name)
    arguments.setdefault("type", "container")
    _check_retry_strategy(arguments.get("retryStrategy", {}), name)
    return arguments


def _to_api(value: Any, shape: Shape, where: str) -> Any:
    """CloudFormation's keys onto an API shape's member names, recursively; string numbers become numbers."""
    if (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    ):
        raise TemplateError(f"{where}: unresolved CloudFormation intrinsic {value!r}; resolve it before registering")
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = {member.lower(): member for member in shape.members}
        converted = {}
        for key, item in value.items():
            if key.lower() not in members:
                raise TemplateError(f"{where}.{key}: not a field of Batch's {shape.name}")
            member = members[key.lower()]
            converted[member] = _to_api(item, shape.members[member], f"{where}.{key}")
        return converted
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_to_api(item, shape.member, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _to_api(item, shape.value, f"{where}.{key}") for key, item in value.items()}
    if shape.type_name in ("integer", "long") and isinstance(value, str):
        return int(value)
    if shape.type_name == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


def _check_retry_strategy(strategy: dict[str, Any], where: str) -> None:
    attempts = strategy.get("attempts", 1)
    if not 1 <= attempts <= _MAX_ATTEMPTS:
        raise TemplateError(f"{where}: RetryStrategy.Attempts must be 1 to {_MAX_ATTEMPTS}, got {attempts}")
    rules = strategy.get("evaluateOnExit", [])
    if len(rules) > _MAX_EXIT_RULES:
        raise TemplateError(f"{where}: at most {_MAX_EXIT_RULES} EvaluateOnExit rules, got {len(rules)}")
    for rule in rules:
        if str(rule.get("action", "")).upper() not in ("RETRY", "EXIT"):
            raise TemplateError(f"{where}: EvaluateOnExit Action must be RETRY or EXIT, got {rule.get('action')!r}")
        for key in ("onStatusReason", "onReason", "onExitCode"):
            if "*" in rule.get(key, "")[:-1]:
                raise TemplateError(f"{where}: EvaluateOnExit {key} {rule[key]!r} may only end with '*'")
