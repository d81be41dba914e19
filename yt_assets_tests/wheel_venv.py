"""A wheel of the project installed, not editable, into a fresh virtual environment.

``wheel_venv`` (session scope) builds a wheel from the checkout's ``pyproject.toml``, ``README.md``
and ``yt_assets/`` (copied to a scratch directory, so the checkout stays clean), creates a fresh
venv from the base interpreter and installs the wheel there with ``pip install`` (dependency
resolution included): ``yt_assets`` then lives under ``.../site-packages/`` as in a Dagster
deployment. ``wheel_venv_factory(extras)`` gives one such venv per set of extras (e.g.
``("demo",)``).

Dependencies are not downloaded: before ``pip install`` runs, the installed distributions of this
test environment that the wheel needs (the closure of its ``Requires-Dist``, extras included) are
linked into the fresh ``site-packages`` (top-level packages and ``.dist-info``), so pip finds
them satisfied. Downloading and installing them from the index took 9 minutes on the CI machine;
linking takes seconds (``WheelVenv.seconds``). A requirement this environment lacks is installed
by pip from the index as usual. ``linked_venv`` makes the same kind of venv with only given
distributions (e.g. an "image" with ``boto3`` and ``ytsaurus-client`` for ``docker_image`` tests).

Example::

    def test_cli(wheel_venv):
        done = wheel_venv.run(["-c", "import yt_assets; print(yt_assets.__file__)"])
        assert "/site-packages/yt_assets/" in done.stdout
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PROJECT = "yt-assets"
WHEEL_SOURCES = ("pyproject.toml", "README.md", "yt_assets")


@dataclass(frozen=True)
class WheelVenv:
    """A fresh venv (``root``) with the project's wheel installed; ``seconds`` is what each
    step took."""

    root: Path
    extras: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return next((self.root / "lib").glob("python3.*")) / "site-packages"

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(self, arguments: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
        """``python <arguments>`` in this venv (text output captured, no check by default)."""
        options.setdefault("capture_output", True)
        options.setdefault("text", True)
        options.setdefault("check", False)
        return subprocess.run([str(self.python), *arguments], **options)


def base_python() -> str:
    """The interpreter this test environment's venv was made from."""
    return str(getattr(sys, "_base_executable", sys.executable))


def build_wheel(out_dir: Path) -> Path:
    """Build the project's wheel from a clean copy of its sources; returns the ``.whl`` path."""
    source = out_dir / "source"
    source.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        path = REPOSITORY / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    # No build isolation: the dev extra provides setuptools and wheel (no index round trip).
    _pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out_dir),
        str(source),
    )
    [wheel] = out_dir.glob("yt_assets-*.whl")
    return wheel


def create_venv(directory: Path) -> WheelVenv:
    """A fresh venv of the base interpreter, without pip (this environment's pip installs into it
    with ``--python``: seeding pip took most of the venv's creation time)."""
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(directory)], check=True)
    return WheelVenv(root=directory)


def link_distributions(venv: WheelVenv, names: Iterable[str]) -> list[str]:
    """Link the installed distributions ``names`` (with their requirement closure) of this
    environment into ``venv``'s site-packages; returns the distributions linked."""
    target = venv.site_packages
    linked = []
    for distribution in requirement_closure(names):
        for top in _top_level_entries(distribution):
            source = Path(str(distribution.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists() and not link.is_symlink():
                link.symlink_to(source)
        linked.append(distribution.metadata["Name"])
    return linked


def install_wheel(venv: WheelVenv, wheel: Path, extras: Sequence[str] = ()) -> None:
    """``pip install <wheel>[extras]`` into ``venv`` (not editable; dependencies resolved)."""
    requirement = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    _pip(sys.executable, "--python", str(venv.python), "install", requirement)


def linked_venv(directory: Path, names: Sequence[str]) -> WheelVenv:
    """A fresh venv holding only the distributions ``names`` (and what they require), linked
    from this environment: e.g. an "image" with boto3 and ytsaurus-client."""
    venv = create_venv(directory)
    link_distributions(venv, names)
    return venv


def wheel_venv_at(directory: Path, wheel: Path, extras: Sequence[str] = ()) -> WheelVenv:
    """A fresh venv at ``directory`` with ``wheel`` installed (see the module docstring)."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    venv = create_venv(directory)
    seconds["create venv"] = time.monotonic() - started
    started = time.monotonic()
    # The project's requirements, never the project itself (here an editable install).
    link_distributions(venv, _requires(PROJECT, extras))
    seconds["link dependencies"] = time.monotonic() - started
    started = time.monotonic()
    install_wheel(venv, wheel, extras)
    seconds["pip install wheel"] = time.monotonic() - started
    return WheelVenv(root=venv.root, extras=tuple(extras), seconds=seconds)


def requirement_closure(names: Iterable[str]) -> Iterator[importlib.metadata.Distribution]:
    """The installed distributions ``names`` and, recursively, their requirements (extras of
    a name given as ``name[extra]`` included)."""
    seen: set[str] = set()
    pending = [_split_extras(name) for name in names]
    while pending:
        name, extras = pending.pop()
        key = _canonical(name)
        if key == PROJECT or (key in seen and not extras):
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # pip installs it from the index
        if key not in seen:
            seen.add(key)
            yield distribution
        pending.extend(_split_extras(spec) for spec in _requires(name, extras))


def _requires(name: str, extras: Sequence[str]) -> list[str]:
    """The requirements of installed ``name`` that apply here (with ``extras``), as names."""
    try:
        requirements = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    from packaging.requirements import Requirement

    found = []
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker
        applies = marker is None or any(
            marker.evaluate({"extra": extra}) for extra in (*extras, "")
        )
        if applies:
            extra = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            found.append(f"{requirement.name}{extra}")
    return found


def _split_extras(spec: str) -> tuple[str, tuple[str, ...]]:
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*", spec)
    if not match:
        return spec, ()
    extras = tuple(part.strip() for part in (match.group(2) or "").split(",") if part.strip())
    return match.group(1), extras


def _top_level_entries(distribution: importlib.metadata.Distribution) -> set[str]:
    entries = set()
    for entry in distribution.files or []:
        parts = Path(str(entry)).parts
        if parts and parts[0] != ".." and parts[0] != "__pycache__":
            entries.add(parts[0])
    return entries


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(python: str, *arguments: str) -> None:
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [python, "-m", "pip", *arguments[:2], "--quiet", *arguments[2:]]
        if arguments[:1] == ("--python",)
        else [python, "-m", "pip", "--quiet", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def wheel_venv_factory(
    project_wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Sequence[str]], WheelVenv]:
    """``factory(extras)``: a fresh venv with the wheel (and ``extras``) installed, one per set of
    extras for the session."""
    venvs: dict[tuple[str, ...], WheelVenv] = {}

    def factory(extras: Sequence[str] = ()) -> WheelVenv:
        key = tuple(sorted(extras))
        if key not in venvs:
            directory = tmp_path_factory.mktemp("wheel_venv_" + ("_".join(key) or "plain"))
            venvs[key] = wheel_venv_at(directory / "venv", project_wheel, key)
        return venvs[key]

    return factory


@pytest.fixture(scope="session")
def wheel_venv(wheel_venv_factory: Callable[[Sequence[str]], WheelVenv]) -> WheelVenv:
    """A fresh venv with the project's wheel installed (no extras)."""
    return wheel_venv_factory(())
