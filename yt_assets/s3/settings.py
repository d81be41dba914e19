"""S3 variable names and the ``configs/secrets.env`` file (read by :mod:`yt_assets.settings`).

Variables (the same names yt-framework reads from ``configs/secrets.env``, so its files work as-is;
yt-framework has no region variable, ``S3_REGION`` is ours):

================================  ==========================================================
``S3_ENDPOINT``                   endpoint URL (``http(s)://host:port``); unset means AWS
``S3_REGION``                     region, default ``us-east-1``
``S3_DOWNLOAD_ACCESS_KEY``        listing and reading objects (a Dagster ``EnvVar``)
``S3_DOWNLOAD_SECRET_KEY``        (a Dagster ``EnvVar``)
``S3_UPLOAD_ACCESS_KEY``          the ``s3_upload`` resource's keys (``EnvVar``)
``S3_UPLOAD_SECRET_KEY``          (``EnvVar``)
================================  ==========================================================

Precedence: the environment wins over the file, per variable (:func:`apply_secrets_file` copies
the file's values where the environment has none or an empty one). The secrets file is optional.

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
from collections.abc import MutableMapping
from pathlib import Path

from yt_assets.s3.client import DEFAULT_REGION

__all__ = [
    "DEFAULT_REGION",
    "DEFAULT_SECRETS_FILE",
    "S3_ENV_VARS",
    "S3SettingsError",
    "SecretsFileError",
    "apply_secrets_file",
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
