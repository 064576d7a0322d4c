"""A deployed stack as the operator's commands see it, in moto: a CloudFormation stack with the template's Outputs."""

from __future__ import annotations

import json
from typing import Any

import boto3

STACK = "wildlife-test"
REGION = "us-east-1"


def create_stack(outputs: dict[str, str], *, name: str = STACK, parameters: dict[str, str] | None = None) -> None:
    """A real moto CloudFormation stack whose Outputs are ``outputs`` (values as given).

    It holds one SNS topic because a stack needs a resource; the Outputs are what the CLI reads.
    ``parameters``: template parameters and their values (what deploy-image updates).
    """
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {key: {"Type": "String"} for key in parameters or {}},
        "Resources": {"AlertsTopic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in (parameters or {}).items()],
    )


def create_state_machine(definition: dict[str, Any], name: str = f"{STACK}-pipeline") -> str:
    """A state machine in plain moto (executions are recorded, not run)."""
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))
    created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )
    return created["stateMachineArn"]
