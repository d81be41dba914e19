"""yt_assets.s3.settings: precedence, the secrets file format, and secrets kept out of text."""

from __future__ import annotations

from pathlib import Path

import pytest

from yt_assets.s3.settings import (
    S3_ENV_VARS,
    S3Settings,
    S3SettingsError,
    SecretsFileError,
    apply_secrets_file,
    load_s3_settings,
    parse_secrets_text,
)
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
}


def write_secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "configs" / "secrets.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reads_every_variable_from_the_environment(tmp_path: Path) -> None:
    settings = load_s3_settings(FULL_ENV, tmp_path / "absent.env", require_upload=True)

    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert settings.region == "eu-west-1"
    assert settings.download_access_key.get_secret_value() == "DLACCESS"
    assert settings.download_secret_key.get_secret_value() == DOWNLOAD_SECRET
    assert settings.upload_access_key is not None and settings.upload_secret_key is not None
    assert settings.upload_secret_key.get_secret_value() == UPLOAD_SECRET


def test_environment_wins_over_the_file_per_variable(tmp_path: Path) -> None:
    secrets = write_secrets(
        tmp_path,
        "S3_ENDPOINT=http://from-file:1\n"
        "S3_DOWNLOAD_ACCESS_KEY=file-access\n"
        "S3_DOWNLOAD_SECRET_KEY=file-secret\n",
    )
    environ = {"S3_DOWNLOAD_ACCESS_KEY": "env-access", "S3_REGION": ""}

    settings = load_s3_settings(environ, secrets)

    assert settings.download_access_key.get_secret_value() == "env-access"
    assert settings.download_secret_key.get_secret_value() == "file-secret"
    assert settings.endpoint_url == "http://from-file:1"
    assert settings.region == "us-east-1"  # empty counts as unset, then the default
    assert settings.upload_access_key is None and not settings.has_upload_keys


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
    settings = load_s3_settings({}, write_secrets(tmp_path, text))
    assert settings.region == "us-west-2"


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

    settings = load_s3_settings({}, write_secrets(tmp_path, yt_framework_file), require_upload=True)

    assert settings.endpoint_url == "https://storage.example"
    assert settings.download_secret_key.get_secret_value() == DOWNLOAD_SECRET
    assert settings.has_upload_keys


@pytest.mark.parametrize(
    ("missing", "require_upload"),
    [
        ("S3_DOWNLOAD_ACCESS_KEY", False),
        ("S3_DOWNLOAD_SECRET_KEY", False),
        ("S3_UPLOAD_ACCESS_KEY", True),
        ("S3_UPLOAD_SECRET_KEY", True),
    ],
)
def test_missing_setting_names_the_variable_and_the_file(
    tmp_path: Path, missing: str, require_upload: bool
) -> None:
    secrets = write_secrets(tmp_path, "")
    environ = {name: value for name, value in FULL_ENV.items() if name != missing}

    with pytest.raises(S3SettingsError) as caught:
        load_s3_settings(environ, secrets, require_upload=require_upload)

    message = str(caught.value)
    assert missing in message and str(secrets) in message
    for value in FULL_ENV.values():
        assert value not in message


def test_missing_file_is_fine_and_said_so_when_a_variable_is_missing(tmp_path: Path) -> None:
    absent = tmp_path / "nope" / "secrets.env"
    with pytest.raises(S3SettingsError, match=r"S3_DOWNLOAD_ACCESS_KEY.*\(not found\)"):
        load_s3_settings({}, absent)


def test_upload_keys_optional_but_a_half_pair_is_an_error(tmp_path: Path) -> None:
    base = {"S3_DOWNLOAD_ACCESS_KEY": "a", "S3_DOWNLOAD_SECRET_KEY": "b"}
    absent = tmp_path / "absent.env"
    assert load_s3_settings(base, absent).upload_access_key is None

    with pytest.raises(S3SettingsError, match="S3_UPLOAD_SECRET_KEY"):
        load_s3_settings({**base, "S3_UPLOAD_ACCESS_KEY": "x"}, absent)
    with pytest.raises(S3SettingsError, match="S3_UPLOAD_ACCESS_KEY"):
        load_s3_settings(base, absent, require_upload=True)
    with pytest.raises(S3SettingsError, match="S3_UPLOAD_ACCESS_KEY and S3_UPLOAD_SECRET_KEY"):
        load_s3_settings(base, absent).boto3_client_kwargs("upload")


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
        load_s3_settings({}, secrets)

    error = caught.value
    assert (error.path, error.line_number) == (secrets, 3)
    assert str(error) == f"{secrets}, line 3: {reason}"
    assert DOWNLOAD_SECRET not in str(error)


def test_invalid_endpoint_is_named_without_its_value(tmp_path: Path) -> None:
    environ = {**FULL_ENV, "S3_ENDPOINT": "ftp://user:pw-secret@host"}
    with pytest.raises(S3SettingsError) as caught:
        load_s3_settings(environ, tmp_path / "absent.env")
    assert "S3_ENDPOINT" in str(caught.value) and "pw-secret" not in str(caught.value)


def test_secrets_never_show_in_repr_or_str(tmp_path: Path) -> None:
    settings = load_s3_settings(FULL_ENV, tmp_path / "absent.env", require_upload=True)

    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert DOWNLOAD_SECRET not in text and UPLOAD_SECRET not in text
        assert "DLACCESS" not in text and "UPACCESS" not in text
        assert "http://127.0.0.1:9000" in text


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_s3_settings(FULL_ENV, tmp_path / "absent.env")
    with pytest.raises(AttributeError):
        settings.region = "x"  # type: ignore[misc]


def test_make_client_talks_to_a_real_server(s3_server: S3TestServer, tmp_path: Path) -> None:
    environ = {
        "S3_ENDPOINT": s3_server.endpoint_url,
        "S3_DOWNLOAD_ACCESS_KEY": s3_server.access_key,
        "S3_DOWNLOAD_SECRET_KEY": s3_server.secret_key,
    }
    settings: S3Settings = load_s3_settings(environ, tmp_path / "absent.env")
    bucket = s3_server.create_bucket("settings")

    client = settings.make_client()
    client.put_object(Bucket=bucket, Key="k", Body=b"v")

    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


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
