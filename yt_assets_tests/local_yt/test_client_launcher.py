"""Starting local YT servers: the CLI, ``LocalYT`` in a thread, the shared ``ensure_local_yt``
server, and memory use of a large streamed write. Local-only (skipped against a real cluster)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import yt.wrapper as yt

from yt_assets.local_yt import LocalYT, ensure_local_yt, running_server, stop_local_yt
from yt_assets.local_yt.faults import FAULTS_ENV_VAR
from yt_assets.local_yt.launcher import default_client_config

from .conftest import LOCAL_ONLY_REASON, REAL_PROXY, peak_rss_kib, write_yson_text_rows

pytestmark = pytest.mark.skipif(bool(REAL_PROXY), reason=LOCAL_ONLY_REASON)

ENSURE_SCRIPT = textwrap.dedent(
    """
    import sys
    from yt_assets.local_yt import ensure_local_yt
    print(ensure_local_yt(sys.argv[1]), flush=True)
    """
)


def test_serve_cli_prints_the_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Also: fault rules from ``YT_LOCAL_FAULTS``, visible on the control endpoint."""
    faults = [{"command": "list", "mode": "503", "count": 1}]
    server = subprocess.Popen(
        [sys.executable, "-m", "yt_assets.local_yt", "serve", "--root", str(tmp_path / "yt")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, FAULTS_ENV_VAR: json.dumps(faults)},
    )
    try:
        assert server.stdout is not None
        first_line = server.stdout.readline()
        proxy_url = first_line.strip().rsplit(" ", 1)[-1]
        assert proxy_url.startswith("http://127.0.0.1:"), first_line
        client = yt.YtClient(proxy=proxy_url, config=default_client_config(proxy_url))
        assert "tmp" in client.list("/")  # retried through the injected 503
        with urllib.request.urlopen(f"{proxy_url}/_local/faults", timeout=10) as response:
            assert json.loads(response.read())[0]["hits"] == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0


def test_in_process_server(tmp_path: Path) -> None:
    with LocalYT(root=tmp_path / "yt", in_process=True) as local_yt:
        assert local_yt.pid is None
        client = local_yt.client()
        client.write_table("//tmp/t", [{"a": 1}])
        assert list(client.read_table("//tmp/t")) == [{"a": 1}]


def test_ensure_local_yt_shares_one_server_per_root(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    try:
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", ENSURE_SCRIPT, str(root)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        urls = set()
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err[-2000:]
            urls.add(out.strip())
        assert len(urls) == 1
        proxy_url = urls.pop()
        assert ensure_local_yt(root) == proxy_url
        assert running_server(root) == proxy_url
        state = json.loads((root / "server.json").read_text())

        # A dead server is replaced by a new one.
        os.kill(state["pid"], signal.SIGKILL)
        new_url = ensure_local_yt(root)
        client = yt.YtClient(proxy=new_url, config=default_client_config(new_url))
        assert client.exists("//tmp")
    finally:
        stop_local_yt(root)
    assert running_server(root) is None


@pytest.mark.slow
def test_streamed_write_of_a_million_rows_keeps_server_memory_flat(tmp_path: Path) -> None:
    with LocalYT(root=tmp_path / "yt") as local_yt:
        assert local_yt.pid is not None
        client = local_yt.client()
        client.write_table("//tmp/warm_up", [{"n": 0, "s": "x"}])
        assert list(client.read_table("//tmp/warm_up")) == [{"n": 0, "s": "x"}]
        before = peak_rss_kib(local_yt.pid)
        count = 1_000_000
        write_yson_text_rows(
            client, "//tmp/big", (b'{"n"=%d;"s"="%s"};' % (n, b"x" * 20) for n in range(count))
        )
        assert sum(1 for _ in client.read_table("//tmp/big")) == count
        growth_mib = (peak_rss_kib(local_yt.pid) - before) / 1024
        # Materialising the rows would take hundreds of MiB; streaming needs a few buffers.
        assert growth_mib < 64, f"server peak memory grew by {growth_mib:.0f} MiB"
