"""The local YT's read-only web view (``/ui``): pages over real HTTP, secrets never shown, and
links that survive a restart of the server (the port remembered in the state directory)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yt.wrapper as yt

from yt_assets.local_yt import LocalYT
from yt_assets.yt.links import operation_url, table_url, web_ui_base

VAULT_SECRET = "vault-secret-value-must-not-show"
ENV_TOKEN = "environment-token-must-not-show"
SPEC_TOKEN = "spec-token-must-not-show"
SECRETS = (VAULT_SECRET, ENV_TOKEN, SPEC_TOKEN)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def links(page: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in re.findall(r"href='([^']+)'", page)]


@pytest.fixture
def server(tmp_path: Path) -> LocalYT:
    with LocalYT(root=tmp_path / "yt") as local_yt:
        yield local_yt


def test_pages_show_nodes_tables_files_operations_and_stderr(server: LocalYT) -> None:
    client = server.client()
    client.create("map_node", "//home/web/dir", recursive=True)
    client.write_table(
        "<schema=[{name=word;type=string};{name=n;type=int64}]>//home/web/words",
        [{"word": "alpha", "n": 1}, {"word": "<b>beta</b>", "n": 2}],
    )
    client.write_file("//home/web/notes.txt", b"x" * 1234)
    operation = client.run_map(
        "echo job-says-hi $YT_SECURE_VAULT_S3_SECRET_KEY >&2; cat",
        "//home/web/words",
        "//home/web/copy",
        format="json",
        spec={
            "job_count": 2,
            "title": "web view test",
            "secure_vault": {"S3_SECRET_KEY": VAULT_SECRET},
            "mapper": {"environment": {"MY_TOKEN": ENV_TOKEN, "PLAIN": "plain-value"}},
            "annotations": {"api_token": SPEC_TOKEN},
        },
    )
    base = web_ui_base(None, server.proxy_url, is_local=True)
    pages: dict[str, str] = {}

    status, page = fetch(f"{server.proxy_url}/")  # redirects to the root's navigation page
    assert status == 200 and "map_node" in page
    assert "/ui/navigation?path=//home'" in page  # a link to each child
    pages["root"] = page

    status, page = fetch(str(table_url(base, "//home/web")))
    assert status == 200
    assert "words" in page and "notes.txt" in page and "dir" in page
    pages["map_node"] = page

    status, page = fetch(str(table_url(base, "//home/web/words")))
    assert status == 200
    assert "aria-label='schema'" in page and ">word<" in page and ">int64<" in page
    assert ">alpha<" in page and "&lt;b&gt;beta&lt;/b&gt;" in page  # rows, escaped
    assert "First rows (2)" in page
    pages["table"] = page

    status, page = fetch(str(table_url(base, "//home/web/notes.txt")))
    assert status == 200 and "1,234 B" in page
    pages["file"] = page

    status, page = fetch(f"{base}/operations")
    assert status == 200 and operation.id in page and "completed" in page
    pages["operations"] = page

    status, page = fetch(str(operation_url(base, operation.id)))
    assert status == 200
    assert "<span class='state'>completed</span>" in page
    assert "aria-label='jobs'" in page and "web view test" in page
    assert "MY_TOKEN" in page and "plain-value" not in page  # environment values are redacted
    pages["operation"] = page
    stderr_links = [link for link in links(page) if link.endswith("/stderr")]
    assert len(stderr_links) == 2
    for index, link in enumerate(stderr_links):
        status, page = fetch(f"{server.proxy_url}{link}")
        assert status == 200 and "job-says-hi ***" in page  # the job printed its secret
        pages[f"stderr{index}"] = page
    # the command returns what the job wrote, as YT does; only the pages hide it
    job_id = stderr_links[0].split("/")[-2]
    assert VAULT_SECRET.encode() in client.get_job_stderr(operation.id, job_id).read()

    # The link yt.wrapper prints for an operation opens its page too.
    status, page = fetch(f"{server.proxy_url}/?page=operation&mode=detail&id={operation.id}")
    assert status == 200 and f"Operation {operation.id}" in page

    status, page = fetch(str(table_url(base, "//home/missing")))
    assert status == 404 and "missing" in page

    for name, page in pages.items():
        for secret in SECRETS:
            assert secret not in page, f"{secret} shown on the {name} page"


def test_a_failed_job_printing_its_secret_shows_it_on_no_page(server: LocalYT) -> None:
    client = server.client()
    client.write_table("//tmp/web_in", [{"x": 1}])
    operation = client.run_map(
        "echo leaking $YT_SECURE_VAULT_S3_SECRET_KEY >&2; exit 3",
        "//tmp/web_in",
        "//tmp/web_out",
        format="json",
        spec={"max_failed_job_count": 1, "secure_vault": {"S3_SECRET_KEY": VAULT_SECRET}},
        sync=False,
    )
    with pytest.raises(yt.YtOperationFailedError):
        operation.wait(print_progress=False)
    base = web_ui_base(None, server.proxy_url, is_local=True)

    status, page = fetch(str(operation_url(base, operation.id)))
    assert status == 200 and "failed" in page
    stderr_link = next(link for link in links(page) if link.endswith("/stderr"))
    status, stderr_page = fetch(f"{server.proxy_url}{stderr_link}")

    assert status == 200 and "leaking ***" in stderr_page
    assert VAULT_SECRET not in page and VAULT_SECRET not in stderr_page


def test_a_restarted_server_binds_the_port_its_links_carry(tmp_path: Path) -> None:
    root = tmp_path / "yt"
    with LocalYT(root=root) as first:
        first.client().create("map_node", "//home/kept", recursive=True)
        link = str(table_url(web_ui_base(None, first.proxy_url, is_local=True), "//home/kept"))
    with LocalYT(root=root) as second:  # port=0: the remembered port, when free
        assert second.proxy_url == first.proxy_url
        status, page = fetch(link)
        assert status == 200 and "//home/kept" in page


def test_a_taken_remembered_port_falls_back_to_a_free_one(tmp_path: Path) -> None:
    root = tmp_path / "yt"
    with LocalYT(root=root) as first:
        with LocalYT(root=tmp_path / "other") as _unused:
            (tmp_path / "other" / "port").write_text(f"{first.port}\n")
        with LocalYT(root=tmp_path / "other") as second:  # first still holds the port
            assert second.port != first.port
            assert fetch(f"{second.proxy_url}/ui/operations")[0] == 200
