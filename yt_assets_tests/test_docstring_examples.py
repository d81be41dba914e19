"""Every ``Example::`` block of a public docstring in ``yt_assets`` runs, and every ``>>>``
example (doctest) gives what it shows.

A block runs in its module's namespace, in a fresh working directory, with these names given
(the things an example would otherwise have to set up at length):

- ``client`` / ``s3``: a boto3 S3 client of the test S3 server, whose bucket ``my-bucket`` holds
  a few keys (``raw/...``, ``a.jsonl``, ``events/<day>/...``, ``e/1/_SUCCESS``...);
- ``url``: that server's endpoint; ``credentials``: its keys as ``S3Credentials``;
- ``yt_client``: a ``YtClient`` of the test local YT; ``proxy_url``: its proxy address.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yt_assets.yt_jobs.s3_processing import S3Credentials
from yt_assets_tests.conftest import S3TestServer, put_objects

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "yt_assets"
EXAMPLE_BUCKET = "my-bucket"
EXAMPLE_OBJECTS = {
    "raw/2024/a.json": b'{"a": 1}\n',
    "raw/b.json": b'{"b": 2}\n',
    "a.jsonl": b'{"a": 1}\n{"a": 2}\n',
    "events/2026-11-27/_SUCCESS": b"",
    "events/2026-11-28/x.json": b"{}",
    "e/1/_SUCCESS": b"",
    "e/2/x": b"x",
    "r/a/x": b"x",
}


def _public(name: str) -> bool:
    return not name.startswith("_")


def _docstrings(tree: ast.Module) -> Iterator[tuple[str, str]]:
    """(qualified name, docstring) of the module and its public classes, functions and methods."""
    doc = ast.get_docstring(tree)
    if doc:
        yield "<module>", doc

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, str]]:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                if not _public(node.name):
                    continue
                qualified = prefix + node.name
                doc = ast.get_docstring(node)
                if doc:
                    yield qualified, doc
                if isinstance(node, ast.ClassDef):
                    yield from walk(node.body, qualified + ".")

    yield from walk(tree.body, "")


def _example_blocks(doc: str) -> Iterator[str]:
    """The code of each ``Example::`` block (the indented lines after it)."""
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        if not line.rstrip().endswith("Example::") and "Example (" not in line:
            continue
        if not line.rstrip().endswith("::"):
            continue
        block: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith((" ", "\t")):
                break
            block.append(following)
        yield textwrap.dedent("\n".join(block)).strip("\n")


def _collect() -> list[Any]:
    params = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        for qualified, doc in _docstrings(ast.parse(path.read_text())):
            for number, code in enumerate(_example_blocks(doc)):
                params.append(pytest.param(module, code, id=f"{module}:{qualified}:{number}"))
    return params


EXAMPLES = _collect()


def _doctest_modules() -> list[str]:
    """The modules of ``yt_assets`` whose source shows a ``>>>`` example."""
    modules = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if ">>> " in path.read_text():
            parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_doctests_give_what_they_show(module_name: str) -> None:
    module = importlib.import_module(module_name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert tests  # the examples are found
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_examples_are_found() -> None:
    ids = {param.id for param in EXAMPLES}
    assert "yt_assets.io_manager:YTTableIOManager:0" in ids
    assert len(EXAMPLES) >= 40


@pytest.fixture(scope="module")
def example_bucket(s3_server: S3TestServer) -> str:
    client = s3_server.client()
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if EXAMPLE_BUCKET not in existing:
        client.create_bucket(Bucket=EXAMPLE_BUCKET)
    put_objects(s3_server, EXAMPLE_BUCKET, EXAMPLE_OBJECTS)
    return EXAMPLE_BUCKET


@pytest.mark.parametrize(("module_name", "code"), EXAMPLES)
def test_example_runs(
    module_name: str,
    code: str,
    s3_server: S3TestServer,
    example_bucket: str,
    dagster_local_yt: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    client = s3_server.client()
    namespace = dict(vars(module))
    namespace.update(
        client=client,
        s3=client,
        url=s3_server.endpoint_url,
        credentials=S3Credentials(s3_server.access_key, s3_server.secret_key),
        yt_client=dagster_local_yt.client(),
        proxy_url=dagster_local_yt.proxy_url,
    )
    exec(compile(code, f"<example of {module_name}>", "exec"), namespace)
