"""The drill record: typed sections of result.json, and handles that never reach it."""

from __future__ import annotations

from mpac_drill.measure.record import DrillHandles, DrillRecord


def test_an_empty_record_writes_no_section() -> None:
    assert DrillRecord().result_sections() == {}


def test_recorded_sections_are_written_in_the_contract_order() -> None:
    record = DrillRecord()
    record.cleanup.append({"what": "x", "resource": "r", "outcome": "deleted"})
    record.ground_truth["failover_delay_s"] = 1.0
    record.primary_after = "node-b"  # a finding's evidence, not a section of its own
    out = record.result_sections()
    assert list(out) == ["ground_truth", "cleanup"]
    assert out["cleanup"][0]["outcome"] == "deleted"


def test_handles_are_never_sections() -> None:
    """A DSN with its password lives in the handles, which the result never reads."""
    handles = DrillHandles()
    handles.dr_dsn["pgw"] = "postgresql://u:secret@127.0.0.1/pgw"
    record = DrillRecord()
    assert "secret" not in repr(record.result_sections())
    assert not set(DrillRecord.RESULT_SECTIONS) & set(vars(handles))
