"""The Docker engine the lab runs on, reached through the Docker SDK."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fledge.errors import FledgeError
from fledge.lazy import lazy

if TYPE_CHECKING:
    import docker
else:
    docker = lazy("docker")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
INSTALL_FIX = (
    "install and start a Docker engine: `apt-get install docker.io` then `systemctl start docker` "
    "(or start `dockerd` in the background where systemd does not run); other systems: "
    "https://docs.docker.com/engine/install/ . If an engine runs elsewhere, set DOCKER_HOST to it"
)


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket)."""
    where = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        reason = str(exc)
        fix = INSTALL_FIX
        if "Permission denied" in reason:
            fix = "run as root, or add your user to the docker group (then log in again)"
        raise FledgeError(
            f"cannot reach a Docker engine at {where} (DOCKER_HOST): {reason}", fix=fix
        ) from None
    return client


def native_arch(client: docker.DockerClient) -> str:
    """The engine's own architecture in Debian's words (amd64, arm64)."""
    return client.version()["Arch"]


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Report what the engine refused as a FledgeError with its explanation."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise FledgeError(f"the Docker engine refused: {exc.explanation or exc}") from None
