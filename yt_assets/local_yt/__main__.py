"""``python -m yt_assets.local_yt serve [--root DIR] [--port N]``: run a local YT in the foreground.

Prints the proxy URL once the server listens (``yt --proxy <URL> list /`` works then); stops on
SIGTERM or Ctrl-C. Also ``status`` and ``stop`` for the shared server of a root
(see :func:`yt_assets.local_yt.ensure_local_yt`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .faults import FAULTS_ENV_VAR, parse_rules
from .job_python import JobEnvironment, parse_image_mapping
from .launcher import DEFAULT_ROOT, remember_port, remembered_port, running_server, stop_local_yt


def _write_state_file(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def _serve(args: argparse.Namespace) -> int:
    from .server import LocalYtServer

    faults_text = args.faults if args.faults is not None else os.environ.get(FAULTS_ENV_VAR)
    if faults_text:
        parse_rules(faults_text)  # fail fast on malformed rules
    root = Path(args.root).resolve()
    try:
        job_environment = JobEnvironment(
            docker_images=dict(parse_image_mapping(text) for text in args.docker_image),
            shared=args.shared_job_environment,
        )
    except ValueError as error:
        print(f"local-yt serve: {error}", file=sys.stderr)
        return 2
    server = LocalYtServer(
        root,
        args.port if args.port else remembered_port(root),
        faults=faults_text or None,
        max_parallel_jobs=args.max_parallel_jobs,
        verbose=args.verbose,
        fallback_to_free_port=not args.port,
        job_environment=job_environment,
    )
    remember_port(root, server.port)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    state = {
        "pid": os.getpid(),
        "port": server.port,
        "proxy_url": server.proxy_url,
        "job_environment": job_environment.describe(),
    }
    try:
        if args.state_file:
            _write_state_file(Path(args.state_file), state)
        print(f"Local YT serving {root} at {server.proxy_url}", flush=True)
        print(f"Try: yt --proxy {server.proxy_url} list /", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _status(args: argparse.Namespace) -> int:
    proxy_url = running_server(Path(args.root))
    print(proxy_url or "not running")
    return 0 if proxy_url else 1


def _stop(args: argparse.Namespace) -> int:
    stopped = stop_local_yt(Path(args.root))
    print("stopped" if stopped else "not running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="local-yt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a local YT server in the foreground")
    serve.add_argument("--root", default=str(DEFAULT_ROOT), help="state directory (.yt_local/)")
    serve.add_argument(
        "--port",
        type=int,
        default=0,
        help="port on 127.0.0.1 (0: the one this root used last if free, else a free one)",
    )
    serve.add_argument("--state-file", help="write {pid, port, proxy_url} here once listening")
    serve.add_argument(
        "--faults",
        help=f"fault rules as JSON (default: ${FAULTS_ENV_VAR}); see yt_assets.local_yt.faults",
    )
    serve.add_argument("--max-parallel-jobs", type=int, default=None)
    serve.add_argument(
        "--docker-image",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="run jobs whose spec names docker_image NAME with the virtualenv or interpreter PATH "
        "(repeatable); an unmapped image fails its jobs, as a cluster that cannot pull it",
    )
    serve.add_argument(
        "--shared-job-environment",
        action="store_true",
        help="opt-in, for debugging only: jobs run this server's interpreter and see all of its "
        "packages (by default they run a bare interpreter, as on a YT exec node)",
    )
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    serve.set_defaults(handler=_serve)

    status = commands.add_parser("status", help="print the URL of the shared server of a root")
    status.add_argument("--root", default=str(DEFAULT_ROOT))
    status.set_defaults(handler=_status)

    stop = commands.add_parser("stop", help="stop the shared server of a root")
    stop.add_argument("--root", default=str(DEFAULT_ROOT))
    stop.set_defaults(handler=_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
