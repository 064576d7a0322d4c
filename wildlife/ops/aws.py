"""boto3 clients for the operator's commands, and AWS errors as one line a person can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config
from wildlife_common.errors import PipelineError

# Standard mode retries throttling and 5xx with backoff; 5 attempts ride out a short burst of
# throttling when `watch` polls while hundreds of shards are starting.
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class AwsError(PipelineError):
    """An AWS call failed: no credentials, no permission, an unreachable endpoint."""


class StackNotFound(PipelineError):
    """No CloudFormation stack of that name in the region."""


class RunNotFound(PipelineError):
    """No execution (or no run folder) of that name on the stack, or no run folder in a local --out folder."""


@dataclass
class Aws:
    """Where the commands talk to: a region and an optional named profile."""

    region: str | None = None
    profile: str | None = None
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def session(self) -> Any:
        if self._session is None:
            try:
                self._session = boto3.session.Session(region_name=self.region, profile_name=self.profile)
            except botocore.exceptions.ProfileNotFound as error:
                raise AwsError(f"no AWS profile named {self.profile!r} (see ~/.aws/config)") from error
            if not self._session.region_name:
                raise AwsError("no AWS region: pass --region or set AWS_REGION")
        return self._session

    @property
    def region_name(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        """One client per service, kept for the life of this object."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=_RETRIES)
        return self._clients[service]


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn what boto3 raises into an ``AwsError`` whose message says what was being done."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as error:
        raise AwsError(f"{doing}: no AWS credentials (aws configure, or AWS_PROFILE)") from error
    except botocore.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise AwsError(f"{doing}: {error_code(error)}: {message}") from error
    except botocore.exceptions.BotoCoreError as error:
        raise AwsError(f"{doing}: {error}") from error
