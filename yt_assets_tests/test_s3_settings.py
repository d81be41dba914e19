"""Settings: precedence of the environment over configs/secrets.env, the secrets file format,
and secrets kept out of text (yt_assets.settings and yt_assets.s3.settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yt_assets.s3.client import make_s3_client
from yt_assets.s3.settings import (
    S3_ENV_VARS,
    S3SettingsError,
    SecretsFileError,
    apply_secrets_file,
    parse_secrets_text,
)
from yt_assets.settings import Settings, load_settings
from yt_assets_tests.conftest import S3TestServer

DOWNLOAD_SECRET = "dl-secret-Zq9+/value"
UPLOAD_SECRET = "up-secret-Xk3=/value"

FULL_ENV = {
    "S3_ENDPOINT": "http://127.0.0.1:9000",
    "S3_REGION": "eu-west-1",
    "S3_DOWNLOAD_ACCESS_KEY": "DLACCESS",
    "S3_DOWNLOAD_SECRET_KEY": DOWNLOAD_SECRET,
    "S3_UPLOAD_ACCESS_KEY": "UPACCESS",
    "S3_UPLOAD_SECRET_KEY": UPLOAD_SECRET,
    "YT_TOKEN": "yt-token-secret",
}


def write_secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "configs" / "secrets.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reads_every_variable_from_the_environment(tmp_path: Path) -> None:
    environ = dict(FULL_ENV)
    settings = load_settings(environ, tmp_path / "absent.env")

    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.s3_region == "eu-west-1"
    assert settings.has_yt_token
    assert environ == FULL_ENV  # nothing to copy from an absent file


def test_environment_wins_over_the_file_per_variable(tmp_path: Path) -> None:
    secrets = write_secrets(
        tmp_path,
        "S3_ENDPOINT=http://from-file:1\n"
        "S3_DOWNLOAD_ACCESS_KEY=file-access\n"
        "S3_DOWNLOAD_SECRET_KEY=file-secret\n",
    )
    environ = {"S3_DOWNLOAD_ACCESS_KEY": "env-access", "S3_REGION": ""}

    settings = load_settings(environ, secrets)

    assert environ["S3_DOWNLOAD_ACCESS_KEY"] == "env-access"
    assert environ["S3_DOWNLOAD_SECRET_KEY"] == "file-secret"
    assert settings.s3_endpoint == "http://from-file:1"
    assert settings.s3_region == "us-east-1"  # empty counts as unset, then the default
    assert "S3_UPLOAD_ACCESS_KEY" not in environ


def test_file_format_export_quotes_and_comments(tmp_path: Path) -> None:
    text = (
        "# a comment line\n"
        "\n"
        "   \n"
        "export S3_ENDPOINT=http://127.0.0.1:9000   # inline comment\n"
        "S3_REGION = 'us-west-2'  # spaces around '=' and a comment after quotes\n"
        'S3_DOWNLOAD_ACCESS_KEY="AK ID # not a comment"\n'
        "S3_DOWNLOAD_SECRET_KEY='single $literal \\n # kept'\n"
        'S3_UPLOAD_ACCESS_KEY="esc \\" \\\\ \\n end"\n'
        "S3_UPLOAD_SECRET_KEY=abc#def\n"
        "export   OTHER_VAR=\n"
    )
    values = parse_secrets_text(text)

    assert values == {
        "S3_ENDPOINT": "http://127.0.0.1:9000",
        "S3_REGION": "us-west-2",
        "S3_DOWNLOAD_ACCESS_KEY": "AK ID # not a comment",
        "S3_DOWNLOAD_SECRET_KEY": "single $literal \\n # kept",
        "S3_UPLOAD_ACCESS_KEY": 'esc " \\ \n end',
        "S3_UPLOAD_SECRET_KEY": "abc#def",
        "OTHER_VAR": "",
    }
    settings = load_settings({}, write_secrets(tmp_path, text))
    assert settings.s3_region == "us-west-2"


def test_last_assignment_wins() -> None:
    assert parse_secrets_text("A=1\nA=2\n") == {"A": "2"}


def test_reads_a_yt_framework_secrets_file(tmp_path: Path) -> None:
    yt_framework_file = (
        "YT_PROXY=http://yt.example\n"
        "YT_TOKEN=yt-token-secret\n"
        "S3_ENDPOINT=https://storage.example\n"
        "S3_DOWNLOAD_ACCESS_KEY=dl\n"
        f"S3_DOWNLOAD_SECRET_KEY={DOWNLOAD_SECRET}\n"
        "S3_UPLOAD_ACCESS_KEY=up\n"
        f"S3_UPLOAD_SECRET_KEY={UPLOAD_SECRET}\n"
    )
    environ: dict[str, str] = {}

    settings = load_settings(environ, write_secrets(tmp_path, yt_framework_file))

    assert settings.s3_endpoint == "https://storage.example"
    assert (settings.yt_proxy, settings.has_yt_token) == ("http://yt.example", True)
    assert environ["S3_DOWNLOAD_SECRET_KEY"] == DOWNLOAD_SECRET
    assert environ["S3_UPLOAD_SECRET_KEY"] == UPLOAD_SECRET


def test_missing_file_is_fine(tmp_path: Path) -> None:
    assert load_settings({}, tmp_path / "nope" / "secrets.env") == Settings()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"S3_DOWNLOAD_SECRET_KEY {DOWNLOAD_SECRET}", "expected NAME=value"),
        (f"S3_DOWNLOAD_SECRET_KEY='{DOWNLOAD_SECRET}", "unterminated single quote"),
        (f'S3_DOWNLOAD_SECRET_KEY="{DOWNLOAD_SECRET}', "unterminated double quote"),
        (
            f"S3_DOWNLOAD_SECRET_KEY='{DOWNLOAD_SECRET}'trailing",
            "unexpected text after the closing quote",
        ),
        (f"3BAD={DOWNLOAD_SECRET}", "invalid variable name"),
    ],
)
def test_parse_error_names_file_and_line_but_not_the_content(
    tmp_path: Path, line: str, reason: str
) -> None:
    secrets = write_secrets(tmp_path, f"# header\nS3_REGION=us-east-1\n{line}\n")

    with pytest.raises(SecretsFileError) as caught:
        load_settings({}, secrets)

    error = caught.value
    assert (error.path, error.line_number) == (secrets, 3)
    assert str(error) == f"{secrets}, line 3: {reason}"
    assert DOWNLOAD_SECRET not in str(error)


def test_invalid_endpoint_is_named_without_its_value(tmp_path: Path) -> None:
    environ = {**FULL_ENV, "S3_ENDPOINT": "ftp://user:pw-secret@host"}
    with pytest.raises(S3SettingsError) as caught:
        load_settings(environ, tmp_path / "absent.env")
    assert "S3_ENDPOINT" in str(caught.value) and "pw-secret" not in str(caught.value)


@pytest.mark.parametrize("hour", ["24", "two", "-1"])
def test_invalid_schedule_hour_is_named(hour: str) -> None:
    with pytest.raises(
        ValueError, match=f"DAILY_SCHEDULE_HOUR={hour!r} is invalid: it must be a whole hour"
    ):
        Settings.from_environ({"DAILY_SCHEDULE_HOUR": hour})


def test_secrets_never_show_in_the_settings(tmp_path: Path) -> None:
    settings = load_settings(dict(FULL_ENV), tmp_path / "absent.env")

    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert DOWNLOAD_SECRET not in text and UPLOAD_SECRET not in text
        assert "DLACCESS" not in text and "UPACCESS" not in text and "yt-token" not in text
        assert "http://127.0.0.1:9000" in text


def test_settings_are_frozen() -> None:
    settings = Settings.from_environ(FULL_ENV)
    with pytest.raises(AttributeError):
        settings.s3_region = "x"  # type: ignore[misc]


def test_make_s3_client_talks_to_a_real_server(s3_server: S3TestServer) -> None:
    bucket = s3_server.create_bucket("settings")

    client = make_s3_client(
        s3_server.access_key, s3_server.secret_key, endpoint_url=s3_server.endpoint_url
    )
    client.put_object(Bucket=bucket, Key="k", Body=b"v")

    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert s3_server.secret_key not in repr(client)


def test_apply_secrets_file_fills_only_unset_variables(tmp_path: Path) -> None:
    secrets = write_secrets(
        tmp_path, "S3_DOWNLOAD_ACCESS_KEY=file-a\nS3_DOWNLOAD_SECRET_KEY=file-s\nYT_TOKEN=t\nE=\n"
    )
    environ = {"S3_DOWNLOAD_ACCESS_KEY": "env-a", "S3_DOWNLOAD_SECRET_KEY": ""}

    copied = apply_secrets_file(secrets, environ)

    assert copied == ["S3_DOWNLOAD_SECRET_KEY", "YT_TOKEN"]
    assert environ == {
        "S3_DOWNLOAD_ACCESS_KEY": "env-a",
        "S3_DOWNLOAD_SECRET_KEY": "file-s",
        "YT_TOKEN": "t",
    }
    assert apply_secrets_file(tmp_path / "absent.env", environ) == []
    assert S3_ENV_VARS["download"] == ("S3_DOWNLOAD_ACCESS_KEY", "S3_DOWNLOAD_SECRET_KEY")
