"""Build the gpu_task image and push it to the stack's ECR repository (``wildlife deploy-image``).

Three steps, each a ``docker`` command run as a subprocess so the user sees its own output:

1. ``docker build --platform linux/amd64 -f gpu_task/Dockerfile -t <repository>:<tag> <repo root>``:
   the build context is the repository root because the image copies the shared layer too. The
   platform is fixed because the GPU instances (g4dn, g5, g6) are x86_64, and a build on an ARM
   laptop would otherwise produce an image they cannot run.
2. ``docker login --username AWS --password-stdin <registry>``, the password being an ECR
   authorization token (GetAuthorizationToken; valid 12 hours) passed on stdin, never on the
   command line where other users of the machine could see it.
3. ``docker push <repository>:<tag>``.

The build records the checkout's commit (``--build-arg WILDLIFE_GIT_SHA``), which every result the
image writes names as its code version.

4. The stack's ``GpuImageTag`` parameter is set to the new tag (UpdateStack with the previous
   template and every other parameter's previous value), so jobs started from then on run it.

Tags are immutable in the repository (an image a job definition names can never change under it),
so each push has a tag of its own: ``build-<commit>`` by default, ``build-<commit>-dirty-<UTC time>``
for a checkout with uncommitted changes.

Running it again is safe: after a push whose stack update failed, the commit's tag is already in
the repository (pushing it again would fail: immutable), so it is not built or pushed again, only
set on the stack; a stack that already runs the tag is left as it is. A tag given with ``--tag``
that the repository holds already is refused: it names another build.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
from wildlife_common.errors import PipelineError

from wildlife import version
from wildlife.ops.aws import Aws, aws_errors, error_code
from wildlife.ops.stack import Stack
from wildlife.paths import checkout_root

SOURCE_ROOT = checkout_root() or Path.cwd()
"""The checkout this package runs from; installed from a wheel, the current folder (--source says otherwise)."""

DOCKERFILE = Path("gpu_task", "Dockerfile")
PLATFORM = "linux/amd64"
IMAGE_TAG_PARAMETER = "GpuImageTag"


class DockerError(PipelineError):
    """Docker is missing, or one of its commands failed."""


@dataclass(frozen=True)
class ImageCommands:
    """The three docker commands, ready to run."""

    image: str
    registry: str
    build: list[str]
    login: list[str]
    push: list[str]


def image_commands(
    repository_uri: str, tag: str, source: Path, *, docker: str = "docker", commit: str | None = None
) -> ImageCommands:
    """The docker commands that build and push ``<repository_uri>:<tag>`` from the repository at ``source``.

    Raises:
        DockerError: ``source`` has no ``gpu_task/Dockerfile``.
    """
    dockerfile = source / DOCKERFILE
    if not dockerfile.is_file():
        raise DockerError(f"no {DOCKERFILE} under {source}: pass --source with the root of a clone of this repository")
    image = f"{repository_uri}:{tag}"
    registry = repository_uri.split("/", 1)[0]
    return ImageCommands(
        image=image,
        registry=registry,
        build=[
            docker,
            "build",
            "--platform",
            PLATFORM,
            *(["--build-arg", f"{version.ENV}={commit}"] if commit else []),
            "-f",
            str(dockerfile),
            "-t",
            image,
            str(source),
        ],
        login=[docker, "login", "--username", "AWS", "--password-stdin", registry],
        push=[docker, "push", image],
    )


def ecr_password(aws: Aws) -> str:
    """The password ``docker login`` needs for this account's ECR registry."""
    with aws_errors("getting an ECR login token"):
        data = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    _user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return password


def default_tag(source: Path, now: datetime | None = None) -> str:
    """``build-<commit>``, with ``-dirty-<UTC time>`` when the checkout has uncommitted changes (an
    immutable tag cannot be pushed twice), or ``build-<UTC time>`` outside git."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    commit = version.checkout_commit(source)
    if commit is None:
        return f"build-{stamp}"
    return f"build-{commit.replace('.dirty', f'-dirty-{stamp}')}"


def _update_line(stack: Stack, tag: str) -> str:
    """The stack update as a command line, for the user to see what happens."""
    update = f"$ aws cloudformation update-stack --stack-name {stack.name} --use-previous-template"
    return f"{update} ({IMAGE_TAG_PARAMETER}={tag})"


def pushed_already(aws: Aws, repository_uri: str, tag: str, *, emit: Callable[[str], None] = print) -> bool:
    """Whether the stack's ECR repository holds an image tagged ``tag``.

    A role that may push but not DescribeImages gets False (with a warning): the build and push then
    go on as they did before this check, and an immutable tag pushed twice fails in docker push.
    """
    registry, repository = repository_uri.split("/", 1)
    doing = f"looking for {repository}:{tag} in ECR"
    with aws_errors(doing):
        try:
            aws.client("ecr").describe_images(
                registryId=registry.split(".", 1)[0], repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except botocore.exceptions.ClientError as error:
            code = error_code(error)
            if code == "ImageNotFoundException":
                return False
            if code not in ("AccessDeniedException", "AccessDenied"):
                raise
            message = error.response.get("Error", {}).get("Message", "")
            emit(f"warning: {doing}: {code}: {message}; building and pushing without checking whether {tag} is there")
            return False
    return True


def use_image_tag(aws: Aws, stack: Stack, tag: str, *, emit: Callable[[str], None] = print) -> None:
    """Point the stack's job definitions at ``<repository>:<tag>``: set GpuImageTag, keep the rest.

    Raises:
        PipelineError: the update was refused or failed (one line, from CloudFormation).
    """
    cloudformation = aws.client("cloudformation")
    with aws_errors(f"reading stack {stack.name}"):
        [described] = cloudformation.describe_stacks(StackName=stack.name)["Stacks"]
    values = {p["ParameterKey"]: p.get("ParameterValue") for p in described.get("Parameters", [])}
    if IMAGE_TAG_PARAMETER not in values:
        raise PipelineError(f"stack {stack.name} has no {IMAGE_TAG_PARAMETER} parameter: deploy the current template")
    status = described.get("StackStatus", "")
    if values[IMAGE_TAG_PARAMETER] == tag and status.endswith("_COMPLETE") and "ROLLBACK" not in status:
        # UpdateStack would refuse it ("No updates are to be performed"): there is nothing to do. An
        # update still in progress (a rerun after Ctrl-C) is not done yet: UpdateStack then says so.
        emit(f"stack {stack.name} runs {IMAGE_TAG_PARAMETER}={tag} already: not updated")
        return
    parameters = [
        {"ParameterKey": name, "ParameterValue": tag}
        if name == IMAGE_TAG_PARAMETER
        else {"ParameterKey": name, "UsePreviousValue": True}
        for name in values
    ]
    emit(_update_line(stack, tag))
    with aws_errors(f"updating stack {stack.name}"):
        cloudformation.update_stack(
            StackName=stack.name,
            UsePreviousTemplate=True,
            Parameters=parameters,
            # The template's IAM roles and SAM transform, as sam deploy declares them.
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        # A few minutes: the three job definitions get a new revision each (the old ones stay for
        # runs in flight). 15 s between polls, at most an hour.
        cloudformation.get_waiter("stack_update_complete").wait(
            StackName=stack.name, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
        )


def deploy_image(
    aws: Aws,
    stack: Stack,
    *,
    tag: str | None = None,
    source: Path = SOURCE_ROOT,
    dry_run: bool = False,
    emit: Callable[[str], None] = print,
    run: Callable[..., Any] = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
) -> ImageCommands:
    """Build and push the image (or, with ``dry_run``, print the commands only).

    Raises:
        DockerError: no ``docker`` on PATH, or a docker command failed.
    """
    given_tag = tag
    tag = tag or default_tag(source)
    docker = which("docker")
    if docker is None and not dry_run:
        raise DockerError("docker not found on PATH: install Docker (https://docs.docker.com/get-docker/) and start it")
    commands = image_commands(
        stack.ecr_repository_uri, tag, source, docker=docker or "docker", commit=version.checkout_commit(source)
    )
    steps = [("build", commands.build, None), ("login", commands.login, "ecr"), ("push", commands.push, None)]
    if not dry_run and pushed_already(aws, stack.ecr_repository_uri, tag, emit=emit):
        if given_tag is not None:
            raise DockerError(
                f"{commands.image} exists already and tags are immutable: give another --tag, or none "
                "(build-<commit>, which a rerun reuses)"
            )
        # The same commit's image, pushed by an earlier run whose stack update did not finish.
        emit(f"{commands.image} was pushed before (the same commit): not built or pushed again")
        steps = []
    for name, command, stdin in steps:
        emit("$ " + " ".join(command) + ("  (password from ECR on stdin)" if stdin else ""))
        if dry_run:
            continue
        password = ecr_password(aws) if stdin else None
        try:
            run(command, input=password, text=True, check=True)
        except subprocess.CalledProcessError as error:
            raise DockerError(
                f"docker {name} failed with exit status {error.returncode} (its output is above)"
            ) from error
        except OSError as error:
            raise DockerError(f"could not run docker {name}: {error}") from error
    if dry_run:
        emit(_update_line(stack, tag))
    else:
        use_image_tag(aws, stack, tag, emit=emit)
    return commands
