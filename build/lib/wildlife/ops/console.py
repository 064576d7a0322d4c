"""Links into the AWS console: what an operator clicks when a line in the terminal is not enough."""

from __future__ import annotations

from urllib.parse import quote


def _base(region: str) -> str:
    """The console's host for a region (China and GovCloud have their own partitions' hosts)."""
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def execution_url(region: str, execution_arn: str) -> str:
    """The execution's page in the Step Functions console, with its graph."""
    return f"{_base(region)}/states/home?region={region}#/v2/executions/details/{execution_arn}"


def log_stream_url(region: str, group: str, stream: str) -> str:
    """A log stream in CloudWatch Logs.

    The console's fragment encodes names twice over and writes ``%`` as ``$``: ``/aws/batch/x``
    becomes ``$252Faws$252Fbatch$252Fx``.
    """

    def encode(name: str) -> str:
        return quote(quote(name, safe=""), safe="").replace("%", "$")

    fragment = f"logsV2:log-groups/log-group/{encode(group)}/log-events/{encode(stream)}"
    return f"{_base(region)}/cloudwatch/home?region={region}#{fragment}"


def batch_job_url(region: str, job_id: str) -> str:
    """A job's page in the AWS Batch console (attempts, status reasons, exit codes)."""
    return f"{_base(region)}/batch/home?region={region}#jobs/detail/{job_id}"


def dashboard_url(region: str, name: str) -> str:
    """The stack's CloudWatch dashboard."""
    return f"{_base(region)}/cloudwatch/home?region={region}#dashboards:name={quote(name, safe='')}"
