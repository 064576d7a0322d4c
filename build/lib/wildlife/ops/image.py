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

Batch pulls ``<repository>:<GpuImageTag>`` when a job starts, so with the default tag ``latest``
the next job runs the new image; another tag needs ``GpuImageTag`` set to it in the stack.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wildlife_common.errors import PipelineError

from wildlife import version
from wildlife.ops.aws import Aws, aws_errors
from wildlife.ops.stack import Stack

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The repository this package was installed from (``pip install -e .``)."""

DOCKERFILE = Path("gpu_task", "Dockerfile")
PLATFORM = "linux/amd64"


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


def deploy_image(
    aws: Aws,
    stack: Stack,
    *,
    tag: str = "latest",
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
    docker = which("docker")
    if docker is None and not dry_run:
        raise DockerError("docker not found on PATH: install Docker (https://docs.docker.com/get-docker/) and start it")
    commands = image_commands(
        stack.ecr_repository_uri, tag, source, docker=docker or "docker", commit=version.checkout_commit(source)
    )
    steps = [("build", commands.build, None), ("login", commands.login, "ecr"), ("push", commands.push, None)]
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
    return commands
