"""External ("remote") locust workers: started by the test, as a user would on another
machine, through the line ``mpac-drill load worker-command`` prints; the harness's master
binds where the target says, waits for them, and gets their figures by locust messages."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from mpac_drill.errors import HarnessError
from mpac_drill.load import LoadRunner, summarize
from tests.conftest import run_cli
from tests.test_load_runner import _port, _read


def printed_worker_command(port: int) -> list[str]:
    """The line ``mpac-drill load worker-command`` prints for a master on ``port``."""
    r = run_cli("load", "worker-command", "--set", f"load.master_bind=127.0.0.1:{port}")
    assert r.code == 0, r.err
    line = r.out.strip()
    assert line.startswith("locust --worker -f - ") and f"--master-port {port}" in line
    return shlex.split(line)


def test_external_workers_from_printed_command_both_send_and_are_recorded(
    tmp_path: Path,
    fake_hosts: dict[str, str],
    start_workers,
) -> None:
    port = _port()
    workers = start_workers(printed_worker_command(port), 2)
    out = tmp_path / "run"
    runner = LoadRunner(
        out_dir=out,
        hosts=fake_hosts,
        users=4,
        spawn_rate=10,
        run_time_s=60,
        external_workers=2,
        master_bind=f"127.0.0.1:{port}",
        workers_wait_s=30,
    )
    runner.start()
    try:
        assert len(runner.pids) == 1  # only the master is the harness's
        time.sleep(4)
    finally:
        runner.stop()
    assert all(w.wait(15) is not None for w in workers), "workers outlived their master"
    seconds = sorted((out / "locust").glob("seconds-*.csv"))
    cpu = sorted((out / "locust").glob("cpu-*.csv"))
    assert len(seconds) == 2, seconds  # one file per remote worker, written by the master
    assert len(cpu) == 3, cpu  # the master's own and each worker's
    roles = {row["role"].split(" ")[0] for path in cpu for row in _read(path)}
    assert roles == {"master", "worker"}
    assert summarize(out)["requests"] > 20
    assert not list((tmp_path / "worker-machine-0").glob("seconds-*.csv"))


def test_external_workers_missing_fail_start_in_one_line(
    tmp_path: Path,
    fake_hosts: dict[str, str],
) -> None:
    port = _port()
    runner = LoadRunner(
        out_dir=tmp_path,
        hosts=fake_hosts,
        users=2,
        spawn_rate=10,
        run_time_s=60,
        external_workers=2,
        master_bind=f"127.0.0.1:{port}",
        workers_wait_s=2,
    )
    started = time.monotonic()
    with pytest.raises(HarnessError) as err:
        runner.start()
    assert time.monotonic() - started < 20
    msg = str(err.value)
    assert "\n" not in msg and "2 external locust worker(s)" in msg and "0 connected" in msg
    assert not runner.running


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        (["load.rps=-5"], "load.rps must be > 0"),
        (["load.rps=abc"], "load.rps must be a number"),
        (["load.rps=20", "load.mix.portal=-1"], "shares >= 0"),
    ],
)
def test_bad_rate_is_refused_in_one_line_exit_2_before_anything_runs(
    sets: list[str], says: str, tmp_path: Path
) -> None:

    args = [a for s in sets for a in ("--set", s)]
    r = run_cli("run", "ecs-task-failure", *args, "--runs-dir", str(tmp_path / "runs"))
    assert r.code == 2, r.err
    assert says in r.err and r.err.strip().count("\n") == 0 and "Traceback" not in r.err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
