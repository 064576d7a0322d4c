"""deploy-image: the docker commands it builds, the ECR login over stdin, and a one-line error without Docker.

Docker is not on the test machines, so a small executable named ``docker`` on PATH records the
arguments and stdin it is run with: the subprocess calls are real, only the program is not Docker.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.ops_support import REGION, STACK, create_stack
from wildlife.cli import main
from wildlife.ops import stack as outputs
from wildlife.ops.image import DockerError, image_commands

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/wildlife-gpu"


def test_the_image_is_built_for_the_gpu_instances_from_the_repository_root_and_pushed_to_ecr() -> None:
    commands = image_commands(REPOSITORY, "v7", ROOT)
    assert commands.build == [
        "docker",
        "build",
        "--platform",
        "linux/amd64",  # g4dn, g5 and g6 are x86_64, whatever the laptop is
        "-f",
        str(ROOT / "gpu_task" / "Dockerfile"),
        "-t",
        f"{REPOSITORY}:v7",
        str(ROOT),
    ]
    assert commands.login == [
        "docker",
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        f"123456789012.dkr.ecr.{REGION}.amazonaws.com",
    ]
    assert commands.push == ["docker", "push", f"{REPOSITORY}:v7"]


def test_a_source_without_the_dockerfile_is_refused(tmp_path) -> None:
    with pytest.raises(DockerError, match="no gpu_task/Dockerfile under"):
        image_commands(REPOSITORY, "latest", tmp_path)


@pytest.fixture
def deployed(monkeypatch):
    with mock_aws():
        # As the template makes it: tags are immutable.
        boto3.client("ecr", region_name=REGION).create_repository(
            repositoryName="wildlife-gpu", imageTagMutability="IMMUTABLE"
        )
        create_stack(
            {outputs.ECR_REPOSITORY: REPOSITORY},
            parameters={"GpuImageTag": "build-000000000000", "InputBucketName": "photos"},
        )
        monkeypatch.setenv("WILDLIFE_STACK", STACK)
        yield


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> Path:
    """An executable ``docker`` that appends {"args", "stdin"} to calls.jsonl; the only thing on PATH."""
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "stdin = sys.stdin.read() if 'login' in sys.argv else None\n"
        f"open({str(log)!r}, 'a').write(json.dumps({{'args': sys.argv[1:], 'stdin': stdin}}) + '\\n')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(script.parent))
    return log


@pytest.mark.slow
def test_deploy_image_builds_logs_in_with_the_ecr_token_on_stdin_and_pushes(deployed, fake_docker, capsys) -> None:
    assert main(["deploy-image", "--tag", "v7"]) == 0

    calls = [json.loads(line) for line in fake_docker.read_text().splitlines()]
    assert [call["args"][0] for call in calls] == ["build", "login", "push"]
    token = boto3.client("ecr", region_name=REGION).get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]
    assert calls[1]["stdin"] == password and password not in " ".join(calls[1]["args"])
    assert calls[2]["args"] == ["push", f"{REPOSITORY}:v7"]
    assert f"pushed {REPOSITORY}:v7" in capsys.readouterr().out
    # The stack now runs the image just pushed; its other parameters keep their values.
    [stack] = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=STACK)["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "GpuImageTag": "v7",
        "InputBucketName": "photos",
    }


def test_without_docker_deploy_image_is_one_line(deployed, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing named docker here
    assert main(["deploy-image"]) == 1
    assert capsys.readouterr().err == (
        "wildlife deploy-image: error: docker not found on PATH: install Docker (https://docs.docker.com/get-docker/)"
        " and start it\n"
    )


def test_dry_run_prints_the_commands_and_runs_nothing(deployed, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["deploy-image", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("$ docker build --platform linux/amd64 -f ")
    assert (
        out[1]
        == f"$ docker login --username AWS --password-stdin {REPOSITORY.split('/')[0]}  (password from ECR on stdin)"
    )
    # build-<commit>, or build-<UTC time> here: PATH holds no git, so the commit is not known.
    pushed = rf"\$ docker push {re.escape(REPOSITORY)}:build-([0-9a-f]{{12}}\S*|\d{{8}}T\d{{6}}Z)"
    assert re.fullmatch(pushed, out[2]), out[2]
    tag = out[2].rsplit(":", 1)[1]
    assert (
        out[3] == f"$ aws cloudformation update-stack --stack-name {STACK} --use-previous-template (GpuImageTag={tag})"
    )


def in_ecr(tag: str) -> None:
    """An image tagged ``tag`` in the stack's repository, as an earlier push left it."""
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    boto3.client("ecr", region_name=REGION).put_image(
        repositoryName="wildlife-gpu", imageManifest=json.dumps(manifest), imageTag=tag
    )


def stack_now() -> dict:
    [stack] = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName=STACK)["Stacks"]
    return stack


def test_a_rerun_after_a_failed_stack_update_sets_the_pushed_tag_without_pushing_again(
    deployed, fake_docker, capsys, monkeypatch
) -> None:
    # The commit's image was pushed, then the stack update failed: the tag is in ECR, not on the stack.
    monkeypatch.setattr("wildlife.ops.image.version.checkout_commit", lambda root: "0123456789ab")
    in_ecr("build-0123456789ab")

    assert main(["deploy-image"]) == 0

    assert not fake_docker.exists()  # no build, no login, no push (it would fail: the tag is immutable)
    assert f"{REPOSITORY}:build-0123456789ab was pushed before" in capsys.readouterr().out
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack_now()["Parameters"]}
    assert parameters["GpuImageTag"] == "build-0123456789ab"


def test_a_stack_that_runs_the_tag_already_is_left_as_it_is(deployed, fake_docker, capsys, monkeypatch) -> None:
    monkeypatch.setattr("wildlife.ops.image.version.checkout_commit", lambda root: "000000000000")
    in_ecr("build-000000000000")  # the fixture's stack runs it

    assert main(["deploy-image"]) == 0

    assert "runs GpuImageTag=build-000000000000 already: not updated" in capsys.readouterr().out
    assert stack_now()["StackStatus"] == "CREATE_COMPLETE"  # no UpdateStack (CloudFormation would refuse it)


def test_a_given_tag_that_is_in_ecr_already_is_refused(deployed, fake_docker, capsys) -> None:
    in_ecr("v7")

    assert main(["deploy-image", "--tag", "v7"]) == 1

    assert capsys.readouterr().err == (
        f"wildlife deploy-image: error: {REPOSITORY}:v7 exists already and tags are immutable: give another --tag,"
        " or none (build-<commit>, which a rerun reuses)\n"
    )
    assert not fake_docker.exists()


def test_a_role_that_may_not_describe_images_builds_and_pushes_as_before(
    deployed, fake_docker, capsys, monkeypatch
) -> None:
    from botocore.awsrequest import AWSResponse

    from wildlife.ops.aws import Aws

    def denied(**_: object) -> tuple[AWSResponse, dict]:
        error = {"Code": "AccessDeniedException", "Message": "not authorized to perform: ecr:DescribeImages"}
        return AWSResponse("https://ecr", 400, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    client = Aws.client

    def without_describe_images(self: Aws, service: str) -> object:
        made = client(self, service)
        if service == "ecr":
            made.meta.events.register("before-call.ecr.DescribeImages", denied)
        return made

    monkeypatch.setattr(Aws, "client", without_describe_images)

    assert main(["deploy-image", "--tag", "v8"]) == 0

    calls = [json.loads(line) for line in fake_docker.read_text().splitlines()]
    assert [call["args"][0] for call in calls] == ["build", "login", "push"]
    out = capsys.readouterr().out
    assert "warning: looking for wildlife-gpu:v8 in ECR: AccessDeniedException" in out
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack_now()["Parameters"]}["GpuImageTag"] == "v8"


def test_a_failing_docker_command_is_one_line(deployed, fake_docker, capsys) -> None:
    script = fake_docker.parent / "bin" / "docker"
    script.write_text(script.read_text() + "sys.exit(3 if sys.argv[1] == 'push' else 0)\n")
    assert main(["deploy-image"]) == 1
    assert capsys.readouterr().err == (
        "wildlife deploy-image: error: docker push failed with exit status 3 (its output is above)\n"
    )


def test_the_image_records_the_commit_it_was_built_from(tmp_path) -> None:
    from wildlife import version
    from wildlife.ops.image import default_tag, image_commands

    checkout = tmp_path / "checkout"
    (checkout / "gpu_task").mkdir(parents=True)
    (checkout / "gpu_task" / "Dockerfile").write_text("FROM scratch\n")
    assert version.checkout_commit(checkout) is None  # not a git checkout: nothing to record
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    commit = version.checkout_commit(checkout)
    assert commit is not None and re.fullmatch(r"[0-9a-f]{12}", commit)
    assert default_tag(checkout) == f"build-{commit}"  # the image tag deploy-image pushes
    (checkout / "gpu_task" / "Dockerfile").write_text("FROM scratch\nRUN true\n")
    assert version.checkout_commit(checkout) == f"{commit}.dirty"
    when = datetime(2026, 12, 2, 10, 55, tzinfo=UTC)
    assert default_tag(checkout, when) == f"build-{commit}-dirty-20261202T105500Z"  # immutable: a tag per push

    build = image_commands("r/wildlife", "v1", checkout, commit=commit).build
    assert build[build.index("--build-arg") + 1] == f"WILDLIFE_GIT_SHA={commit}"
    dockerfile = (ROOT / "gpu_task" / "Dockerfile").read_text()
    assert 'ARG WILDLIFE_GIT_SHA=""' in dockerfile and "ENV WILDLIFE_GIT_SHA=${WILDLIFE_GIT_SHA}" in dockerfile
