"""What a YT operation ships with its Python jobs, so they run on a node with only a bare ``python3``.

``yt.wrapper`` pickles the job and packs the modules it finds in ``sys.modules`` into archives
that the job unpacks into ``./modules``. Left alone it ships either nothing of an installed
project (``ignore_system_modules``) or every module of the driver, Dagster included, without the
package data (``botocore/data``) the job needs. :func:`shipping` sets ``yt.wrapper``'s own pickling
knobs on a client for one operation instead:

- ``module_filter`` selects the project's job code from ``sys.modules``: ``yt_assets.yt_jobs``
  and the modules of the job itself (e.g. a user's ``processor``) with their parent packages and
  the modules of the same top-level package they import (read from their source).
  Nothing else of the driver (Dagster, ``yt_assets.local_yt``, the assets) is shipped.
- ``additional_files_to_archive`` adds the files of the job's third-party distributions as they
  are installed, data included: ``ytsaurus-client`` (the job runner ``yt.wrapper``, minus its CLI,
  admin and CHYT parts) and ``boto3``, with their requirements (botocore, s3transfer, jmespath,
  urllib3, dateutil, six, simplejson, ...). botocore's data is limited to :data:`AWS_SERVICES`.
  ``ytsaurus-yson``'s compiled bindings go too (``yt.wrapper`` drops them on a node of another
  platform, where ``yt.yson`` parses in pure Python).
- With a ``docker_image``, the image provides the third-party packages: only the project's job
  code is shipped.
- ``__main__`` is shipped only when the job is defined in it (see :func:`_main_module_for_jobs`).
- ``python_binary`` checks the node's Python before anything is unpickled: a dill pickle loads
  only in the Python minor version that wrote it, so another version fails the job with an error
  naming both.

The archives are deterministic (``yt.wrapper`` zeroes mtimes) and uploaded through the file cache
by MD5: an unchanged project uploads nothing on its second run.

Usage::

    with shipping(client, mapper, docker_image=None) as shipment:
        operation = client.run_map(mapper, source, destination, sync=False)
    print(shipment.describe())
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.metadata
import re
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

JOB_DISTRIBUTIONS = ("ytsaurus-client", "ytsaurus-yson", "boto3")
"""Third-party distributions the job imports (their requirements follow). ``ytsaurus-yson`` (the
compiled YSON and skiff bindings) is shipped as ``yt.wrapper`` ships it from ``sys.modules``: its
job runner deletes them on a node of another platform
(``pickling/ignore_yson_bindings_for_incompatible_platforms``) and ``yt.yson`` falls back to
pure Python there."""

EXCLUDED_PREFIXES = ("yt/cli/", "yt/admin/", "yt/clickhouse/")
"""Parts of ``ytsaurus-client`` a job never imports."""

AWS_SERVICES = ("s3",)
"""Services whose botocore/boto3 data is shipped (the job only talks to S3)."""

JOB_PACKAGES = ("yt_assets.yt_jobs",)
"""Project packages shipped whole (what of them is imported)."""

_MAIN_LOCK = threading.Lock()
_PARSE_LOCK = threading.Lock()
"""``ast.parse`` one thread at a time: CPython 3.11's AST constructor is not thread-safe (the
steps of a ten-partition backfill in one process failed with "SystemError: AST constructor
recursion depth mismatch" while packing their job code in parallel)."""

VERSION_CHECK = (
    "import sys; expected = {expected!r}; actual = sys.version.split()[0]; "
    '"%d.%d" % sys.version_info[:2] == {minor!r} or sys.exit('
    '"yt-assets job: this node runs Python %s, but the job was pickled by Python %s; '
    'a pickled job loads only in Python {minor} (use a docker_image with Python {minor})" '
    "% (actual, expected)); "
    "sys.argv = sys.argv[1:]; import runpy; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@dataclass(frozen=True)
class JobShipment:
    """The modules and files one operation ships (``files``: ``(absolute path, archive path)``)."""

    modules: frozenset[str]
    files: tuple[tuple[str, str], ...]
    docker_image: str | None

    @property
    def files_size(self) -> int:
        return sum(Path(path).stat().st_size for path, _ in self.files)

    def pickling_config(self) -> dict[str, Any]:
        """The ``pickling`` settings of the operation's client."""
        names = sorted(self.modules)
        expected = sys.version.split()[0]
        minor = f"{sys.version_info.major}.{sys.version_info.minor}"
        check = VERSION_CHECK.format(expected=expected, minor=minor)
        return {
            "ignore_system_modules": False,
            # A string: yt.wrapper evaluates it; the config travels to the job, so a callable
            # would have to be importable there.
            "module_filter": f"lambda module: getattr(module, '__name__', None) in {names!r}",
            "additional_files_to_archive": [list(item) for item in self.files],
            "python_binary": f"python3 -c {shlex.quote(check)}",
            "enable_local_files_usage_in_job": False,
        }

    def describe(self) -> str:
        third_party = (
            f"none (docker_image {self.docker_image!r} provides them)"
            if self.docker_image
            else f"{len(self.files)} files, {self.files_size / 1e6:.1f} MB before compression"
        )
        return f"job code: {len(self.modules)} project modules; third-party: {third_party}"


def plan_shipment(job: Any, *, docker_image: str | None = None) -> JobShipment:
    """What ``job`` (a mapper object or function) needs shipped to run on a bare node."""
    roots = [*_job_modules(job)]
    for name in list(sys.modules):
        if any(name == root or name.startswith(root + ".") for root in JOB_PACKAGES):
            roots.append(name)
    modules = _import_closure(roots)
    modules.discard("__main__")
    files = () if docker_image else third_party_files()
    return JobShipment(modules=frozenset(modules), files=files, docker_image=docker_image)


def _job_modules(job: Any) -> list[str]:
    """The modules a pickled ``job`` refers to by name: its class's or its own, and its
    ``processor``'s (an :class:`~yt_assets.yt_jobs.s3_processing.S3ObjectMapper`)."""
    found = []
    for item in (job, getattr(job, "processor", None)):
        if item is None:
            continue
        module = getattr(item, "__module__", None) or type(item).__module__
        if module and module != "__main__" and module != "builtins":
            found.append(module)
    main = sys.modules.get("__main__")
    package = getattr(main, "__package__", None)
    if package and _refers_to_main(job):
        found.append(package)  # yt.wrapper imports the package of a ``python -m`` main module
    return found


def _import_closure(roots: Iterable[str]) -> set[str]:
    """``roots``, their parent packages and, recursively, the modules of the same top-level
    package that they import, read from their source (``sys.modules`` may lack a lazy import).
    Imports anywhere in a root module count (the job calls its functions); in the modules they
    lead to, only the imports run at import time (a lazy import elsewhere is not the job's)."""
    found: set[str] = set()
    root_names = set(roots)
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found or name == "__main__":
            continue
        found.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:index]) for index in range(1, len(parts)))
        pending.extend(_same_package_imports(name, everywhere=name in root_names))
    return found


def _same_package_imports(name: str, *, everywhere: bool) -> list[str]:
    module = sys.modules.get(name)
    source = getattr(module, "__file__", None)
    if not source or not source.endswith(".py"):
        return []
    top = name.split(".")[0]
    package = name if source.endswith("__init__.py") else name.rpartition(".")[0]
    try:
        text = Path(source).read_text(encoding="utf-8")
        with _PARSE_LOCK:
            tree = ast.parse(text)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    imported: list[str] = []
    for node in ast.walk(tree) if everywhere else _import_time_statements(tree.body):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            imported.append(target)
            # ``from package import module`` imports a submodule when one exists.
            imported.extend(
                f"{target}.{alias.name}"
                for alias in node.names
                if f"{target}.{alias.name}" in sys.modules
            )
    return [
        candidate
        for candidate in imported
        if candidate.split(".")[0] == top and candidate in sys.modules
    ]


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:`` (never true at run time)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module body run when it is imported (into ``if``/``try`` blocks but
    ``if TYPE_CHECKING:``, not into functions or classes)."""
    for node in body:
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.If | ast.Try):
            for block in (node.body, node.orelse, *(h.body for h in getattr(node, "handlers", []))):
                yield from _import_time_statements(block)
            if isinstance(node, ast.Try):
                yield from _import_time_statements(node.finalbody)


@functools.lru_cache(maxsize=1)
def third_party_files() -> tuple[tuple[str, str], ...]:
    """The installed files of :data:`JOB_DISTRIBUTIONS` and their requirements."""
    files: dict[str, str] = {}
    for distribution in _distribution_closure(JOB_DISTRIBUTIONS):
        for entry in distribution.files or []:
            relative = PurePosixPath(str(entry))
            if _ships(relative):
                files[str(relative)] = str(distribution.locate_file(entry))
    return tuple(sorted((path, relative) for relative, path in files.items()))


def _ships(relative: PurePosixPath) -> bool:
    parts = relative.parts
    if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info")):
        return False
    if "__pycache__" in parts or relative.suffix == ".pyc":
        return False
    text = str(relative)
    if text.startswith(EXCLUDED_PREFIXES):
        return False
    if parts[0] in ("botocore", "boto3") and len(parts) > 3 and parts[1] == "data":
        return parts[2] in AWS_SERVICES
    return True


def _distribution_closure(names: Iterable[str]) -> list[importlib.metadata.Distribution]:
    seen: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _canonical(pending.pop())
        if name in seen:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement this environment lacks: the job cannot need it
        seen[name] = distribution
        pending.extend(_requirement_names(distribution.requires or []))
    return list(seen.values())


def _requirement_names(requirements: Iterable[str]) -> Iterator[str]:
    for requirement in requirements:
        specification, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        if marker.strip() and not _marker_holds(marker):
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", specification)
        if match:
            yield match.group(1)


def _marker_holds(marker: str) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:  # then keep it: an installed, unneeded requirement costs only bytes
        return True
    return bool(Marker(marker.strip()).evaluate())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _refers_to_main(job: Any) -> bool:
    """Whether ``job`` or its ``processor`` is defined in ``__main__`` (a user's script)."""
    return any(
        getattr(item, "__module__", None) == "__main__" or type(item).__module__ == "__main__"
        for item in (job, getattr(job, "processor", None))
        if item is not None
    )


@contextlib.contextmanager
def _main_module_for_jobs(job: Any) -> Iterator[None]:
    """Ship the driver's ``__main__`` only when the job refers to it.

    ``yt.wrapper`` copies ``__main__``'s file into the job and executes it there before
    unpickling. For a job defined elsewhere that is at best useless and usually fatal: the entry
    point of a tool (``bin/dagster``, ``pytest``) or a script importing Dagster at its top. While
    the block runs, ``__main__.__file__`` is hidden, so ``yt.wrapper`` ships an empty main module.
    """
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
        if main is None or file is None or _refers_to_main(job):
            yield
            return
        del main.__file__
        try:
            yield
        finally:
            main.__file__ = file


@contextlib.contextmanager
def shipping(client: Any, job: Any, *, docker_image: str | None = None) -> Iterator[JobShipment]:
    """Configure ``client`` to ship what ``job`` needs, for the operations started in the block."""
    shipment = plan_shipment(job, docker_image=docker_image)
    pickling = client.config["pickling"]
    overrides = shipment.pickling_config()
    saved = {key: pickling.get(key) for key in overrides}
    pickling.update(overrides)
    try:
        with _main_module_for_jobs(job):
            yield shipment
    finally:
        pickling.update(saved)
