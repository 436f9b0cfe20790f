"""The one AWS client factory, and the dry-run recorder.

Every AWS call of mpac-drill goes through :func:`client`. It reads region, profile, role
and ``endpoint_url`` from the target (``aws.*``), so the same code reaches AWS staging or a
local moto server. Credentials are looked up when the client is built: none found is one
line, "no AWS credentials found for target X (profile P)". The clients are plain botocore
clients (paginators and ``botocore.stub.Stubber`` work on them) with event hooks installed:

- a failed call raises :class:`AwsCallFailed` (an ``ActivityFailed``), one line naming the
  operation, the resource and the region, instead of ``ClientError``,
  ``EndpointConnectionError`` or any other botocore error raised while sending;
- with a :class:`DryRun`, every call is recorded and answered with a canned response
  before anything is signed or sent: no credentials, no role, no DNS, no HTTP.

Because errors are converted inside botocore, a botocore waiter on these clients sees
``AwsCallFailed`` rather than ``ClientError``: poll with ``describe_*`` instead.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, TypedDict

import boto3
import botocore.loaders
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ProfileNotFound
from chaoslib.exceptions import ActivityFailed

from mpac_drill import __version__
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

logger = logging.getLogger("mpac_drill")

_CONTEXT_KEY = "mpac_drill"
_RESOURCE_KEYS = frozenset({"cluster", "service", "services", "task", "tasks"})
_RESOURCE_SUFFIXES = ("Identifier", "Id", "Ids", "Name", "Names", "Arn")
_SECRET_KEYS = frozenset(
    {"SecretString", "SecretBinary", "AuthToken", "SessionToken", "SecretAccessKey", "Token"}
)
#: ``scheme://user:password@``: the password of a URL or DSN, wherever it appears.
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")
_DEFAULT_MAX_ATTEMPTS = 3


class AwsCallFailed(ActivityFailed):
    """An AWS call failed; ``str()`` is one line naming operation, resource and region."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        operation: str,
        region: str,
        resource: str,
        code: str,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.operation = operation
        self.region = region
        self.resource = resource
        self.code = code


class DryRunCall(TypedDict):
    """One call a dry run would have made."""

    service: str
    operation: str
    region: str
    params: dict[str, Any]


@dataclass
class DryRun:
    """Records the calls a drill would make, and makes none.

    ``responses`` maps ``"service.Operation"`` (``"ecs.ListTasks"``) to the canned answer;
    any other call gets an empty, valid response (``{}``), so list calls find nothing.
    Secrets are recorded as ``"***"`` (:func:`_redact`: passwords, tokens, an SSM
    SecureString's value, URL credentials); names, DNS names and tag values are shown.
    """

    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[DryRunCall] = field(default_factory=list)

    def render(self) -> list[str]:
        """Printable lines, one per call: ``dry-run ecs StopTask (ap-northeast-1) cluster=...``."""
        lines = []
        for call in self.calls:
            args = " ".join(f"{k}={_show(v)}" for k, v in call["params"].items())
            lines.append(
                f"dry-run {call['service']} {call['operation']} ({call['region']}) {args}".rstrip()
            )
        return lines

    def _answer(self, service: str, operation: str, region: str, params: dict) -> dict:
        self.calls.append(
            DryRunCall(service=service, operation=operation, region=region, params=_redact(params))
        )
        return copy.deepcopy(self.responses.get(f"{service}.{operation}", {}))


def client(
    service: str,
    target: Target,
    *,
    region: str | None = None,
    dry_run: DryRun | None = None,
) -> BaseClient:
    """A botocore client for ``service`` in the target's account.

    :param service: boto3 service name: ``"ecs"``, ``"rds"``, ``"elasticache"``, ...
    :param target: an ``aws`` target; reads ``aws.region``, ``aws.profile``,
        ``aws.role_arn``, ``aws.endpoint_url`` and (optional) ``aws.max_attempts``.
    :param region: overrides ``aws.region`` (for example ``target.get("aws.dr_region")``).
    :param dry_run: when given, nothing is sent: calls are recorded into it and answered
        from it. No credentials are looked up and no role is assumed.
    :raises AwsCallFailed: from any call that fails (and from role assumption).
    :raises ActivityFailed: when no credentials are found or the profile does not exist.
    """
    if target.kind != "aws":
        raise UsageError(f"target {target.name!r} is a {target.kind} target, not an aws one")
    region = str(region or target.require("aws.region"))
    endpoint_url = target.get("aws.endpoint_url") or None
    config = Config(
        retries={
            "mode": "standard",
            "max_attempts": int(target.get("aws.max_attempts", _DEFAULT_MAX_ATTEMPTS)),
        },
        connect_timeout=5,
        user_agent_extra=f"mpac-drill/{__version__}",
    )
    if dry_run is not None:
        # Explicit dummy keys: botocore never walks the credential chain (no IMDS probe).
        session = boto3.session.Session(
            aws_access_key_id="dry-run",
            aws_secret_access_key="dry-run",
            region_name=region,
            botocore_session=_botocore_session(),
        )
    else:
        session = _session(target, region, endpoint_url, config)
    made = session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)
    _install_hooks(made, dry_run)
    return made


def _session(
    target: Target, region: str, endpoint_url: str | None, config: Config
) -> boto3.session.Session:
    """A session with credentials, after assuming ``aws.role_arn`` when it is set."""
    profile = target.get("aws.profile") or None
    where = f"target {target.name} (profile {profile or 'default'})"
    try:
        session = boto3.session.Session(
            profile_name=profile, region_name=region, botocore_session=_botocore_session()
        )
        credentials = session.get_credentials()
    except ProfileNotFound:
        raise ActivityFailed(
            f"AWS profile {profile!r} of target {target.name} is not in the AWS config files"
        ) from None
    except BotoCoreError as exc:
        raise ActivityFailed(f"could not load AWS credentials for {where}: {exc}") from None
    if credentials is None:
        raise ActivityFailed(f"no AWS credentials found for {where}")
    role_arn = target.get("aws.role_arn") or None
    if not role_arn:
        return session
    sts = session.client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
    _install_hooks(sts, None)
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"mpac-drill-{target.name}"[:64])
    creds = assumed["Credentials"]
    logger.debug("assumed role %s for target %s", role_arn, target.name)
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
        botocore_session=_botocore_session(),
    )


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def _botocore_session() -> botocore.session.Session:
    """A fresh botocore session (credentials are looked up anew each time) that shares one
    model loader: parsing botocore's JSON service models costs 0.1-0.3 s of CPU per session,
    holding the GIL, which once starved the observer right after an injection."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        loader = _LOADER
    session = botocore.session.get_session()
    session.register_component("data_loader", loader)
    return session


def _install_hooks(made: BaseClient, dry_run: DryRun | None) -> None:
    """Register the error-conversion (and dry-run) handlers on one client."""
    service = made.meta.service_model.service_name
    region = made.meta.region_name

    def remember(params: dict, model: Any, context: dict, **_: Any) -> None:
        context[_CONTEXT_KEY] = {"operation": model.name, "params": dict(params)}

    def on_response(http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        if http_response.status_code < 300:
            return
        error = parsed.get("Error", {})
        code = context.get("error_code_override") or error.get("Code") or "Error"
        detail = f"{code}: {error.get('Message') or http_response.status_code}"
        raise _failure(service, model.name, region, context, code, detail)

    def on_error(exception: Exception, context: dict, event_name: str, **_: Any) -> None:
        if isinstance(exception, BotoCoreError):  # cannot connect, time-outs, no credentials
            code = type(exception).__name__
            raise _failure(
                service,
                event_name.rsplit(".", 1)[-1],
                region,
                context,
                code,
                f"{code}: {exception}",
            ) from exception

    events = made.meta.events
    events.register("before-parameter-build", remember)
    if dry_run is not None:
        recorder = dry_run

        def answer(model: Any, context: dict, **_: Any) -> tuple[AWSResponse, dict]:
            params = context.get(_CONTEXT_KEY, {}).get("params", {})
            return AWSResponse(None, 200, {}, None), recorder._answer(
                service, model.name, region, params
            )

        # First in line: nothing after it (signing, sending) runs for this call.
        events.register_first("before-call", answer)
    events.register("after-call", on_response)
    events.register("after-call-error", on_error)


def _failure(
    service: str, operation: str, region: str, context: dict, code: str, detail: str
) -> AwsCallFailed:
    resource = resource_of(context.get(_CONTEXT_KEY, {}).get("params", {}))
    message = " ".join(f"{service} {operation} on {resource} in {region} failed: {detail}".split())
    return AwsCallFailed(
        message, service=service, operation=operation, region=region, resource=resource, code=code
    )


def resource_of(params: dict[str, Any]) -> str:
    """``cluster=c service=s``: the identifying parameters of a call, for messages."""
    parts = []
    for key, value in params.items():
        if key in _RESOURCE_KEYS or key.endswith(_RESOURCE_SUFFIXES):
            if isinstance(value, list | tuple):
                shown = ",".join(str(v) for v in value[:3])
                value = shown + (f",+{len(value) - 3} more" if len(value) > 3 else "")
            parts.append(f"{key}={value}")
    return " ".join(parts) or "(no resource)"


def _redact(value: Any, key: str = "", *, secure_value: bool = False) -> Any:
    """A call's parameters with what is secret masked: secret-named keys (passwords, secret
    keys, auth and session tokens), an SSM SecureString's ``Value``, and the password inside
    any ``scheme://user:password@host`` string. Everything else is shown as sent: DNS names,
    tag values, identifiers, a plain String parameter (its URL credentials scrubbed)."""
    if key in _SECRET_KEYS or key.endswith(("Password", "AuthToken", "SecretToken")):
        return "***"
    if key == "Value" and secure_value:
        return "***"
    if isinstance(value, dict):
        secure = value.get("Type") == "SecureString"
        return {k: _redact(v, k, secure_value=secure) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\1***@", value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, str) and value and " " not in value:
        return value
    return json.dumps(value, default=str, sort_keys=True)


def dry_note(dry_run: DryRun | None) -> str:
    """`` [dry-run]`` for a log line about a call that is only recorded, else nothing."""
    return " [dry-run]" if dry_run is not None else ""


__all__ = ["client", "DryRun", "DryRunCall", "AwsCallFailed", "dry_note", "resource_of"]
