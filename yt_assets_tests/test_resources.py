"""YTResource: the embedded local YT on demand, shared per root; links; no token in reprs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yt_assets.local_yt import LocalYtStartError, running_server, stop_local_yt
from yt_assets.local_yt.processes import pid_alive
from yt_assets.resources import YTResource, build_resources
from yt_assets.settings import parse_docker_images


def _pid_of(root: Path) -> int:
    import json

    return int(json.loads((root / "server.json").read_text())["pid"])


def test_local_yt_is_started_on_demand_and_shared_by_processes(tmp_path: Path) -> None:
    root = tmp_path / "yt"
    resource = YTResource(proxy=None, local_root=str(root))
    try:
        with resource.get_client() as client:
            client.create("map_node", "//home/shared", recursive=True)
        proxy_url = running_server(root)
        assert proxy_url is not None and proxy_url.startswith("http://127.0.0.1:")
        # Another resource, and another process, reuse the same server and see the same state.
        assert YTResource(proxy="local", local_root=str(root)).proxy_url() == proxy_url
        other_process = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from yt_assets.resources import YTResource; "
                "r = YTResource(local_root=sys.argv[1]); print(r.proxy_url()); "
                "client = r.get_client().__enter__(); print(client.exists('//home/shared'))",
                str(root),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert other_process.stdout.lower().split() == [proxy_url, "true"]
        pid = _pid_of(root)
        local_config = resource.client_config(proxy_url)
        assert local_config["proxy"]["enable_proxy_discovery"] is False
        assert local_config["proxy"]["content_encoding"] == "identity"
        assert local_config["write_retries"]["chunk_size"] == 4 * 1024 * 1024
    finally:
        assert stop_local_yt(root)
    # Exited: gone, or a zombie until whoever adopted it reaps it (seen once in CI under load).
    assert not pid_alive(pid)
    assert running_server(root) is None


def test_state_is_kept_between_server_runs(tmp_path: Path) -> None:
    root = tmp_path / "yt"
    resource = YTResource(local_root=str(root))
    try:
        with resource.get_client() as client:
            client.write_table("//tmp/kept", [{"a": 1}])
    finally:
        stop_local_yt(root)
    try:
        with resource.get_client() as client:
            assert list(client.read_table("//tmp/kept")) == [{"a": 1}]
    finally:
        stop_local_yt(root)


def test_web_links_and_client_settings() -> None:
    resource = YTResource(proxy="hahn", web_ui="https://yt.example.com/hahn/", token="t0ken-secret")
    assert (
        resource.web_url("//home/a b/t")
        == "https://yt.example.com/hahn/navigation?path=//home/a%20b/t"
    )
    assert YTResource(proxy="hahn").web_url("//x") is None or os.environ.get("YT_WEB_UI")
    config = resource.client_config("hahn")
    assert config["write_retries"]["chunk_size"] == 4 * 1024 * 1024
    assert config["pickling"]["ignore_system_modules"] is True
    assert config["ping_failed_mode"] == "pass"
    assert "t0ken-secret" not in repr(resource)
    assert "t0ken-secret" not in str(config)


def test_resources_from_the_environment_show_secret_names_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("YT_TOKEN", "yt-token-value")
    monkeypatch.delenv("S3_DOWNLOAD_SECRET_KEY", raising=False)
    secrets = tmp_path / "secrets.env"
    secrets.write_text('export S3_DOWNLOAD_SECRET_KEY="from-file-secret"  # comment\n')
    resources = build_resources(secrets_file=secrets)
    assert os.environ["S3_DOWNLOAD_SECRET_KEY"] == "from-file-secret"
    monkeypatch.delenv("S3_DOWNLOAD_SECRET_KEY")
    text = repr(resources)
    assert "from-file-secret" not in text and "yt-token-value" not in text
    assert "S3_DOWNLOAD_SECRET_KEY" in text
    assert resources["s3"].endpoint_url == "http://127.0.0.1:9"


def test_embedded_yt_names_itself_and_takes_a_docker_image_mapping(tmp_path: Path) -> None:
    root = tmp_path / "yt"
    image = {"app:1": sys.executable}
    resource = YTResource(local_root=str(root), local_docker_images=image)
    assert resource.cluster_name() == f"local {root}"
    assert "embedded local YT" in (resource.local_warning() or "")
    assert YTResource(proxy="hahn").local_warning() is None
    assert YTResource(proxy="hahn").cluster_name() == "hahn"
    try:
        resource.proxy_url()
        state = json.loads((root / "server.json").read_text())
        assert state["job_environment"]["docker_images"] == image
        # The running server's mapping differs: an error naming the way out, not a silent reuse.
        with pytest.raises(LocalYtStartError, match="stop it first"):
            YTResource(local_root=str(root)).proxy_url()
    finally:
        stop_local_yt(root)


def test_docker_images_variable_is_parsed_or_rejected_in_one_line() -> None:
    assert parse_docker_images("a:1=/x, b=/y") == {"a:1": "/x", "b": "/y"}
    assert parse_docker_images("") == {}
    with pytest.raises(ValueError, match="'oops' is not NAME=PATH"):
        parse_docker_images("oops")
