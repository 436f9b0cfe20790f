"""Loaders of targets, the catalog and ``--set``: any input loads or is a one-line
``UsageError``, never another exception; valid inputs round-trip."""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mpac_drill import CATALOG_PATH
from mpac_drill import TARGETS_DIR as TARGETS
from mpac_drill.config import (
    Catalog,
    Target,
    apply_overrides,
    load_catalog,
    load_target,
    parse_quarter,
    parse_set,
)
from mpac_drill.errors import UsageError

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _loads_or_usage_error(load: Callable[[], Any]) -> Any:
    """``load()``'s value, or ``None`` after a one-line ``UsageError``; anything else fails."""
    try:
        return load()
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for generated files (hypothesis reruns a test body: no function fixture)."""
    return tmp_path_factory.mktemp("config")


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def _numeric_keys(target: str) -> list[tuple[str, Any]]:
    return [
        (k, v)
        for k, v in _leaves(load_target(target).settings)
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]


# ---------------------------------------------------------------- strategies

KEY_PART = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
DOTTED = st.lists(KEY_PART, min_size=1, max_size=4).map(".".join)
LINE_TEXT = st.text(
    st.characters(exclude_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=6
)  # no line break: keys a message may quote verbatim
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-13-45", "0123", "1:30", "yes", "~"])
)
SETTING_KEYS = st.sampled_from(
    [
        "name",
        "kind",
        "environment",
        "rds",
        "failover_delay_s",
        "down_after_ms",
        "state_dir",
        "aws",
        "region",
        "drill",
    ]
) | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SETTING_KEYS, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def target_documents(draw: st.DrawFn) -> Any:
    """A target file's content: mostly mappings close to a real target, sometimes anything."""
    if draw(st.integers(0, 9)) == 0:
        return draw(VALUES)
    doc = draw(st.dictionaries(SETTING_KEYS, VALUES, max_size=5))
    for key, choices in (
        ("name", st.text(max_size=8) | SCALARS),
        ("kind", st.sampled_from(["sandbox", "aws", "cloud"]) | SCALARS),
        ("environment", st.sampled_from(["sandbox", "staging", "production", "prod"]) | SCALARS),
    ):
        if draw(st.integers(0, 9)) > 0:
            doc[key] = draw(choices)
    return doc


DURATIONS = st.none() | st.floats(0, 1e6) | st.integers(0, 10**6)
BAD_DURATIONS = (
    st.floats(max_value=-1e-9)
    | st.integers(max_value=-1)
    | st.booleans()
    | st.just(math.nan)
    | st.just(math.inf)
    | st.text(max_size=5)
)
SCENARIO_IDS = st.sampled_from(["ecs-task-failure", "rds-failover", "redis-failover", "x", ""])


@st.composite
def catalog_rows(draw: st.DrawFn) -> Any:
    row: dict[str, Any] = {
        "id": draw(SCENARIO_IDS),
        "runbook_section": draw(st.sampled_from(["1.1", "2.3", 1.2])),
        "system": "mpac-smartpos",
        "title": draw(st.text(max_size=10)),
        "fault": "stop tasks",
        "recovery": "health green",
        "rto_s": draw(DURATIONS | BAD_DURATIONS),
        "rpo_s": draw(DURATIONS | BAD_DURATIONS),
        "gate": draw(st.booleans()),
        "experiment": draw(st.none() | st.just("ecs-task-failure.yaml")),
        "targets": draw(
            st.dictionaries(
                st.sampled_from(["duplicate_orders", "x_s"]), DURATIONS | BAD_DURATIONS, max_size=2
            )
            | VALUES
        ),
    }
    for key in draw(st.sets(st.sampled_from(sorted(row)), max_size=2)):
        del row[key]
    return draw(st.just(row) | VALUES) if draw(st.integers(0, 9)) == 0 else row


@st.composite
def catalog_documents(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {"scenarios": draw(st.lists(catalog_rows(), max_size=4))}
    schedule_entry = st.just("all") | st.just([]) | st.lists(SCENARIO_IDS, max_size=3) | VALUES
    if draw(st.booleans()):
        doc["schedule"] = {
            q: draw(schedule_entry) for q in ("Q1", "Q2", "Q3", "Q4") if draw(st.integers(0, 9)) > 0
        }
    if draw(st.booleans()):
        doc["global"] = draw(
            st.fixed_dictionaries(
                {},
                optional={"rto_s": DURATIONS | BAD_DURATIONS, "rpo_s": DURATIONS | BAD_DURATIONS},
            )
            | VALUES
        )
    if draw(st.integers(0, 9)) == 0:
        doc = (
            draw(st.sampled_from([doc, doc["scenarios"]])) if draw(st.booleans()) else draw(VALUES)
        )
    return doc


# ---------------------------------------------------------------- --set


@FAST
@given(st.text(max_size=40) | st.from_regex(r"[A-Za-z_.\w-]{0,12}=.{0,20}", fullmatch=True))
def test_parse_set_any_text_pair_or_usage_error(expr: str) -> None:
    parsed = _loads_or_usage_error(lambda: parse_set(expr))
    if parsed is not None:
        key, _ = parsed
        assert expr.startswith(f"{key}=")


@FAST
@given(DOTTED, st.text(max_size=20))
def test_parse_set_well_formed_key_always_parsed(key: str, value: str) -> None:
    assert parse_set(f"{key}={value}")[0] == key


@FAST
@given(st.data())
def test_set_existing_numeric_key_takes_value(data: st.DataObject) -> None:
    key, old = data.draw(st.sampled_from(_numeric_keys("sandbox")), label="key")
    duration = key.endswith(("_s", "_ms"))
    if isinstance(old, float) or duration:
        value: float = data.draw(
            st.floats(0 if duration else None, 1e9, allow_nan=False, allow_infinity=False),
            label="value",
        )
    else:
        value = data.draw(st.integers(-(10**9), 10**9), label="value")
    text = data.draw(st.sampled_from([repr(value), f" {value!r} ", f"{value:e}"]), label="text")
    target = load_target("sandbox", [f"{key}={text}"])
    assert target.get(key) == pytest.approx(value, rel=1e-6)
    assert target.overrides == {key: target.get(key)}


@FAST
@given(
    st.sampled_from(["ecs.cluster", "aws.region", "rds.smartpos.identifier"]),
    st.sampled_from(
        [
            "012345670123",
            "0123",
            "1:30",
            "1_000",
            "yes",
            "off",
            "12",
            "1e3",
            "0x1F",
            "2.50",
            "222222222222",
        ]
    ),
)
def test_set_string_key_takes_text_as_typed(key: str, text: str) -> None:
    target = load_target("staging", [f"{key}={text}"])
    assert target.get(key) == text
    assert target.overrides[key] == text


@FAST
@given(
    st.lists(
        st.text(max_size=30)
        | st.builds(lambda k, v: f"{k}={v}", DOTTED, st.text(max_size=10) | SCALARS.map(str)),
        max_size=3,
    )
)
def test_load_target_any_sets_target_or_usage_error(sets: list[str]) -> None:
    target = _loads_or_usage_error(lambda: load_target("sandbox", sets))
    assert target is None or isinstance(target, Target)


@FAST
@given(
    st.dictionaries(LINE_TEXT | st.integers(), VALUES, max_size=4),
    st.dictionaries(DOTTED | LINE_TEXT, VALUES, max_size=3),
)
def test_apply_overrides_any_mapping_dict_or_usage_error(
    settings_: dict[Any, Any],
    overrides: dict[str, Any],
) -> None:
    before = yaml.safe_dump(settings_)
    out = _loads_or_usage_error(lambda: apply_overrides(settings_, overrides, "target 't'"))
    assert yaml.safe_dump(settings_) == before, "apply_overrides changed its input"
    if out is not None:
        for key, value in overrides.items():
            got = Target("t", Path("t"), out).get(key)
            assert got == value or isinstance(got, str) or (got != got and value != value)


# ---------------------------------------------------------------- targets


@FAST
@given(target_documents())
def test_load_target_generated_file_target_or_usage_error(scratch: Path, doc: Any) -> None:
    path = scratch / "generated.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    target = _loads_or_usage_error(lambda: load_target(str(path)))
    if target is not None:
        assert target.settings == doc and target.kind in ("sandbox", "aws")


@FAST
@given(st.text(max_size=60) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_load_target_any_text_file_target_or_usage_error(scratch: Path, text: str) -> None:
    path = scratch / "text.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _loads_or_usage_error(lambda: load_target(str(path)))


@FAST
@given(
    st.fixed_dictionaries(
        {
            "name": st.text(string.ascii_lowercase, min_size=1, max_size=8),
            "kind": st.sampled_from(["sandbox", "aws"]),
            "environment": st.sampled_from(["sandbox", "staging", "production"]),
            "rds": st.fixed_dictionaries(
                {
                    "failover_delay_s": DURATIONS,
                    "port": st.integers(1, 65535),
                    "identifier": st.text(max_size=10),
                }
            ),
            "down_after_ms": DURATIONS,
        }
    )
)
def test_load_target_valid_file_round_trips(scratch: Path, doc: dict[str, Any]) -> None:
    path = scratch / "valid.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    target = load_target(str(path))
    assert target.settings == doc and target.name == doc["name"]
    assert target.path == path.resolve() and target.overrides == {}


# ---------------------------------------------------------------- catalog and quarters


@FAST
@given(catalog_documents())
def test_load_catalog_generated_catalog_or_usage_error(scratch: Path, doc: Any) -> None:
    path = scratch / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    catalog = _loads_or_usage_error(lambda: load_catalog(path))
    if catalog is not None:
        assert isinstance(catalog, Catalog)
        assert set(catalog.schedule) == {"Q1", "Q2", "Q3", "Q4"}
        for scenario in catalog.scenarios.values():
            for figure in (scenario.rto_s, scenario.rpo_s):
                assert figure is None or (math.isfinite(figure) and figure >= 0)


def test_load_catalog_shipped_catalog_matches_runbook() -> None:
    catalog = load_catalog(CATALOG_PATH)
    assert catalog.get("rds-failover").rto_s == 300
    assert [s.id for s in catalog.for_quarter("2027-Q1")] == ["region-failover"]
    assert len(catalog.for_quarter("2027-Q4")) == len(catalog.scenarios)
    assert (catalog.global_rto_s, catalog.global_rpo_s) == (14400, 900)


@FAST
@given(
    st.text(max_size=12)
    | st.from_regex(r"\s*\d{1,5}-[Qq]\d\s*", fullmatch=True)
    | st.integers()
    | st.none()
)
def test_parse_quarter_any_input_pair_or_usage_error(quarter: Any) -> None:
    parsed = _loads_or_usage_error(lambda: parse_quarter(quarter))
    if parsed is not None:
        year, q = parsed
        assert 1 <= q <= 4 and 0 <= year <= 9999


@FAST
@given(st.integers(0, 9999), st.integers(1, 4))
def test_parse_quarter_round_trip(year: int, q: int) -> None:
    assert parse_quarter(f"{year:04d}-Q{q}") == (year, q)


# ---------------------------------------------------------------- a table of bad inputs

_TARGET_HEAD = "name: t\nkind: sandbox\nenvironment: sandbox\n"
_ROW = "- {id: a, runbook_section: '1.1', system: s, fault: f, recovery: r, rto_s: %s, rpo_s: 0}\n"
_SCHEDULE = "schedule: {Q1: [], Q2: [], Q3: [], Q4: all}\n"

BAD_SETS = ["", "=1", "noequals", ".a=1", "a..b=1", "a b=1", "1a=2"]
BAD_QUARTERS = ["", "2027Q1", "2027-Q5", "2027-Q0", "27-Q1", "2027-q1", "2027-Q1-x", None, 2027]
BAD_TARGET_NAMES = [
    "",
    "   ",
    "nosuch",
    "no/such.yaml",
    "x" * 300,
    "x" * 300 + ".yaml",
    "a\x00b",
    "../targets",
]
BAD_SET_LISTS = [
    ["nosuch=1"],
    ["rds.nosuch=1"],
    ["rds=1"],
    ["rds.failover_delay_s=-1"],
    ["rds.failover_delay_s=abc"],
    ["rds.failover_delay_s=.nan"],
    ["rds.failover_delay_s=1e999"],
    ["rds.failover_delay_s=2026-13-45"],
    ["rds.synchronous=maybe"],
    ["ecs.tasks_per_service=[1]"],
    ["redis.sentinel_ports=5"],
    ["kind=cloud"],
    ["environment=prod"],
    ["rds.failover_delay_s.x=1"],
    ["rds.failover_delay_s=true"],
]
BAD_TARGET_FILES = [
    "",
    "[]",
    "just text",
    "a: [",
    "name: x\n",
    "name: x\nkind: cloud\nenvironment: sandbox\n",
    "name: x\nkind: aws\nenvironment: prod\n",
    _TARGET_HEAD + "x: 2026-13-45\n",
    _TARGET_HEAD + "x: !!int abc\n",
    _TARGET_HEAD + "x: !!bool maybe\n",
    _TARGET_HEAD + "x: !!python/name:os.system\n",
    _TARGET_HEAD + "rds: {failover_delay_s: -1}\n",
    _TARGET_HEAD + "failover_delay_s: .nan\n",
    _TARGET_HEAD + "down_after_ms: .inf\n",
    _TARGET_HEAD + "delay_s: soon\n",
    _TARGET_HEAD + "delay_s: true\n",
    "[" * 1000,
    _TARGET_HEAD + "? [a]\n: b\n",
]
BAD_CATALOGS = [
    "",
    "scenarios: 3",
    "scenarios: [3]",
    "scenarios: [{id: a}]",
    "- a\n- b\n",
    *("scenarios:\n" + _ROW % bad + _SCHEDULE for bad in ("-1", "fast", ".nan", ".inf", "true")),
    "scenarios: []\nglobal: [1]\n" + _SCHEDULE,
    "scenarios: []\nglobal: {rto_s: -1}\n" + _SCHEDULE,
    "scenarios: []\nglobal: {rpo_s: .nan}\n" + _SCHEDULE,
    "scenarios: []\nschedule: [1]\n",
    "scenarios:\n" + _ROW % "1" + "schedule: {Q1: [{a: 1}], Q2: [], Q3: [], Q4: all}\n",
    "scenarios:\n" + _ROW % "1" + "schedule: {Q1: [b], Q2: [], Q3: [], Q4: all}\n",
    "scenarios:\n" + _ROW % "1" + "schedule: {Q1: [a], Q2: [a], Q3: [a]}\n",
    "scenarios:\n" + _ROW % "1" + "schedule: {Q1: a, Q2: [], Q3: [], Q4: all}\n",
    "scenarios: [{id: 2026-13-45}]",
    "scenarios:\n" + _ROW % "1" + "schedule: 1\n",
    "scenarios:\n" + _ROW.replace("rpo_s: 0", "targets: [1]") % "1" + _SCHEDULE,
    "scenarios:\n" + _ROW.replace("rpo_s: 0", "targets: {dup: -1}") % "1" + _SCHEDULE,
]


@pytest.mark.parametrize("expr", BAD_SETS)
def test_parse_set_bad_input_one_line_usage_error(expr: str) -> None:
    with pytest.raises(UsageError, match=r"^bad --set .*: expected key\.path=value$"):
        parse_set(expr)


@pytest.mark.parametrize("quarter", BAD_QUARTERS)
def test_parse_quarter_bad_input_one_line_usage_error(quarter: Any) -> None:
    with pytest.raises(UsageError, match=r"expected YYYY-QN, for example 2027-Q1$") as err:
        parse_quarter(quarter)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", BAD_TARGET_NAMES)
def test_load_target_bad_name_one_line_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as err:
        load_target(name)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("sets", BAD_SET_LISTS, ids=[s[0] for s in BAD_SET_LISTS])
def test_load_target_bad_set_one_line_usage_error(sets: list[str]) -> None:
    with pytest.raises(UsageError) as err:
        load_target("sandbox", sets)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", BAD_TARGET_FILES, ids=range(len(BAD_TARGET_FILES)))
def test_load_target_bad_file_one_line_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=r"^target file ") as err:
        load_target(str(path))
    assert "\n" not in str(err.value)


def test_load_target_undecodable_or_directory_one_line_usage_error(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp_path / "dir.yaml").mkdir()
    for path in ("latin1.yaml", "dir.yaml"):
        with pytest.raises(UsageError, match="cannot be read|does not exist") as err:
            load_target(str(tmp_path / path))
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", BAD_CATALOGS, ids=range(len(BAD_CATALOGS)))
def test_load_catalog_bad_file_one_line_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=r"^catalog ") as err:
        load_catalog(path)
    assert "\n" not in str(err.value)


def test_load_catalog_missing_file_one_line_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^catalog .* does not exist$"):
        load_catalog(tmp_path / "nope.yaml")


def test_catalog_unknown_scenario_and_bad_quarter_usage_error() -> None:
    catalog = load_catalog()
    with pytest.raises(UsageError, match="unknown scenario 'nope': choose one of"):
        catalog.get("nope")
    with pytest.raises(UsageError, match="bad quarter"):
        catalog.for_quarter("2027-Q9")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("2.5E+1", 25.0), (".5e1", 5.0), ("1.0e+2", 100.0), ("3", 3)],
)
def test_set_numeric_key_scientific_notation_taken_as_number(text: str, value: float) -> None:
    target = load_target("sandbox", [f"rds.failover_delay_s={text}"])
    assert target.get("rds.failover_delay_s") == value


def test_set_quoted_text_stays_text() -> None:
    assert parse_set('ecs.cluster="1e3"') == ("ecs.cluster", "1e3")
    assert load_target("staging", ['ecs.cluster="0123"']).get("ecs.cluster") == "0123"


@given(st.floats(allow_nan=False))
@settings(max_examples=30, deadline=None)
def test_set_negative_duration_refused(value: float) -> None:
    assume(value < 0)
    with pytest.raises(UsageError, match="rds.failover_delay_s"):
        load_target("sandbox", [f"rds.failover_delay_s={value!r}"])


def test_port_block_moves_the_default_sandbox_only(monkeypatch, tmp_path):
    """MPAC_DRILL_SANDBOX_PORT_BLOCK moves the shipped sandbox (and copies of it) to a block
    of ports and a state folder of its own; a sandbox already on other ports stays."""
    from mpac_drill.config import PORT_BLOCK_ENV, load_target
    from mpac_drill.sandbox.control import port_settings

    default = {p for _, p in port_settings(load_target("sandbox"))}
    monkeypatch.setenv(PORT_BLOCK_ENV, "7000")
    moved = load_target("sandbox")
    ports = {p for _, p in port_settings(moved)}
    assert all(7000 <= p < 8000 for p in ports) and not ports & default
    assert moved.get("state_dir") == ".sandbox-b7000"
    own = tmp_path / "own.yaml"
    text = (TARGETS / "sandbox.yaml").read_text().replace("15432", "9432")
    own.write_text(text)
    assert load_target(str(own)).get("rds.primary_port") == 9432
    monkeypatch.setenv(PORT_BLOCK_ENV, "7001")
    with pytest.raises(UsageError, match="multiple of 1000"):
        load_target("sandbox")
