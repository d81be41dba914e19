"""A built wheel of yt-assets and a fresh virtual environment with it installed, as a user gets it.

Session fixtures (import them into a test module or a conftest):

- ``built_wheel``: ``pip wheel --no-deps`` of the checkout into a temporary directory (built once
  per session), the path of the ``.whl``.
- ``wheel_venv``: a new ``venv`` with that wheel installed (not editable, so only what the wheel
  ships is importable), and the extras in ``request.param`` (a tuple; default none); returns the
  environment's ``bin`` directory. Parametrise indirectly for extras::

      @pytest.mark.parametrize("wheel_venv", [("demo",)], indirect=True)
      def test_x(wheel_venv: Path) -> None:
          subprocess.run([wheel_venv / "yt-assets", "demo", ...], check=True)

The install uses uv (``uv pip install``, a dev dependency) and its cache (``~/.cache/uv``): after
the first run it links cached wheels and fetches nothing; without uv it falls back to pip.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 900


def _uv() -> str | None:
    """The ``uv`` binary of the ``uv`` package (a dev dependency), if installed."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    return str(find_uv_bin())


def build_wheel(destination: Path) -> Path:
    """The wheel of the checkout, built into ``destination`` (``uv build``, else ``pip wheel``)."""
    destination.mkdir(parents=True, exist_ok=True)
    uv = _uv()
    command = (
        [uv, "build", "--quiet", "--wheel", "--out-dir", str(destination), str(CHECKOUT)]
        if uv
        else [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(destination),
            str(CHECKOUT),
        ]
    )
    subprocess.run(command, check=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    wheels = sorted(destination.glob("yt_assets-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install_wheel(bin_dir: Path, wheel: Path, extras: Sequence[str] = ()) -> None:
    """Install the wheel (with ``extras``) and its dependencies into the environment of
    ``bin_dir``: ``uv pip install`` (about 10 s from uv's cache, 35 s cold, where pip took
    minutes: pip's HTTP cache is not filled on this machine), else ``pip --python``."""
    requirement = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    python = str(bin_dir / "python")
    uv = _uv()
    command = (
        [uv, "pip", "install", "--quiet", "--python", python, requirement]
        if uv
        else [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", requirement]
    )
    subprocess.run(command, check=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)


def new_venv(directory: Path) -> Path:
    """A fresh virtual environment (without pip) in ``directory``; returns its ``bin`` directory."""
    venv.EnvBuilder(with_pip=False, clear=True).create(directory)
    return directory / "bin"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def wheel_venv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, built_wheel: Path
) -> Path:
    extras: tuple[str, ...] = tuple(getattr(request, "param", ()))
    bin_dir = new_venv(tmp_path_factory.mktemp("wheel_venv") / "venv")
    install_wheel(bin_dir, built_wheel, extras)
    return bin_dir
