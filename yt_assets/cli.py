"""The ``yt-assets`` command: ``yt-assets local-yt serve``, ``yt-assets demo``, ``yt-assets dev``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="yt-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("local-yt", help="the embedded local YT (run 'yt-assets local-yt serve -h')")
    if args[:1] == ["local-yt"]:
        from yt_assets.local_yt.__main__ import main as local_yt_main

        return local_yt_main(args[1:])
    parser.parse_args(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
