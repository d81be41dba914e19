"""Which ``python`` a job of the local YT runs: a bare interpreter, as on a YT exec node.

By default a job's ``python``/``python3``/``python3.X`` (first on its ``PATH``) is a virtual
environment of the server's base interpreter without any packages (``<operations>/_node_python``):
it sees the standard library and the job's sandbox, nothing of the server's site-packages, and its
``sys.executable`` is that bare interpreter too, so a job's subprocesses stay bare. Whatever a job
imports beyond the standard library must travel with the operation, as on a cluster whose nodes
have only a bare ``python3``.

A spec's ``docker_image`` selects another interpreter: :class:`JobEnvironment` maps image names
to a virtual environment (a directory with ``bin/python``) or an interpreter on this machine. A
job whose image is not mapped fails the way a cluster reports an image it cannot pull: a YT error
naming the image. ``shared=True`` is the old behaviour, an explicit opt-in for debugging: jobs run
the server's own interpreter and see every package of its environment (Dagster included), which
hides what a real node lacks.

Usage::

    environment = JobEnvironment(docker_images={"registry/app:1": "/opt/venvs/app"})
    pythons = JobPythons(tmp_path / "operations", environment)
    path = pythons.path_variable(None)          # the bare interpreter first
    path = pythons.path_variable("registry/app:1")
"""

from __future__ import annotations

import hashlib
import os
import sys
import venv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jobs import yt_error

NODE_PYTHON_DIR = "_node_python"
IMAGE_SHIMS_DIR = "_images"
SHARED_SHIMS_DIR = "_bin"
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
PULL_IMAGE_ERROR_CODE = 1  # a generic error, as the exec node's image pull failure
PYTHON_NAMES = ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class JobEnvironment:
    """What jobs run with: ``docker_images`` maps an image name to a venv or interpreter path;
    ``shared`` (opt-in, never the default) runs jobs with the server's own environment."""

    docker_images: Mapping[str, str] = field(default_factory=dict)
    shared: bool = False

    def __post_init__(self) -> None:
        for name, target in self.docker_images.items():
            if not name:
                raise ValueError("docker image mapping: empty image name")
            python_of(target)  # fails on a path that is neither a venv nor an interpreter

    def to_arguments(self) -> list[str]:
        """Command line options of ``local-yt serve`` giving this environment."""
        arguments = [
            f"--docker-image={name}={target}" for name, target in self.docker_images.items()
        ]
        return [*arguments, "--shared-job-environment"] if self.shared else arguments

    def describe(self) -> dict[str, Any]:
        return {"docker_images": dict(self.docker_images), "shared": self.shared}


def parse_image_mapping(text: str) -> tuple[str, str]:
    """``NAME=PATH`` -> ``(NAME, PATH)``; the name may hold ``:`` and ``/`` but not ``=``."""
    name, separator, target = text.partition("=")
    if not separator or not name or not target:
        raise ValueError(f"docker image mapping {text!r}: expected NAME=PATH")
    # absolute(), not resolve(): a venv's bin/python is a symlink to the base interpreter.
    return name, str(Path(target).expanduser().absolute())


def python_of(target: str | Path) -> Path:
    """The interpreter of a venv directory (``bin/python``) or an interpreter file itself."""
    path = Path(target)
    if path.is_dir():
        python = path / "bin" / "python"
        if not os.access(python, os.X_OK):
            raise ValueError(f"docker image mapping: {path} has no bin/python")
        return python
    if path.is_file() and os.access(path, os.X_OK):
        return path
    raise ValueError(f"docker image mapping: {path} is neither a virtualenv nor an interpreter")


def missing_image_error(image: str) -> dict[str, Any]:
    """The job error of an image the node cannot provide (a cluster fails to pull it)."""
    return yt_error(
        "Failed to prepare job environment",
        inner_errors=[
            yt_error(
                f'Failed to pull docker image "{image}": no such image on this local YT '
                f"(map it with --docker-image {image}=PATH)",
                code=PULL_IMAGE_ERROR_CODE,
                attributes={"docker_image": image},
            )
        ],
    )


class MissingDockerImage(LookupError):
    """A spec names a ``docker_image`` that is not mapped."""

    def __init__(self, image: str) -> None:
        super().__init__(f"docker image {image!r} is not mapped")
        self.image = image
        self.error = missing_image_error(image)


def _write_shims(directory: Path, interpreter: Path | str) -> Path:
    """``python``, ``python3``, ``python3.X`` in ``directory``, each running ``interpreter``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = f'#!/bin/sh\nexec "{interpreter}" "$@"\n'
    for name in PYTHON_NAMES:
        shim = directory / name
        if not shim.exists() or shim.read_text() != script:
            temporary = directory / f".{name}.{os.getpid()}.tmp"
            temporary.write_text(script)
            temporary.chmod(0o755)
            os.replace(temporary, shim)
    return directory


def bare_python(directory: Path) -> Path:
    """A package-less venv of the server's base interpreter at ``directory`` (created once)."""
    python = directory / "bin" / "python"
    config = directory / "pyvenv.cfg"
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    marker = f"home = {base.parent}"
    if not (python.exists() and config.exists() and marker in config.read_text()):
        venv.EnvBuilder(clear=True, symlinks=True, with_pip=False).create(directory)
    return directory / "bin"


def _host_path() -> str:
    """The server's ``PATH`` without its own virtual environment's ``bin`` (a node has no such
    directory)."""
    own_bin = str(Path(sys.prefix) / "bin") if sys.prefix != sys.base_prefix else None
    entries = [
        entry
        for entry in os.environ.get("PATH", DEFAULT_PATH).split(os.pathsep)
        if entry and entry != own_bin
    ]
    return os.pathsep.join(entries) or DEFAULT_PATH


class JobPythons:
    """The ``PATH`` of each job: the directory of its ``python`` first, then the host's tools."""

    def __init__(self, operations_dir: Path, environment: JobEnvironment | None = None) -> None:
        self.environment = environment or JobEnvironment()
        self._host_path = _host_path()
        if self.environment.shared:
            self.default_bin = _write_shims(operations_dir / SHARED_SHIMS_DIR, sys.executable)
            self._host_path = os.environ.get("PATH", DEFAULT_PATH)
        else:
            self.default_bin = bare_python(operations_dir / NODE_PYTHON_DIR)
        self._image_bins: dict[str, Path] = {}
        for name, target in self.environment.docker_images.items():
            python = python_of(target)
            if python.parent.name == "bin" and (python.parent.parent / "pyvenv.cfg").exists():
                self._image_bins[name] = python.parent
            else:
                digest = hashlib.sha256(name.encode()).hexdigest()[:16]
                self._image_bins[name] = _write_shims(
                    operations_dir / IMAGE_SHIMS_DIR / digest, python
                )

    def bin_dir(self, docker_image: str | None) -> Path:
        """The directory whose ``python3`` a job of ``docker_image`` runs; raises
        :class:`MissingDockerImage` for an unmapped image."""
        if not docker_image:
            return self.default_bin
        try:
            return self._image_bins[docker_image]
        except KeyError:
            raise MissingDockerImage(docker_image) from None

    def path_variable(self, docker_image: str | None) -> str:
        """The job's ``PATH``."""
        return f"{self.bin_dir(docker_image)}{os.pathsep}{self._host_path}"
