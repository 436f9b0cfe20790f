"""The history half of the obs drill on AWS (runbook §1.6): what the S3 buckets held.

Loki and Tempo keep their history in S3, so a redeployed mpac-obs finds it there again.
:func:`snapshot_bucket` lists a bucket before the fault (ListObjectsV2, paginated: key,
size, ETag, LastModified); :func:`verify_history` lists it again after the redeploy and
reads the first byte of each object listed before. Reads only; every call goes through
:func:`mpac_drill.aws.client`, so a :class:`~mpac_drill.aws.DryRun` records them instead.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, TypedDict

from mpac_drill.aws import AwsCallFailed, DryRun, client
from mpac_drill.config import Target
from mpac_drill.timefmt import iso

logger = logging.getLogger("mpac_drill")

_LISTED_LOST = 20  # lost objects named in result.json; the counts cover all of them


class ObjectInfo(TypedDict):
    size: int
    etag: str
    last_modified: str  # ISO 8601, UTC


class BucketSnapshot(TypedDict):
    role: str  # loki, tempo: the key under obs.buckets
    bucket: str
    region: str | None  # GetBucketLocation; None when not known (dry run, no permission)
    taken_at: str
    objects: dict[str, ObjectInfo]  # key -> what was listed


class BucketCheck(TypedDict):
    role: str
    bucket: str
    region: str | None
    objects_before: int
    bytes_before: int
    missing: int
    unreadable: int
    read: int  # objects read back (first byte, or HeadObject when empty)
    changed: int  # still there with another ETag (rewritten)
    compacted: int  # gone, replaced by the store's own compactor (:func:`compacted_by`)
    written_after_fault: int  # new objects: the redeployed stack writes to the same bucket


class LostObject(TypedDict):
    bucket: str
    key: str
    last_modified: str
    reason: str


class CompactedObject(TypedDict):
    bucket: str
    key: str
    evidence: str  # the object that shows the compactor replaced it


class HistoryCheck(TypedDict):
    acked: int
    lost: int
    rpo_s: float
    buckets: list[BucketCheck]
    lost_objects: list[LostObject]
    compacted_objects: list[CompactedObject]


def snapshot_bucket(
    target: Target, role: str, bucket: str, *, dry_run: DryRun | None = None
) -> BucketSnapshot:
    """Every object of ``bucket`` now (ListObjectsV2, paginated): key, size, ETag,
    LastModified. Reads only.

    :param role: the key under ``obs.buckets`` (``loki``, ``tempo``).
    """
    s3 = client("s3", target, dry_run=dry_run)
    region: str | None = None
    try:
        found = s3.get_bucket_location(Bucket=bucket)
        region = None if dry_run else (found.get("LocationConstraint") or "us-east-1")
    except AwsCallFailed as exc:
        logger.warning("s3 GetBucketLocation %s: %s", bucket, exc.code)
    taken_at = iso(datetime.now(UTC)) or ""
    objects = {
        o["Key"]: ObjectInfo(
            size=int(o.get("Size", 0)),
            etag=str(o.get("ETag", "")),
            last_modified=iso(o["LastModified"]) or "",
        )
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    logger.info("s3 %s (%s): %d objects listed before the fault", bucket, role, len(objects))
    return BucketSnapshot(
        role=role, bucket=bucket, region=region, taken_at=taken_at, objects=objects
    )


def verify_history(
    target: Target,
    snapshots: list[BucketSnapshot],
    *,
    fault_utc: datetime,
    read_max: int | None = 1000,
    dry_run: DryRun | None = None,
) -> HistoryCheck:
    """Is every object listed before the fault still listed and readable?

    Lists each bucket again; reads the first byte (GetObject with a Range; HeadObject for
    an empty object) of up to ``read_max`` objects still listed, newest first (``None``:
    every one). Lost = missing + unreadable; ``rpo_s`` = fault time − the oldest lost
    object's LastModified (0 when nothing is lost). Reads only.

    :param fault_utc: the injection instant (the drill's ``injected_utc``).
    :param read_max: how many objects to read back at most, over all buckets.
    """
    s3 = client("s3", target, dry_run=dry_run)
    fault_second = fault_utc.replace(microsecond=0)  # S3 keeps LastModified to the second
    budget = read_max
    checks: list[BucketCheck] = []
    lost: list[LostObject] = []
    compacted: list[CompactedObject] = []
    for snap in snapshots:
        after: dict[str, str] = {}  # key -> ETag, listed now
        new = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=snap["bucket"]):
            for o in page.get("Contents", []):
                after[o["Key"]] = str(o.get("ETag", ""))
                new += o["Key"] not in snap["objects"] and o["LastModified"] >= fault_second
        check = BucketCheck(
            role=snap["role"],
            bucket=snap["bucket"],
            region=snap["region"],
            objects_before=len(snap["objects"]),
            bytes_before=sum(o["size"] for o in snap["objects"].values()),
            missing=0,
            unreadable=0,
            read=0,
            changed=0,
            compacted=0,
            written_after_fault=new,
        )
        newest_first = sorted(
            snap["objects"].items(), key=lambda kv: kv[1]["last_modified"], reverse=True
        )
        for key, info in newest_first:
            if key not in after:
                evidence = compacted_by(key, set(snap["objects"]), set(after))
                if evidence:
                    check["compacted"] += 1
                    compacted.append(
                        CompactedObject(bucket=snap["bucket"], key=key, evidence=evidence)
                    )
                    continue
                check["missing"] += 1
                lost.append(
                    LostObject(
                        bucket=snap["bucket"],
                        key=key,
                        last_modified=info["last_modified"],
                        reason="missing",
                    )
                )
                continue
            check["changed"] += after[key] != info["etag"]
            if budget is not None and budget <= 0:
                continue
            budget = None if budget is None else budget - 1
            check["read"] += 1
            reason = _unreadable(s3, snap["bucket"], key, info["size"])
            if reason:
                check["unreadable"] += 1
                lost.append(
                    LostObject(
                        bucket=snap["bucket"],
                        key=key,
                        last_modified=info["last_modified"],
                        reason=reason,
                    )
                )
        checks.append(check)
    oldest = min(
        (datetime.fromisoformat(x["last_modified"].replace("Z", "+00:00")) for x in lost),
        default=None,
    )
    rpo = 0.0 if oldest is None else round(max(0.0, (fault_utc - oldest).total_seconds()), 3)
    lost.sort(key=lambda x: x["last_modified"])
    return HistoryCheck(
        acked=sum(c["objects_before"] for c in checks),
        lost=len(lost),
        rpo_s=rpo,
        buckets=checks,
        lost_objects=lost[:_LISTED_LOST],
        compacted_objects=sorted(compacted, key=lambda x: x["key"])[:_LISTED_LOST],
    )


def compacted_by(key: str, before: set[str], now: set[str]) -> str:
    """The object showing that ``key``, gone since the snapshot, was replaced by the store's
    own compactor and not lost; ``""`` when nothing does (then it is lost).

    Only two layouts, each with its evidence in the bucket itself:

    - Tempo marks a compacted block by copying its ``meta.json`` to ``meta.compacted.json``
      and deleting the original, then deletes the block's objects once
      ``compacted_block_retention`` has passed: an object of a block that has (or had, at
      the snapshot) a ``meta.compacted.json`` went that way.
    - Loki's compactor merges the index files of a table (``index/<table>/...``) into a new
      one named ``compactor-...`` that it uploads before deleting the sources: an index file
      whose folder holds such an object, new since the snapshot, went that way.

    Chunks and block data are never rewritten by either store, so their absence is a loss.
    """
    folder, _, name = key.rpartition("/")
    if not folder:
        return ""
    marker = f"{folder}/meta.compacted.json"
    if name != "meta.compacted.json" and (marker in now or marker in before):
        return marker
    if "/index/" in f"/{key}":
        successors = sorted(
            k
            for k in now - before
            if k.rpartition("/")[0] == folder and "compactor" in k.rpartition("/")[2]
        )
        if successors:
            return successors[0]
    return ""


def _unreadable(s3: Any, bucket: str, key: str, size: int) -> str:
    """``""`` when the object reads, else the S3 error code (NoSuchKey, AccessDenied,
    InvalidObjectState for an archived object, ...)."""
    try:
        if size > 0:
            s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].read()
        else:
            s3.head_object(Bucket=bucket, Key=key)
    except AwsCallFailed as exc:
        return exc.code
    return ""


__all__ = [
    "ObjectInfo",
    "BucketSnapshot",
    "BucketCheck",
    "LostObject",
    "CompactedObject",
    "HistoryCheck",
    "compacted_by",
    "snapshot_bucket",
    "verify_history",
]
