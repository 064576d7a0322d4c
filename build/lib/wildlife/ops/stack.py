"""The deployed stack as the CLI sees it: the Outputs of template.yaml, read with DescribeStacks.

The Output names are a contract with template.yaml (a test checks that every name here is an
Output of the template).
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions
from wildlife_common.errors import PipelineError

from wildlife.ops.aws import Aws, StackNotFound, aws_errors, error_code

STATE_MACHINE = "StateMachineArn"
BUCKET = "PipelineBucketName"
JOB_QUEUE = "JobQueueArn"
ECR_REPOSITORY = "EcrRepositoryUri"
BATCH_LOG_GROUP = "BatchLogGroupName"
STATE_MACHINE_LOG_GROUP = "StateMachineLogGroupName"
DASHBOARD = "DashboardName"
ALERTS_TOPIC = "AlertsTopicArn"

OUTPUTS = (
    STATE_MACHINE,
    BUCKET,
    JOB_QUEUE,
    ECR_REPOSITORY,
    BATCH_LOG_GROUP,
    STATE_MACHINE_LOG_GROUP,
    DASHBOARD,
    ALERTS_TOPIC,
)
"""Every Output the CLI reads."""


class StackIncomplete(PipelineError):
    """The stack lacks an Output the CLI needs (deployed from an older template)."""


@dataclass(frozen=True)
class Stack:
    """One deployed pipeline: its name, region and Outputs."""

    name: str
    region: str
    status: str
    outputs: dict[str, str]

    def output(self, key: str) -> str:
        """One Output's value.

        Raises:
            StackIncomplete: the stack has no such Output.
        """
        value = self.outputs.get(key)
        if not value:
            raise StackIncomplete(
                f"stack {self.name} has no Output {key}: deploy the current template.yaml (make deploy)"
            )
        return value

    @property
    def state_machine_arn(self) -> str:
        return self.output(STATE_MACHINE)

    @property
    def bucket(self) -> str:
        return self.output(BUCKET)

    @property
    def output_root(self) -> str:
        """Where run folders go when a run config names no ``output``."""
        return f"s3://{self.bucket}/"

    @property
    def job_queue_arn(self) -> str:
        return self.output(JOB_QUEUE)

    @property
    def ecr_repository_uri(self) -> str:
        return self.output(ECR_REPOSITORY)

    @property
    def batch_log_group(self) -> str | None:
        return self.outputs.get(BATCH_LOG_GROUP)


def load_stack(aws: Aws, name: str) -> Stack:
    """The stack ``name`` in ``aws``'s region.

    Raises:
        StackNotFound: no such stack (CloudFormation answers ValidationError).
        AwsError: any other AWS failure.
    """
    with aws_errors(f"reading stack {name}"):
        try:
            stacks = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except botocore.exceptions.ClientError as error:
            if error_code(error) == "ValidationError" and "does not exist" in str(error):
                raise StackNotFound(
                    f"no stack named {name} in {aws.region_name} (deploy it with sam deploy, or pass --region)"
                ) from error
            raise
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Stack(name=stack["StackName"], region=aws.region_name, status=stack["StackStatus"], outputs=outputs)
