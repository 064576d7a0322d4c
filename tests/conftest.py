"""Shared test setup: fake AWS credentials, moto S3, Lambda handlers loaded from functions/."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws
from wildlife_common import storage

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region for every test: nothing can reach a real account."""
    go_offline(monkeypatch)


def go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``offline_aws`` sets, for fixtures of a wider scope than a test (they start before it)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "wildlife-test",
        "POWERTOOLS_METRICS_NAMESPACE": "WildlifePipeline",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("PIPELINE_BUCKET", raising=False)
    storage.s3_client.cache_clear()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """moto S3 with a pipeline bucket ``pipeline`` (PIPELINE_BUCKET) and an input bucket ``traps``."""
    with mock_aws():
        storage.s3_client.cache_clear()
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="pipeline")
        client.create_bucket(Bucket="traps")
        monkeypatch.setenv("PIPELINE_BUCKET", "pipeline")
        yield client
    storage.s3_client.cache_clear()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every S3 retry as deployed, without its waits: botocore's backoff and storage's own are 0 s."""
    import botocore.retries.standard

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(storage, "READ_RETRY_WAITS_S", (0.0,) * len(storage.READ_RETRY_WAITS_S))


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


@pytest.fixture(scope="module")
def two_torch_threads() -> None:
    """Model tests keep torch to two threads: the tests share a 2-core machine with other work."""
    import torch

    torch.set_num_threads(2)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_handler(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (every handler is called app)."""
    module_name = f"handler_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
