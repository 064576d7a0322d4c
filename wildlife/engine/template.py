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

from samtranslator.yaml_helper import yaml_parse

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
    job_queues: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    """Template parameter name → its Default (None when it has none)."""

    @classmethod
    def load(cls, path: Path) -> PipelineTemplate:
        """Read the template and the ASL file it names."""
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
        queues = [name for name, r in resources.items() if r.get("Type") == "AWS::Batch::JobQueue"]
        parameters = {name: spec.get("Default") for name, spec in document.get("Parameters", {}).items()}
        return cls(
            path.parent, definition, props.get("DefinitionSubstitutions", {}), functions, jobs, queues, parameters
        )

    def render(self, arns: dict[str, str]) -> str:
        """The ASL with every ``${Name}`` replaced, as CloudFormation would, using local ARNs.

        Args:
            arns: logical id → ARN of the local stand-in of that resource.
        """
        values = {key: resolve(value, arns) for key, value in self.substitutions.items()}
        missing = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", self.definition)) - set(values))
        if missing:
            raise TemplateError(f"the state machine uses ${{{missing[0]}}} but DefinitionSubstitutions has no such key")
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], self.definition)


def resolve(value: Any, arns: dict[str, str]) -> str:
    """Resolve the intrinsic functions a DefinitionSubstitutions value uses: Ref, GetAtt and Sub."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "Ref":
            return PSEUDO.get(arg) or _arn(arg, arns)
        if kind == "Fn::GetAtt":
            logical_id = arg[0] if isinstance(arg, list) else arg.split(".")[0]
            return _arn(logical_id, arns)
        if kind == "Fn::Sub" and isinstance(arg, str):

            def name(match: re.Match[str]) -> str:
                key = match.group(1)
                return PSEUDO.get(key) or _arn(key.split(".")[0], arns)

            return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", name, arg)
    raise TemplateError(f"the local engine cannot resolve {value!r} in DefinitionSubstitutions")


def _arn(logical_id: str, arns: dict[str, str]) -> str:
    if logical_id not in arns:
        raise TemplateError(f"no local stand-in for {logical_id}")
    return arns[logical_id]


def resolve_properties(value: Any, names: dict[str, Any]) -> Any:
    """Resolve the intrinsic functions in a resource's Properties, recursively, as CloudFormation would.

    Handles Ref, Fn::GetAtt, Fn::Sub (string form) and Fn::Join. ``names`` maps what a Ref or GetAtt
    names (a parameter, a logical id, or ``Logical.Attribute``) to its local value; pseudo parameters
    come from ``PSEUDO``.

    Raises:
        TemplateError: an intrinsic function or a name the local engine has no value for.
    """

    def lookup(name: str) -> Any:
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
