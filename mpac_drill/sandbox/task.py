"""One "ECS task": a single uvicorn process serving one MPAC service on loopback.

Example::

    MPAC_REDIS_URL=redis://127.0.0.1:6379/0 MPAC_JWT_SECRET=dev \\
        python -m mpac_drill.sandbox.task --service svc-portal --port 18100

Settings come from the ``MPAC_*`` environment variables (see ``AppSettings.from_env``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import uvicorn

from mpac_drill.errors import DrillError, ExitCode
from mpac_drill.sandbox.apps import SERVICES, AppSettings, create_app

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the app and serve it until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m mpac_drill.sandbox.task",
        description="Run one task of an MPAC service (svc-portal, svc-smarttab, pgw, mpac-obs).",
        epilog="example: python -m mpac_drill.sandbox.task --service pgw --port 18102",
    )
    parser.add_argument(
        "--service",
        choices=(*SERVICES, "mpac-obs"),
        default=os.environ.get("MPAC_SERVICE"),
        help="the service to run (default: $MPAC_SERVICE)",
    )
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument(
        "--not-before",
        type=float,
        default=0.0,
        metavar="EPOCH",
        help="boot now, but open the port only at this UNIX time (the ECS "
        "supervisor's task start delay, exact whatever the boot time)",
    )
    args = parser.parse_args(argv)
    if args.service is None:
        parser.error("--service is required (or set MPAC_SERVICE)")
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        if args.service == "mpac-obs":
            from mpac_drill.sandbox.obs import create_obs_app

            app = create_obs_app()
        else:
            app = create_app(args.service, AppSettings.from_env())
    except DrillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    config = uvicorn.Config(
        app,
        host=HOST,
        port=args.port,
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    config.load()  # uvicorn's protocol and loop imports, before the wait, not after it
    wait = args.not_before - time.time()
    if wait > 0:  # imports and app are ready; the "task" starts serving at its start time
        time.sleep(wait)
    uvicorn.Server(config).run()
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
