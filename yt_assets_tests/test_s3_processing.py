"""yt_assets.yt_jobs.s3_processing against moto's S3 server (real HTTP)."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yt_assets.yt.operations import JOB_FORMAT
from yt_assets.yt.schemas import PROCESSED_COLUMNS
from yt_assets.yt.shipping import shipping
from yt_assets.yt_jobs import s3_processing
from yt_assets.yt_jobs.s3_processing import (
    JsonRecordCounter,
    MissingCredentialsError,
    S3Credentials,
    S3ObjectError,
    S3ObjectMapper,
    process_object,
    process_rows,
)
from yt_assets_tests.conftest import S3TestServer, put_objects

PROCESSED_NAMES = [column.name for column in PROCESSED_COLUMNS]


def job_client(server: S3TestServer, in_flight: int = 8) -> Any:
    credentials = S3Credentials(server.access_key, server.secret_key)
    return credentials.client(
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        max_pool_connections=in_flight,
    )


def rows_for(bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    return [{"bucket": bucket, "path": key, "extra": 1} for key in keys]


def test_size_sha256_and_lines_match_the_real_bytes(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    bodies = {
        "text.txt": b"one\ntwo\nthree\n",
        "no-final-newline.txt": b"one\ntwo",
        "empty.bin": b"",
        "binary.bin": bytes(range(256)) * 5000 + b"\n\n",
        "crlf.csv": b"a,b\r\n1,2\r\n",
    }
    put_objects(s3_server, s3_bucket, bodies)

    rows = list(process_rows(rows_for(s3_bucket, list(bodies)), job_client(s3_server)))

    assert [row["path"] for row in rows] == list(bodies)
    for row in rows:
        body = bodies[row["path"]]
        assert list(row) == PROCESSED_NAMES
        assert row["bucket"] == s3_bucket
        assert row["size"] == len(body)
        assert row["sha256"] == hashlib.sha256(body).hexdigest()
        assert row["lines"] == body.count(b"\n")
        assert row["records"] is None and row["parse_errors"] is None
        assert row["error"] is None


JSON_CASES: dict[str, tuple[bytes, int, int]] = {
    # key: (body, records, parse_errors)
    "lines.jsonl": (b'{"a": 1}\n{"a": 2}\n\n  \nnot json\n[1, 2]\n"s"\n{"unterminated": \n', 4, 2),
    "no-final-newline.ndjson": (b'{"a": 1}\r\n{"a": 2}', 2, 0),
    "upper.JSONL": (b'{"a": 1}\n', 1, 0),
    "array-one-line.json": (b'[{"a": 1}, {"a": 2}, {"a": 3}]\n', 3, 0),
    "object-one-line.json": (b'{"a": [1, 2, 3]}', 1, 0),
    "pretty-array.json": (b'[\n  {"a": 1},\n  {"a": 2}\n]\n', 2, 0),
    "pretty-object.JSON": (b'{\n  "a": 1,\n  "b": [1, 2]\n}\n', 1, 0),
    "json-lines-in.json": (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', 3, 0),
    "broken.json": (b'{\n  "a": 1,\n', 0, 2),
    "empty.json": (b"", 0, 0),
    "not-utf8.jsonl": (b'{"a": 1}\n"\xff\xfe"\n', 1, 1),
}


def test_json_records_and_parse_errors(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(s3_server, s3_bucket, {key: case[0] for key, case in JSON_CASES.items()})

    rows = list(process_rows(rows_for(s3_bucket, list(JSON_CASES)), job_client(s3_server)))

    counts = {row["path"]: (row["records"], row["parse_errors"]) for row in rows}
    assert counts == {key: (case[1], case[2]) for key, case in JSON_CASES.items()}
    # Only an object none of whose documents parse is in error; partial corruption is counted.
    errors = {row["path"]: row["error"] for row in rows if row["error"] is not None}
    assert list(errors) == ["broken.json"]
    assert errors["broken.json"].startswith("invalid JSON")


def test_json_counting_does_not_depend_on_chunk_boundaries() -> None:
    body = b'{"a": 1}\n\n{"b": "x\\ny"}\nbad\n[1,2]\n'
    expected = process_object(io.BytesIO(body), key="a.jsonl")
    for chunk_size in (1, 2, 3, 7, 64):
        assert process_object(io.BytesIO(body), key="a.jsonl", chunk_size=chunk_size) == expected
    assert (expected["records"], expected["parse_errors"]) == (3, 1)


def test_lines_longer_than_the_limit_are_parse_errors_and_not_buffered() -> None:
    counter = JsonRecordCounter(whole_document=False, max_document_bytes=100)
    counter.feed(b'{"ok": 1}\n{"long": "' + b"x" * 50)
    counter.feed(b"x" * 500)
    assert len(counter._pending) == 0
    counter.feed(b'"}\n{"ok": 2}\n')
    assert counter.finish() == (2, 1)


def test_missing_objects_are_recorded_and_processing_goes_on(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"a.txt": b"a\n", "c.txt": b"c\n"})
    rows = [
        *rows_for(s3_bucket, ["a.txt", "missing.txt", "c.txt"]),
        {"bucket": "no-such-bucket-xyz", "path": "a.txt"},
    ]

    results = list(process_rows(rows, job_client(s3_server), on_error="record"))

    assert [row["path"] for row in results] == ["a.txt", "missing.txt", "c.txt", "a.txt"]
    assert [row["error"] for row in results] == [
        None,
        "NoSuchKey (HTTP 404)",
        None,
        "NoSuchBucket (HTTP 404)",
    ]
    assert list(results[1]) == PROCESSED_NAMES
    assert results[1]["size"] is None and results[1]["sha256"] is None
    assert results[2]["sha256"] == hashlib.sha256(b"c\n").hexdigest()


def test_on_error_fail_raises_naming_bucket_and_key(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"a.txt": b"a", "c.txt": b"c"})
    results = process_rows(
        rows_for(s3_bucket, ["a.txt", "gone/missing.txt", "c.txt"]),
        job_client(s3_server),
        on_error="fail",
    )

    assert next(results)["path"] == "a.txt"
    with pytest.raises(S3ObjectError) as caught:
        next(results)

    assert (caught.value.bucket, caught.value.key) == (s3_bucket, "gone/missing.txt")
    assert f"s3://{s3_bucket}/gone/missing.txt" in str(caught.value)
    assert "NoSuchKey" in str(caught.value)
    assert s3_server.secret_key not in str(caught.value)


def test_order_is_kept_with_8_downloads_in_flight(s3_server: S3TestServer, s3_bucket: str) -> None:
    generator = random.Random(7)
    keys = [f"obj/{index:03d}.bin" for index in range(200)]
    generator.shuffle(keys)
    bodies = {key: os.urandom(generator.choice([0, 10, 1000, 200_000])) for key in keys}
    put_objects(s3_server, s3_bucket, bodies)

    rows = list(
        process_rows(rows_for(s3_bucket, keys), job_client(s3_server), downloads_in_flight=8)
    )

    assert [row["path"] for row in rows] == keys
    assert [row["sha256"] for row in rows] == [hashlib.sha256(bodies[k]).hexdigest() for k in keys]


def test_downloads_really_run_in_parallel_up_to_the_limit(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    keys = [f"p/{index:02d}" for index in range(24)]
    put_objects(s3_server, s3_bucket, dict.fromkeys(keys, b"x"))
    all_eight_started = threading.Barrier(8, timeout=30)
    lock = threading.Lock()
    running = 0
    most_running = 0

    def waiting_processor(body: Any, *, key: str) -> dict[str, Any]:
        nonlocal running, most_running
        with lock:
            running += 1
            most_running = max(most_running, running)
        try:
            if key < "p/08":
                all_eight_started.wait()  # fails (BrokenBarrierError) unless 8 run at once
            return {"bytes": len(body.read())}
        finally:
            with lock:
                running -= 1

    rows = list(
        process_rows(
            rows_for(s3_bucket, keys),
            job_client(s3_server),
            processor=waiting_processor,
            downloads_in_flight=8,
            on_error="fail",
        )
    )

    assert [row["path"] for row in rows] == keys
    assert most_running == 8


def test_custom_processor_and_output_columns(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(s3_server, s3_bucket, {"a": b"12345", "b": b""})

    def count_bytes(body: Any, key: str) -> dict[str, Any]:
        return {"bytes": sum(len(chunk) for chunk in iter(lambda: body.read(2), b""))}

    rows = list(
        process_rows(
            rows_for(s3_bucket, ["a", "b", "zz"]), job_client(s3_server), processor=count_bytes
        )
    )
    assert rows[0] == {"bucket": s3_bucket, "path": "a", "bytes": 5, "error": None}
    assert rows[2] == {"bucket": s3_bucket, "path": "zz", "error": "NoSuchKey (HTTP 404)"}

    projected = list(
        process_rows(
            rows_for(s3_bucket, ["a", "zz"]),
            job_client(s3_server),
            processor=count_bytes,
            output_columns=["path", "bytes", "error"],
        )
    )
    assert projected == [
        {"path": "a", "bytes": 5, "error": None},
        {"path": "zz", "bytes": None, "error": "NoSuchKey (HTTP 404)"},
    ]


def test_processor_exceptions_are_recorded_by_type(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(s3_server, s3_bucket, {"a": b"1"})

    def broken(body: Any, *, key: str) -> dict[str, Any]:
        raise ValueError("cannot handle this")

    [row] = process_rows(rows_for(s3_bucket, ["a"]), job_client(s3_server), processor=broken)
    assert row["error"] == "ValueError: cannot handle this"


def test_invalid_arguments_raise_at_call_time() -> None:
    with pytest.raises(ValueError, match="on_error"):
        process_rows([], None, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="downloads_in_flight"):
        process_rows([], None, downloads_in_flight=0)
    with pytest.raises(ValueError, match="'error' column"):
        process_rows([], None, output_columns=["path"])
    with pytest.raises(ValueError, match="downloads_in_flight"):
        S3ObjectMapper(downloads_in_flight=-1)


def test_rows_without_bucket_or_path_always_raise(s3_server: S3TestServer) -> None:
    with pytest.raises(ValueError, match="'path'"):
        list(process_rows([{"bucket": "b"}], job_client(s3_server), on_error="record"))


def test_a_64_mb_object_is_streamed_in_bounded_memory(
    s3_server_subprocess: S3TestServer,
) -> None:
    server = s3_server_subprocess
    bucket = server.create_bucket("large")
    body = os.urandom(1 << 20) * 64
    server.client().put_object(Bucket=bucket, Key="large.bin", Body=body)
    expected_sha256 = hashlib.sha256(body).hexdigest()
    del body
    client = job_client(server)

    tracemalloc.start()
    try:
        [row] = process_rows([{"bucket": bucket, "path": "large.bin"}], client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert row["error"] is None
    assert (row["size"], row["sha256"]) == (64 << 20, expected_sha256)
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_credentials_come_from_the_secure_vault_and_never_show() -> None:
    environ = {
        "YT_SECURE_VAULT_S3_ACCESS_KEY": "AKIDVAULT",
        "YT_SECURE_VAULT_S3_SECRET_KEY": "vault-secret",
    }
    credentials = S3Credentials.from_secure_vault(environ)

    assert (credentials.access_key, credentials.secret_key) == ("AKIDVAULT", "vault-secret")
    assert "vault-secret" not in repr(credentials) and "AKIDVAULT" not in str(credentials)
    assert credentials.secure_vault() == {
        "S3_ACCESS_KEY": "AKIDVAULT",
        "S3_SECRET_KEY": "vault-secret",
    }

    for missing in environ:
        partial = {name: value for name, value in environ.items() if name != missing}
        with pytest.raises(MissingCredentialsError) as caught:
            S3Credentials.from_secure_vault(partial)
        assert missing in str(caught.value)
        assert "vault-secret" not in str(caught.value) and "AKIDVAULT" not in str(caught.value)


def test_mapper_is_a_yt_aggregator() -> None:
    import yt.wrapper

    assert S3ObjectMapper.attributes == yt.wrapper.aggregator(lambda rows: rows).attributes
    assert S3ObjectMapper().attributes == {"is_aggregator": True}


def test_mapper_survives_yt_dill_pickling_and_runs(
    s3_server: S3TestServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yt.wrapper.pickling import Pickler, Unpickler

    put_objects(s3_server, s3_bucket, {"a.jsonl": b'{"x": 1}\n'})
    mapper = S3ObjectMapper(
        endpoint_url=s3_server.endpoint_url, region_name=s3_server.region, downloads_in_flight=4
    )
    payload = Pickler("dill").dumps(mapper)
    assert s3_server.secret_key.encode() not in payload
    restored = Unpickler("dill").loads(payload)
    assert restored == mapper

    monkeypatch.setenv("YT_SECURE_VAULT_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("YT_SECURE_VAULT_S3_SECRET_KEY", s3_server.secret_key)
    rows = list(restored(rows_for(s3_bucket, ["a.jsonl", "nope"])))

    assert [(row["records"], row["error"]) for row in rows] == [
        (1, None),
        (None, "NoSuchKey (HTTP 404)"),
    ]


def run_command_job(
    server: S3TestServer, rows: list[dict[str, Any]], *options: str, with_keys: bool = True
) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    if with_keys:
        environ["YT_SECURE_VAULT_S3_ACCESS_KEY"] = server.access_key
        environ["YT_SECURE_VAULT_S3_SECRET_KEY"] = server.secret_key
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "yt_assets.yt_jobs.s3_processing",
            "--endpoint-url",
            server.endpoint_url,
            *options,
        ],
        input="".join(json.dumps(row) + "\n" for row in rows),
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def test_command_job_writes_json_rows(s3_server: S3TestServer, s3_bucket: str) -> None:
    put_objects(s3_server, s3_bucket, {"a.txt": b"x\ny\n"})

    done = run_command_job(s3_server, rows_for(s3_bucket, ["a.txt", "b.txt"]))

    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["path"], row["lines"], row["error"]) for row in rows] == [
        ("a.txt", 2, None),
        ("b.txt", None, "NoSuchKey (HTTP 404)"),
    ]
    assert "2 objects, 1 errors" in done.stderr


def test_command_job_fails_naming_the_key_and_never_the_secret(
    s3_server: S3TestServer, s3_bucket: str
) -> None:
    put_objects(s3_server, s3_bucket, {"a.txt": b"x"})

    done = run_command_job(
        s3_server, rows_for(s3_bucket, ["a.txt", "dir/missing.txt"]), "--on-error", "fail"
    )

    assert done.returncode != 0
    assert f"s3://{s3_bucket}/dir/missing.txt" in done.stderr and "NoSuchKey" in done.stderr
    assert s3_server.secret_key not in done.stderr + done.stdout

    without_keys = run_command_job(s3_server, rows_for(s3_bucket, ["a.txt"]), with_keys=False)
    assert without_keys.returncode != 0
    assert "YT_SECURE_VAULT_S3_ACCESS_KEY is not set" in without_keys.stderr


def _imported_modules(source: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_job_code_imports_only_stdlib_and_boto() -> None:
    """The job code and every ``yt_assets`` module it reaches (its closure, shipped along) import
    only the standard library, boto3/botocore (urllib3 is botocore's) and ``yt`` (ytsaurus-client),
    and of ``yt_assets`` only the Dagster-free ``s3``, ``yt`` and ``yt_jobs`` packages."""
    allowed_third_party = {"boto3", "botocore", "urllib3", "yt"}
    allowed_packages = ("yt_assets.s3", "yt_assets.yt", "yt_assets.yt_jobs")
    package_dir = Path(s3_processing.__file__).parents[1]
    pending = [f"yt_assets.yt_jobs.{path.stem}" for path in (package_dir / "yt_jobs").glob("*.py")]
    reached: set[str] = set()
    while pending:
        module = pending.pop()
        if module in reached:
            continue
        reached.add(module)
        parts = module.split(".")[1:]
        source = package_dir.joinpath(*parts).with_suffix(".py")
        if not source.exists():
            source = package_dir.joinpath(*parts, "__init__.py")
        for name in _imported_modules(source):
            top = name.split(".")[0]
            if top == "yt_assets":
                assert name.startswith(allowed_packages), f"{module} imports {name}"
                pending.append(name)
            else:
                assert top in sys.stdlib_module_names or top in allowed_third_party, (
                    f"{module} imports {name}"
                )
    assert "yt_assets.s3.uploads" in reached and "yt_assets.yt_jobs.s3_listing" in reached

    probe = (
        "import sys, yt_assets.yt_jobs.s3_processing;"
        "print(sorted(m for m in sys.modules if m.startswith(('dagster', 'yt_assets'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == str(
        [
            "yt_assets",
            "yt_assets.s3",
            "yt_assets.s3.client",
            "yt_assets.s3.errors",
            "yt_assets.s3.retries",
            "yt_assets.s3.uploads",
            "yt_assets.yt_jobs",
            "yt_assets.yt_jobs.s3_processing",
            "yt_assets.yt_jobs.user_statistics",
        ]
    )


@pytest.fixture(scope="module")
def local_yt_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A client of a local YT server subprocess (one per module)."""
    local_yt_module = pytest.importorskip("yt_assets.local_yt")
    with local_yt_module.LocalYT(root=tmp_path_factory.mktemp("yt")) as server:
        yield server.client()


def test_mapper_runs_as_a_yt_map_over_several_jobs(
    local_yt_client: Any, s3_server: S3TestServer, s3_bucket: str
) -> None:
    bodies = {f"in/{index:02d}.jsonl": b'{"n": 1}\n' * index for index in range(12)}
    put_objects(s3_server, s3_bucket, bodies)
    keys = [*bodies, "in/missing.jsonl"]
    directory = f"//tmp/s3_processing_{uuid.uuid4().hex}"
    local_yt_client.create("map_node", directory, recursive=True)
    local_yt_client.write_table(f"{directory}/listing", rows_for(s3_bucket, keys))
    mapper = S3ObjectMapper(
        endpoint_url=s3_server.endpoint_url, region_name=s3_server.region, downloads_in_flight=4
    )
    vault = S3Credentials(s3_server.access_key, s3_server.secret_key).secure_vault()

    with shipping(local_yt_client, mapper):  # the job's python3 is bare: boto3 travels along
        operation = local_yt_client.run_map(
            mapper,
            f"{directory}/listing",
            f"{directory}/processed",
            spec={"secure_vault": vault, "job_count": 3},
            format=JOB_FORMAT,
        )

    rows = sorted(local_yt_client.read_table(f"{directory}/processed"), key=lambda r: r["path"])
    assert [row["path"] for row in rows] == sorted(keys)
    for row in rows[:-1]:
        body = bodies[row["path"]]
        assert (row["size"], row["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert (row["records"], row["parse_errors"], row["error"]) == (body.count(b"\n"), 0, None)
    assert rows[-1]["error"] == "NoSuchKey (HTTP 404)"
    stderrs = "".join(job.get("stderr", "") for job in operation.get_jobs_with_error_or_stderr())
    assert "1 errors" in stderrs and s3_server.secret_key not in stderrs
