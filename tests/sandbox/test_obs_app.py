"""The sandbox's mpac-obs answers Grafana's dashboard API, so one check serves both.

The app runs in-process under uvicorn on a loopback port of 26500-26599 (a real server);
the check is :func:`mpac_drill.grafana.check_dashboards`, the one the AWS drill uses.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from mpac_drill.grafana import DASHBOARDS_DIR, check_dashboards, dashboard_files
from mpac_drill.sandbox.obs import create_obs_app
from tests.sandbox.obs_server import free_port, serve

ObsApp = Callable[..., AbstractContextManager[str]]


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def obs_app(tmp_path: Path) -> ObsApp:
    """``with obs_app(dashboards_dir=..., api_token=...) as url``: a served mpac-obs."""

    def make(
        dashboards_dir: Path = DASHBOARDS_DIR, api_token: str | None = None
    ) -> AbstractContextManager[str]:
        app = create_obs_app(
            bucket=tmp_path / "bucket", dashboards_dir=dashboards_dir, api_token=api_token or ""
        )
        return serve(app)

    return make


@pytest.fixture
def edited_dashboards(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the repo's dashboards with one file's JSON changed by ``edit``."""

    def make(uid: str, edit: Callable[[dict], None]) -> Path:
        copy = tmp_path / f"dashboards-{uid}"
        shutil.copytree(DASHBOARDS_DIR, copy)
        for path in copy.glob("*.json"):
            doc = json.loads(path.read_text())
            if doc["uid"] == uid:
                edit(doc)
                path.write_text(json.dumps(doc))
        return copy

    return make


# ---------------------------------------------------------------- Grafana's API shape


def test_dashboard_by_uid_answers_the_file_in_grafanas_shape(obs_app: ObsApp) -> None:
    with obs_app() as url:
        for d in dashboard_files():
            status, body = get(f"{url}/api/dashboards/uid/{d['uid']}")
            assert status == 200
            doc = json.loads((DASHBOARDS_DIR / d["file"]).read_text())
            assert {k: v for k, v in body["dashboard"].items() if k not in ("id", "version")} == {
                k: v for k, v in doc.items() if k not in ("id", "version")
            }
            meta = body["meta"]
            assert meta["provisioned"] is True and meta["provisionedExternalId"] == d["file"]
            assert meta["url"].startswith(f"/d/{d['uid']}/")


def test_dashboard_by_unknown_uid_is_404_dashboard_not_found(obs_app: ObsApp) -> None:
    with obs_app() as url:
        assert get(f"{url}/api/dashboards/uid/no-such-uid") == (
            404,
            {"message": "Dashboard not found"},
        )


def test_search_lists_every_dashboard_by_title_and_filters(obs_app: ObsApp) -> None:
    files = dashboard_files()
    with obs_app() as url:
        status, hits = get(f"{url}/api/search?type=dash-db")
        assert status == 200
        assert [h["uid"] for h in hits] == [
            d["uid"] for d in sorted(files, key=lambda d: d["title"].lower())
        ]
        assert {h["type"] for h in hits} == {"dash-db"}
        one = files[0]
        word = one["title"].split()[-1].lower()
        _, found = get(f"{url}/api/search?type=dash-db&query={word}")
        assert one["uid"] in [h["uid"] for h in found]
        assert all(word in h["title"].lower() for h in found)
        _, by_uid = get(f"{url}/api/search?dashboardUIDs={one['uid']}")
        assert [h["uid"] for h in by_uid] == [one["uid"]]
        assert get(f"{url}/api/search?type=dash-folder") == (200, [])
        _, limited = get(f"{url}/api/search?limit=1")
        assert len(limited) == 1


def test_api_token_required_when_set_other_endpoints_open(obs_app: ObsApp) -> None:
    with obs_app(api_token="tok-3c1f") as url:
        assert get(f"{url}/api/dashboards/uid/drill-overview")[0] == 401
        assert get(f"{url}/api/search", token="wrong")[0] == 401
        assert get(f"{url}/api/dashboards/uid/drill-overview", token="tok-3c1f")[0] == 200
        assert get(f"{url}/dashboards")[0] == 200  # the sandbox's own listing stays
        assert get(f"{url}/health")[0] == 200


# ---------------------------------------------------------------- the shared check


def test_check_dashboards_all_provisioned(obs_app: ObsApp) -> None:
    with obs_app() as url:
        result = check_dashboards(url, timeout_s=5)
    assert result["dashboards_expected"] == len(dashboard_files()) == 3
    assert result["dashboards_provisioned"] == 3 and result["dashboards_missing"] == 0
    assert all(c["provisioned_from_file"] for c in result["dashboards"])


@pytest.mark.parametrize(
    "edit, detail",
    [
        (lambda doc: doc.update(title="Renamed by hand"), "title differs"),
        (lambda doc: doc["panels"].pop(), "panel count differs"),
        (lambda doc: doc.update(uid="drill-overview-v2"), "not found"),
    ],
)
def test_check_dashboards_a_changed_dashboard_counts_as_missing(
    obs_app: ObsApp, edited_dashboards: Callable[..., Path], edit: Callable, detail: str
) -> None:
    with obs_app(dashboards_dir=edited_dashboards("drill-overview", edit)) as url:
        result = check_dashboards(url, dashboard_files(), timeout_s=5)
    assert result["dashboards_missing"] == 1 and result["missing_uids"] == ["drill-overview"]
    (bad,) = [c for c in result["dashboards"] if not c["provisioned"]]
    assert bad["detail"].startswith(detail)


def test_check_dashboards_nobody_listening_counts_all_missing_quickly() -> None:
    sock = free_port()  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        started = time.monotonic()
        result = check_dashboards(url, timeout_s=2)
    finally:
        sock.close()
    assert time.monotonic() - started < 5
    assert result["dashboards_missing"] == 3
    assert {c["detail"] for c in result["dashboards"]} == {"no answer"}


def test_check_dashboards_refused_credentials_fail_without_the_token(obs_app: ObsApp) -> None:
    with obs_app(api_token="tok-3c1f") as url:
        assert check_dashboards(url, token="tok-3c1f")["dashboards_missing"] == 0
        with pytest.raises(ActivityFailed, match="401") as err:
            check_dashboards(url, token="not-the-token")
    assert "not-the-token" not in str(err.value)


# ---------------------------------------------------------------- the sandbox drill path


@pytest.fixture
def sandbox_ctx(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """A drill context on the sandbox target whose mpac-obs is the served app."""
    from types import SimpleNamespace

    from mpac_drill.config import load_catalog, load_target
    from mpac_drill.drill.context import DrillContext

    def make(url: str) -> DrillContext:
        catalog = load_catalog()
        ctx = DrillContext(
            target=load_target("sandbox"),
            scenario=catalog.get("obs-failure"),
            catalog=catalog,
            run_dir=tmp_path / "20261127T000000Z-obs-test",
            users=0,
            load_workers=0,
        )
        ctx._sandbox = SimpleNamespace(endpoints={"services": {"mpac-obs": url}})
        return ctx

    yield make


def test_sandbox_history_counts_lines_lost_from_the_bucket(
    obs_app: ObsApp, sandbox_ctx: Callable[[str], Any], tmp_path: Path
) -> None:
    from mpac_drill.platform.sandbox import obs as backend

    with obs_app() as url:
        ctx = sandbox_ctx(url)
        started = backend.start_history(ctx, interval_s=0.02)
        time.sleep(0.5)
        # the pusher stopped first: a line appended while the test rewrites the file would
        # be lost too (measure_history stops it again, a no-op)
        history = ctx.handles.obs_history
        history.stop()
        stream = tmp_path / "bucket" / f"{started['stream']}.jsonl"
        lines = stream.read_text().splitlines()
        stream.write_text("\n".join(lines[2:]) + "\n")  # the bucket lost the first two
        obs = backend.measure_history(ctx)
    assert obs["history_lines_acked"] > 10
    assert obs["history_lines_lost"] == 2 == ctx.measurements["lost_writes"]
    assert ctx.measurements["rpo_s"] > 0
    assert obs["dashboards_missing"] == 0 and obs["dashboards_expected"] == 3
    assert ctx.record.obs is obs
