"""S3 settings from the environment and ``configs/secrets.env``.

Variables (the same names yt-framework reads from ``configs/secrets.env``, so its files work as-is;
yt-framework has no region variable, ``S3_REGION`` is ours):

================================  ==========================================================
``S3_ENDPOINT``                   endpoint URL (``http(s)://host:port``); unset means AWS
``S3_REGION``                     region, default ``us-east-1``
``S3_DOWNLOAD_ACCESS_KEY``        required: listing and reading objects
``S3_DOWNLOAD_SECRET_KEY``        required
``S3_UPLOAD_ACCESS_KEY``          optional, required with ``require_upload=True``
``S3_UPLOAD_SECRET_KEY``          optional, required with ``require_upload=True``
================================  ==========================================================

Precedence: the environment wins over the file, per variable. An empty value counts as unset at
each level (so ``S3_REGION=`` in the environment falls back to the file, then to the default).
The secrets file is optional: when it doesn't exist only the environment is read.

Secrets file format (a subset of shell/dotenv syntax, one assignment per line)::

    # comment
    S3_ENDPOINT=http://127.0.0.1:9000      # inline comment (needs a space before '#')
    export S3_DOWNLOAD_ACCESS_KEY=AKID
    S3_DOWNLOAD_SECRET_KEY='single quoted: taken literally, # kept'
    S3_UPLOAD_SECRET_KEY="double quoted: \\" and \\\\ escapes"

Unlike yt-framework (which keeps quotes and inline comments as part of the value and silently
skips malformed lines), quotes are removed, inline comments dropped, and a malformed line is an
error naming the file and line number (never the line: it may hold a secret). Multi-line values
are not supported. The last assignment of a variable wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from yt_assets.s3.client import DEFAULT_REGION

__all__ = [
    "DEFAULT_REGION",
    "DEFAULT_SECRETS_FILE",
    "S3_ENV_VARS",
    "S3Settings",
    "S3SettingsError",
    "SecretsFileError",
    "apply_secrets_file",
    "load_s3_settings",
    "parse_secrets_file",
    "parse_secrets_text",
]

DEFAULT_SECRETS_FILE = Path("configs/secrets.env")

ENDPOINT_VAR = "S3_ENDPOINT"
REGION_VAR = "S3_REGION"
DOWNLOAD_ACCESS_KEY_VAR = "S3_DOWNLOAD_ACCESS_KEY"
DOWNLOAD_SECRET_KEY_VAR = "S3_DOWNLOAD_SECRET_KEY"
UPLOAD_ACCESS_KEY_VAR = "S3_UPLOAD_ACCESS_KEY"
UPLOAD_SECRET_KEY_VAR = "S3_UPLOAD_SECRET_KEY"

S3_ENV_VARS: dict[str, tuple[str, str]] = {
    "download": (DOWNLOAD_ACCESS_KEY_VAR, DOWNLOAD_SECRET_KEY_VAR),
    "upload": (UPLOAD_ACCESS_KEY_VAR, UPLOAD_SECRET_KEY_VAR),
}
"""The (access key, secret key) variable names per purpose."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_EXPORT = re.compile(r"export\s+")
_DOUBLE_QUOTE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "$": "$", "`": "`"}


class S3SettingsError(ValueError):
    """A setting is missing or invalid. The message names the variable, never a value."""


class SecretsFileError(S3SettingsError):
    """A line of the secrets file can't be parsed. Names the file and line, never its content."""

    def __init__(self, path: Path | str, line_number: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line_number = line_number
        where = f"{path}, line {line_number}" if line_number is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where S3 is and the keys to use: secrets print as ``**********``.

    Example::

        settings = load_s3_settings({"S3_DOWNLOAD_ACCESS_KEY": "AKID", "S3_DOWNLOAD_SECRET_KEY": "SECRET"})
        client = settings.make_client("download")      # a boto3 S3 client
        print(settings)  # ... download_secret_key=SecretStr('**********') ...
    """

    download_access_key: SecretStr
    download_secret_key: SecretStr
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    upload_access_key: SecretStr | None = None
    upload_secret_key: SecretStr | None = None

    @property
    def has_upload_keys(self) -> bool:
        return self.upload_access_key is not None and self.upload_secret_key is not None

    def boto3_client_kwargs(
        self, purpose: Literal["download", "upload"] = "download"
    ) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", **kwargs)`` (holds secrets: don't log)."""
        if purpose == "download":
            access_key, secret_key = self.download_access_key, self.download_secret_key
        elif purpose == "upload":
            if self.upload_access_key is None or self.upload_secret_key is None:
                raise S3SettingsError(
                    f"{UPLOAD_ACCESS_KEY_VAR} and {UPLOAD_SECRET_KEY_VAR} are needed for uploads"
                )
            access_key, secret_key = self.upload_access_key, self.upload_secret_key
        else:
            raise ValueError(f"purpose must be 'download' or 'upload', got {purpose!r}")
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": access_key.get_secret_value(),
            "aws_secret_access_key": secret_key.get_secret_value(),
        }

    def make_client(
        self,
        purpose: Literal["download", "upload"] = "download",
        *,
        max_pool_connections: int = 10,
        addressing_style: Literal["auto", "path", "virtual"] = "path",
    ) -> Any:
        """A boto3 S3 client with these settings (path-style addressing by default)."""
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": addressing_style},
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "max_attempts": 5},
        )
        return boto3.client("s3", config=config, **self.boto3_client_kwargs(purpose))


def _parse_double_quoted(text: str, path: Path | str, line_number: int) -> tuple[str, str]:
    """Parse after an opening ``"``; return (value, rest of line after the closing quote)."""
    chars: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(chars), text[index + 1 :]
        if char == "\\" and index + 1 < len(text):
            escaped = text[index + 1]
            chars.append(_DOUBLE_QUOTE_ESCAPES.get(escaped, "\\" + escaped))
            index += 2
            continue
        chars.append(char)
        index += 1
    raise SecretsFileError(path, line_number, "unterminated double quote")


def _parse_value(raw: str, path: Path | str, line_number: int) -> str:
    text = raw.lstrip()
    if text[:1] in ("'", '"'):
        if text[0] == "'":
            end = text.find("'", 1)
            if end < 0:
                raise SecretsFileError(path, line_number, "unterminated single quote")
            value, rest = text[1:end], text[end + 1 :]
        else:
            value, rest = _parse_double_quoted(text[1:], path, line_number)
        rest = rest.strip()
        if rest and not rest.startswith("#"):
            raise SecretsFileError(path, line_number, "unexpected text after the closing quote")
        return value
    comment = re.search(r"\s#", text)
    if comment:
        text = text[: comment.start()]
    return text.strip()


def parse_secrets_text(text: str, path: Path | str = "<secrets>") -> dict[str, str]:
    """Parse ``KEY=value`` lines (format in the module docstring) into a dict."""
    values: dict[str, str] = {}
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        export = _EXPORT.match(line)
        if export:
            line = line[export.end() :]
        name, equals, raw_value = line.partition("=")
        name = name.strip()
        if not equals:
            raise SecretsFileError(path, line_number, "expected NAME=value")
        if not _NAME.fullmatch(name):
            raise SecretsFileError(path, line_number, "invalid variable name")
        values[name] = _parse_value(raw_value, path, line_number)
    return values


def parse_secrets_file(path: Path) -> dict[str, str]:
    """Parse a secrets file; ``{}`` when it doesn't exist."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise SecretsFileError(path, None, "not valid UTF-8") from None
    return parse_secrets_text(text, path)


def _lookup(name: str, environ: Mapping[str, str], file_values: Mapping[str, str]) -> str | None:
    for source in (environ, file_values):
        value = source.get(name)
        if value:
            return value
    return None


def _missing(name: str, secrets_file: Path, file_exists: bool) -> S3SettingsError:
    where = f"{secrets_file}" if file_exists else f"{secrets_file} (not found)"
    return S3SettingsError(f"{name} is not set: looked in the environment and in {where}")


def load_s3_settings(
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
    *,
    require_upload: bool = False,
) -> S3Settings:
    """Read :class:`S3Settings` from ``environ`` (default ``os.environ``), then ``secrets_file``
    (default ``configs/secrets.env`` relative to the working directory).

    Download keys are required; upload keys only with ``require_upload=True`` (an upload key
    without its pair is an error either way). Raises :class:`S3SettingsError` naming the missing
    variable and the file looked in, or :class:`SecretsFileError` naming file and line number.

    Example::

        keys = ("S3_DOWNLOAD_ACCESS_KEY", "S3_DOWNLOAD_SECRET_KEY", "S3_UPLOAD_ACCESS_KEY", "S3_UPLOAD_SECRET_KEY")
        settings = load_s3_settings(dict.fromkeys(keys, "x"), require_upload=True)
        settings.upload_secret_key.get_secret_value()
    """
    environ = os.environ if environ is None else environ
    secrets_file = DEFAULT_SECRETS_FILE if secrets_file is None else Path(secrets_file)
    file_values = parse_secrets_file(secrets_file)
    file_exists = secrets_file.is_file()

    def get(name: str) -> str | None:
        return _lookup(name, environ, file_values)

    def require(name: str) -> SecretStr:
        value = get(name)
        if value is None:
            raise _missing(name, secrets_file, file_exists)
        return SecretStr(value)

    endpoint_url = get(ENDPOINT_VAR)
    if endpoint_url is not None and not re.match(r"https?://[^/\s]+", endpoint_url):
        raise S3SettingsError(f"{ENDPOINT_VAR} must be an http:// or https:// URL")

    upload_access = get(UPLOAD_ACCESS_KEY_VAR)
    upload_secret = get(UPLOAD_SECRET_KEY_VAR)
    if require_upload or (upload_access is None) != (upload_secret is None):
        upload_access_key: SecretStr | None = require(UPLOAD_ACCESS_KEY_VAR)
        upload_secret_key: SecretStr | None = require(UPLOAD_SECRET_KEY_VAR)
    else:
        upload_access_key = SecretStr(upload_access) if upload_access else None
        upload_secret_key = SecretStr(upload_secret) if upload_secret else None

    return S3Settings(
        endpoint_url=endpoint_url,
        region=get(REGION_VAR) or DEFAULT_REGION,
        download_access_key=require(DOWNLOAD_ACCESS_KEY_VAR),
        download_secret_key=require(DOWNLOAD_SECRET_KEY_VAR),
        upload_access_key=upload_access_key,
        upload_secret_key=upload_secret_key,
    )


def apply_secrets_file(
    secrets_file: Path | None = None, environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Copy the variables of ``secrets_file`` (default ``configs/secrets.env``) into ``environ``
    (default ``os.environ``) where they are unset or empty; return the names copied (sorted).

    The environment keeps winning. For code that reads variables by name (``dg.EnvVar``).
    A missing file copies nothing. Raises :class:`SecretsFileError` on a malformed line.

    Example::

        apply_secrets_file(environ={})  # then dg.EnvVar("S3_DOWNLOAD_SECRET_KEY") resolves from the file
    """
    environ = os.environ if environ is None else environ
    secrets_file = DEFAULT_SECRETS_FILE if secrets_file is None else Path(secrets_file)
    copied = []
    for name, value in parse_secrets_file(secrets_file).items():
        if not environ.get(name) and value:
            environ[name] = value
            copied.append(name)
    return sorted(copied)
