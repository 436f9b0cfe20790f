"""A moto server on loopback, AWS targets pointing at it, and a guard that no test leaves
the machine: any connection or name lookup beyond loopback fails the test."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from mpac_drill.config import SAFETY_KEYS, Target, load_target, resolve_target_path

REGION = "ap-northeast-1"  # staging's aws.region
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: Any) -> bool:
    if host is None or host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Refuse DNS and connections beyond loopback; yield the (loopback) connections made.

    A refused attempt fails the test even when the code under test swallowed the error
    (as botocore does when it probes for instance-metadata credentials).
    """
    connections: list[tuple[str, int]] = []
    refused: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            refused.append(f"resolve {host!r}")
            raise OSError(f"test tried to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            if not _is_loopback(address[0]):
                refused.append(f"connect {address!r}")
                raise OSError(f"test tried to connect to {address!r}: only loopback is allowed")
            connections.append((address[0], address[1]))
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield connections
    assert not refused, f"the test tried to leave loopback: {refused}"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only; no profile, no config file, no instance metadata, no proxy."""
    for key in list(os.environ):
        if key.startswith("AWS_") or key.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(autouse=True)
def own_drill_locks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each AWS test holds its own drill locks: two tests drilling the staging copies at once
    (xdist, or a developer's run beside CI) would otherwise refuse each other."""
    monkeypatch.setattr("mpac_drill.drill.runner.LOCK_DIR", tmp_path / "locks")


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)


def _post(url: str, path: str, body: dict[str, Any]) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with opener.open(request, timeout=10):
        pass


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session, on a free loopback port."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto moves an ECS task one state on (RUNNING → DEACTIVATING ...) each time it is
    # described; keep running tasks RUNNING so only StopTask changes them.
    _post(
        url,
        "/moto-api/state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    yield url
    server.stop()


#: A drill on a test copy of staging waits for recovery to SLO over a 1 s window, at most
#: 5 s (staging's own 60 s window and 900 s wait are for a real account); a test sets its own.
TEST_SLO = {"slo.window_s": 1.0, "slo.wait_s": 5.0}


def target_with(base: str, folder: Path, overrides: dict[str, Any]) -> Target:
    """``base`` (a target name or file) with ``overrides``: the keys ``--set`` refuses
    (account_id, name, environment, ...) are written into a copy of the file in ``folder``,
    as a user would edit their own target; the rest are applied as ``--set`` would. A copy
    of staging gets the tests' short SLO window (``TEST_SLO``) unless the test sets one."""
    if base == "staging":
        overrides = {**TEST_SLO, **overrides}
    safety = {k: v for k, v in overrides.items() if k.split(".")[0] in SAFETY_KEYS}
    rest = {k: v for k, v in overrides.items() if k not in safety}
    if safety:
        settings = yaml.safe_load(resolve_target_path(base).read_text(encoding="utf-8"))
        for key, value in safety.items():
            node = settings
            *parents, last = key.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        path = folder / f"target-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        base = str(path)
    return load_target(base, rest)


@pytest.fixture
def retarget(tmp_path: Path) -> Callable[..., Target]:
    """``retarget(target, **{"account_id": "1234..."})``: ``target`` (its file and its
    overrides) with more keys, safety keys included (written into a copy of its file)."""

    def make(target: Target, overrides: dict[str, Any]) -> Target:
        return target_with(str(target.path), tmp_path, {**target.overrides, **overrides})

    return make


@pytest.fixture
def make_target(moto_url: str, tmp_path: Path) -> Callable[..., Target]:
    """``make_target(**{"ecs.cluster": "c"})``: staging, pointed at moto, keys overridden."""

    def make(**overrides: Any) -> Target:
        return target_with("staging", tmp_path, {"aws.endpoint_url": moto_url, **overrides})

    return make


@pytest.fixture
def aws_target(make_target: Callable[..., Target]) -> Target:
    return make_target()


@pytest.fixture
def write_target(tmp_path: Path) -> Callable[..., Target]:
    """A target file in ``tmp_path``: staging's settings with ``aws.*`` keys replaced/added."""

    def write(**aws: Any) -> Target:
        settings = load_target("staging").settings
        settings["aws"].update(aws)
        settings["slo"].update(window_s=TEST_SLO["slo.window_s"], wait_s=TEST_SLO["slo.wait_s"])
        path = tmp_path / f"target-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return load_target(str(path))

    return write


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _boto(service: str, url: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def moto(moto_url: str) -> Callable[[str], Any]:
    """``moto("ecs")``: a plain boto3 client on the moto server, to arrange and check state."""
    return lambda service: _boto(service, moto_url)


@pytest.fixture(scope="session")
def ecs_network(moto_url: str) -> dict[str, Any]:
    """A VPC (DNS hostnames on), a subnet and a security group, as awsvpc tasks need."""
    ec2 = _boto("ec2", moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="mpac-drill-test", Description="tasks", VpcId=vpc)[
        "GroupId"
    ]
    return {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}


def fargate_service(
    ecs: Any,
    network: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    *,
    cluster: str,
    service: str,
    tasks: int,
    desired: int,
    running: int,
) -> tuple[str, list[str]]:
    """In moto: ``cluster`` holding the Fargate service ``service`` (``desired`` tasks;
    moto reports ``running`` as its runningCount, it does not track tasks itself) and
    ``tasks`` running tasks of the service's group: (task definition ARN, task ARNs)."""
    ecs.create_cluster(clusterName=cluster)
    definition = ecs.register_task_definition(
        family=service,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "app", "image": f"{service}:1", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))
    ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=definition,
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration=network,
    )
    monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING")
    if not tasks:
        return definition, []
    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        count=tasks,
        launchType="FARGATE",
        networkConfiguration=network,
        group=f"service:{service}",
    )
    return definition, [t["taskArn"] for t in started["tasks"]]


@pytest.fixture
def ecs_service(
    moto_url: str,
    ecs_network: dict[str, Any],
    make_target: Callable[..., Target],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[Target, list[str]]]:
    """``ecs_service(tasks=4, desired=4, running=4)`` → (target, task ARNs): a fresh
    cluster holding svc-portal with ``tasks`` running Fargate tasks. ``running`` is what
    moto reports as the service's runningCount (it does not track tasks itself)."""

    def make(
        tasks: int = 4, desired: int = 4, running: int | None = None
    ) -> tuple[Target, list[str]]:
        cluster = _unique("mpac-smartpos")
        _, arns = fargate_service(
            _boto("ecs", moto_url),
            ecs_network,
            monkeypatch,
            cluster=cluster,
            service="svc-portal",
            tasks=tasks,
            desired=desired,
            running=desired if running is None else running,
        )
        return make_target(**{"ecs.cluster": cluster}), arns

    return make
