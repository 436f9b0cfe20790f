"""What production is, decided by facts read from disk, never by a target's labels.

The shipped production target (``experiments/targets/production.yaml``) is the one source:
its ``account_id`` plus its ``production_accounts`` list are the production AWS accounts, and
its hostnames, DNS record and resource names are production's names. Both are read from the
file as it is on disk, so no ``--set`` and no copied target file can change them.

- :func:`is_production` says whether a target acts on production: its ``environment`` says
  so, or its account is a production account (whatever its name or environment says).
- :func:`production_clashes` lists what a non-production target borrows from production
  (an account, a hostname, the DNS record, a resource name): such a target is refused.

Example::

    facts = production_facts()
    if is_production(target, facts):
        ...  # needs --allow-production, a ticket and allow_production: true
    for clash in production_clashes(target, facts):
        print(clash)  # "route53.record api.mpac-cloud.com is production's"
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mpac_drill import TARGETS_DIR
from mpac_drill.config import Target
from mpac_drill.errors import UsageError

#: The shipped production target: the reference of what production is.
PRODUCTION_TARGET = TARGETS_DIR / "production.yaml"
_ACCOUNT_RE = re.compile(r"^\d{12}$")

#: Keys holding URLs: their hostnames must not be production's.
URL_KEYS = ("endpoints.*", "obs.health_url", "obs.grafana_url", "pgw.dr_base_url")
#: Keys holding DNS names: must not be production's.
DNS_KEYS = ("route53.record", "route53.dr_dns_name")
#: Keys holding AWS resource names that identify one resource: must not be production's.
#: (ECS service names such as svc-portal repeat in every cluster, so the cluster decides.)
RESOURCE_KEYS = (
    "ecs.cluster",
    "rds.smartpos.identifier",
    "rds.pgw.identifier",
    "elasticache.replication_group",
    "ssm.*",
    "database.dsn_ssm_parameter",
    "obs.cluster",
    "obs.buckets.*",
    "obs.grafana_token_ssm_parameter",
)


@dataclass(frozen=True)
class ProductionFacts:
    """Production's accounts and names, as the production target file holds them."""

    source: Path
    accounts: frozenset[str]
    hostnames: frozenset[str]
    dns_names: frozenset[str]
    resources: frozenset[str]


def account_text(value: Any) -> str | None:
    """An ``account_id`` as its 12 digits (an unquoted YAML number too), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:012d}"
    if isinstance(value, str) and _ACCOUNT_RE.match(value):
        return value
    return None


def production_facts(path: Path = PRODUCTION_TARGET) -> ProductionFacts:
    """Read production's accounts and names from ``path`` (cached per file state).

    :raises UsageError: the production target is missing or not a mapping: without it the
        harness cannot tell production apart, so it refuses every AWS drill.
    """
    try:
        stat = path.stat()
    except OSError:
        raise UsageError(
            f"the production reference {path} is missing: the harness cannot "
            "tell production apart without it"
        ) from None
    return _read_facts(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_facts(path: str, _mtime_ns: int, _size: int) -> ProductionFacts:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(
            f"the production reference {path} cannot be read: {type(exc).__name__}"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"the production reference {path} must be a YAML mapping")
    accounts = {account_text(data.get("account_id"))}
    listed = data.get("production_accounts") or []
    if not isinstance(listed, list):
        raise UsageError(f"{path}: production_accounts must be a list of 12-digit accounts")
    for value in listed:
        account = account_text(value)
        if account is None:
            raise UsageError(
                f"{path}: production_accounts holds {value!r}, not a quoted 12-digit AWS account"
            )
        accounts.add(account)
    return ProductionFacts(
        source=Path(path),
        accounts=frozenset(a for a in accounts if a),
        hostnames=frozenset(h for _, h in _hostnames(data)),
        dns_names=frozenset(_dns(v) for _, v in _values(data, DNS_KEYS)),
        resources=frozenset(v for _, v in _values(data, RESOURCE_KEYS)),
    )


def is_production(target: Target, facts: ProductionFacts | None = None) -> bool:
    """Whether ``target`` is production: by its environment, or by its account."""
    if target.environment == "production":
        return True
    if target.kind != "aws":
        return False
    facts = facts or production_facts()
    return account_text(target.get("account_id")) in facts.accounts


def production_clashes(target: Target, facts: ProductionFacts | None = None) -> list[str]:
    """What a non-production AWS target borrows from production, one phrase per clash."""
    if target.kind != "aws" or target.environment == "production":
        return []
    facts = facts or production_facts()
    settings = target.settings
    out: list[str] = []
    account = account_text(settings.get("account_id"))
    if account in facts.accounts:
        out.append(f"account_id {account} is a production account")
    for key, host in _hostnames(settings):
        if host in facts.hostnames:
            out.append(f"{key} names production's host {host}")
    for key, value in _values(settings, DNS_KEYS):
        if _dns(value) in facts.dns_names:
            out.append(f"{key} {value} is production's DNS record")
    for key, value in _values(settings, RESOURCE_KEYS):
        if value in facts.resources:
            out.append(f"{key} {value} is production's")
    return out


def _values(settings: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """``(dotted key, value)`` for every non-empty string under ``keys`` (``a.*``: each child)."""
    for pattern in keys:
        head, _, star = pattern.partition(".*")
        node: Any = settings
        for part in head.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if star == "" and pattern.endswith(".*"):
            if isinstance(node, Mapping):
                for name, value in node.items():
                    if isinstance(value, str) and value.strip():
                        yield f"{head}.{name}", value.strip()
        elif isinstance(node, str) and node.strip():
            yield pattern, node.strip()


def _hostnames(settings: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, url in _values(settings, URL_KEYS):
        try:
            host = urlsplit(url if "//" in url else f"//{url}").hostname
        except ValueError:
            host = None
        if host:
            yield key, _dns(host)


def _dns(name: str) -> str:
    return name.strip().rstrip(".").lower()


__all__ = [
    "PRODUCTION_TARGET",
    "ProductionFacts",
    "account_text",
    "is_production",
    "production_clashes",
    "production_facts",
]
