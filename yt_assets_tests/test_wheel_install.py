"""yt-assets installed from its wheel (not editable) runs listing + processing on the embedded
local YT, whose jobs see only a bare Python: whatever the jobs import must travel with the
operation, as on a cluster whose nodes have only ``python3``.

Real processes: the wheel venv (``wheel_venv.py``), moto's S3 server of this session, and the
local YT started by the installed package itself (``YT_PROXY`` unset).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from yt_assets_tests.conftest import S3TestServer, put_objects
from yt_assets_tests.wheel_venv import WheelVenv

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, os, sys

    def main():
        import dagster as dg
        from yt_assets.definitions import build_definitions
        from yt_assets.local_yt import stop_local_yt

        defs = build_definitions()
        job = defs.resolve_implicit_global_asset_job_def()
        keys = [dg.AssetKey("s3_listing"), dg.AssetKey("s3_objects_processed")]
        instance = dg.DagsterInstance.ephemeral()
        try:
            result = job.execute_in_process(
                asset_selection=keys, instance=instance, raise_on_error=False
            )
            yt_cluster = defs.resources["yt_cluster"]
            with yt_cluster.get_client() as client:
                rows = list(client.read_table("//home/yt_assets/s3_objects_processed"))
        finally:
            stop_local_yt(os.environ["YT_LOCAL_ROOT"])
        report = {
            "success": result.success,
            "rows": rows,
            "checks": {
                evaluation.check_name: evaluation.passed
                for evaluation in (
                    event.event_specific_data for event in result.all_events
                    if event.event_type_value == "ASSET_CHECK_EVALUATION"
                )
            },
            "clusters": [
                str(event.event_specific_data.materialization.metadata["yt_cluster"].value)
                for event in result.get_asset_materialization_events()
            ],
            "warnings": [
                record.user_message for record in instance.all_logs(result.run_id)
                if record.level >= 30
            ],
            "log": "\\n".join(record.user_message for record in instance.all_logs(result.run_id)),
            "yt_assets": __import__("yt_assets").__file__,
        }
        print("REPORT " + json.dumps(report, default=str))

    if __name__ == "__main__":
        main()
    """
)


def test_the_installed_wheel_lists_and_processes_with_isolated_jobs(
    wheel_venv: WheelVenv, s3_server: S3TestServer, s3_bucket: str, tmp_path: Path
) -> None:
    bodies = {f"in/{index:02d}.jsonl": b'{"n": 1}\n' * (index + 1) for index in range(6)}
    bodies["in/notes.txt"] = b"a\nb\n"
    put_objects(s3_server, s3_bucket, bodies)
    script = tmp_path / "materialise.py"
    script.write_text(SCRIPT)
    root = tmp_path / "yt_local"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "YT_LOCAL_ROOT": str(root),
        "S3_ENDPOINT": s3_server.endpoint_url,
        "S3_REGION": s3_server.region,
        "S3_BUCKET": s3_bucket,
        "S3_PREFIX": "in/",
        "S3_DOWNLOAD_ACCESS_KEY": s3_server.access_key,
        "S3_DOWNLOAD_SECRET_KEY": s3_server.secret_key,
        "S3_UPLOAD_ACCESS_KEY": s3_server.access_key,
        "S3_UPLOAD_SECRET_KEY": s3_server.secret_key,
    }

    done = wheel_venv.run([str(script)], cwd=tmp_path, env=environment, timeout=600)

    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, done.stdout + done.stderr
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert f"{wheel_venv.site_packages}/yt_assets/" in report["yt_assets"]
    assert report["success"], report["log"]
    assert sorted(row["path"] for row in report["rows"]) == sorted(bodies)
    assert all(row["error"] is None for row in report["rows"]), report["rows"]
    for row in report["rows"]:
        assert row["lines"] == bodies[row["path"]].count(b"\n")
    assert report["checks"] and all(report["checks"].values()), report["checks"]
    # No silent fallback: every materialisation names the embedded cluster, the log warns.
    assert report["clusters"] == [f"local {root}"] * 2
    assert any("embedded local YT" in warning for warning in report["warnings"])
    assert "third-party:" in report["log"] and "files" in report["log"]
