"""Column names of the report's tidy frames, in one place.

``RUNS``: one row per run folder whose ``result.json`` is usable (every quarter).
``TIMELINE``: one row per observer sample of the charted runs (``timeline.csv``).
``LOAD``: one row per second of locust traffic of the charted runs (``load_per_second.csv``).
``FINDINGS`` / ``STEPS`` / ``MANIFEST``: the nested lists of ``result.json`` and the artifact
hashes, one row per item. Every frame carries ``RUN_ID`` so they join on it.
"""

from __future__ import annotations

# --- runs frame: identity and time
RUN_ID = "run_id"
FOLDER = "folder"
SCENARIO = "scenario"
SECTION = "runbook_section"
TARGET = "target"
STATUS = "status"
REASON = "reason"
STARTED = "started_at"
ENDED = "ended_at"
INJECTED = "injected_at"
QUARTER = "quarter"  # the quarter a run counts in (judge_runs)
RUN_FOR = "run_for"  # result.json ``quarter``: the quarter it was run for ("" when absent)

# --- runs frame: measurements (result.json ``measurements``)
DETECT = "detect_s"
RTO = "rto_s"
RPO = "rpo_s"
ACKED = "acked_writes"
LOST = "lost_writes"
REQUESTS = "requests"
FAILURES = "failures"
P95 = "p95_ms"
PASSED = "passed"  # the run's own overall verdict, as recorded
SCHEMA_VERSION = "schema_version"
RECORDED_OUTCOME = "recorded_outcome"  # schema 2 ``outcome`` as recorded; "" for schema 1
#: schema 2: the inconclusive verdicts, a tuple of ``(metric, reason)`` (empty when none)
INCONCLUSIVE_VERDICTS = "inconclusive_verdicts"

# --- runs frame: the fault's effect (schema 2 ``fault.effect``)
EFFECT_VERIFIED = "effect_verified"  # True, False, or NA when not recorded
EFFECT_EVIDENCE = "effect_evidence"

# --- runs frame: Redis impact checks (result.json ``impact``)
REVOKED_S = "revoked_token_accepted_s"
TOKEN_LIFETIME_S = "token_lifetime_s"
DUPLICATES = "duplicate_orders"
BYPASSED = "rate_limit_bypassed"

# --- runs frame: provenance (result.json ``harness``) and evidence
USER = "user"
HOST = "host"
VERSION = "harness_version"
COMMIT = "git_commit"
RESULT_SHA = "result_sha256"
MISSING = "missing_artifacts"  # ";"-joined artifact names that result.json names but are absent
FINDING_IDS = "findings"  # ";"-joined finding ids the run reported
HAS_STEPS = "has_steps"
TIMELINE_FILE = "timeline_file"  # path inside the folder, "" when absent
LOAD_FILE = "load_file"

# --- runs frame: judged against the catalog (added by metrics.judge_runs)
RTO_TARGET = "rto_target_s"
RPO_TARGET = "rpo_target_s"
RTO_MARGIN = "rto_margin_s"
RPO_MARGIN = "rpo_margin_s"
RTO_OK = "rto_ok"
RPO_OK = "rpo_ok"
JUDGED = "judged"  # completed runs are judged; aborted and failed runs are listed, not judged
RTO_INCONCLUSIVE = "rto_inconclusive"  # the run's RTO verdict is inconclusive: neither met
RPO_INCONCLUSIVE = "rpo_inconclusive"  # nor missed, and in no RTO/RPO figure
OUTCOME = "outcome"  # the run as the report counts it: met, missed, inconclusive, not judged
OUTCOME_REASON = "outcome_reason"  # why a run is inconclusive or not judged

# --- timeline frame (timeline.csv)
T_REL = "t_rel_s"
SERVICE = "service"
OK = "ok"
HTTP_STATUS = "status"
LATENCY = "latency_ms"
TIMELINE_COLUMNS = (T_REL, SERVICE, OK, HTTP_STATUS, LATENCY)

# --- load frame (load_per_second.csv, "Aggregated" rows)
T_UTC = "t_utc"
NAME = "name"
LOAD_COLUMNS = (T_UTC, NAME, REQUESTS, FAILURES, P95)

# --- findings frame (result.json ``findings``)
FINDING_ID = "id"
FINDING_SECTION = "section"
SUMMARY = "summary"
EVIDENCE = "evidence"

# --- steps frame (result.json ``steps``)
STEP = "name"
STEP_START = "step_started_at"
STEP_OFFSET = "offset_s"  # seconds from the run's start
DURATION = "duration_s"
STEP_OK = "ok"
DETAIL = "detail"

# --- clean-up frame (result.json ``cleanup``)
WHAT = "what"
RESOURCE = "resource"
REGION = "region"
CLEANUP_OUTCOME = "cleanup_outcome"

# --- manifest frame
PATH = "path"
BYTES = "bytes"
SHA256 = "sha256"

# --- scenario summary frame (metrics.scenario_summary)
TITLE = "title"
SCHEDULED = "scheduled"
N_RUNS = "runs"
N_COMPLETED = "completed"
RTO_MEDIAN = "rto_median_s"
RTO_WORST = "rto_worst_s"
RPO_WORST = "rpo_worst_s"
LOST_TOTAL = "lost_writes_total"
ACKED_TOTAL = "acked_writes_total"
VERDICT = "verdict"
N_INCONCLUSIVE = "inconclusive_runs"
TARGETS = "targets"  # the targets (sandbox, AWS ...) a row's runs were on, comma-joined
NOT_RUN_REASON = "not_run_reason"
GLOBAL_OK = "within_runbook_objectives"

# --- violations frame (metrics.violations)
KIND = "kind"
FOLLOW_UP = "follow_up"

# verdict words used in tables and in ReportOutcome
MET = "met"
MISSED = "missed"
INCONCLUSIVE = "inconclusive"
NOT_JUDGED = "not judged"
NOT_COMPLETED = "not completed"
NOT_RUN = "not run"
