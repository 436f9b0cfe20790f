"""The repo's copy of the result contract (``contract/``) is the shared original."""

from __future__ import annotations

import json

import pytest

from mpac_drill.drill.result import SCHEMA_CANDIDATES


def test_contract_copy_in_the_repo_is_the_shared_original_byte_for_byte():
    shared, copy = SCHEMA_CANDIDATES
    assert copy.is_file(), f"{copy} is missing: copy it from {shared}"
    assert json.loads(copy.read_text())["type"] == "object"
    if not shared.is_file():
        pytest.skip(f"no shared original at {shared} to compare with")
    assert copy.read_bytes() == shared.read_bytes(), f"{copy} differs from {shared}: recopy it"
