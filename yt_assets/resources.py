"""Dagster resources: the YT client and the two S3 clients (download and upload keys).

``YTResource`` hands out a configured ``yt.wrapper.YtClient``. With no proxy (or ``proxy="local"``) it
starts, or reuses, the embedded local YT under ``local_root``: production and local runs share one
code path and differ only in the proxy address.

The S3 side reuses dagster-aws's ``S3Resource`` (a subclass with a plain-text description);
:func:`build_resources` fills it from the :class:`~yt_assets.settings.Settings` (``S3_*``
variables and ``configs/secrets.env``), passing secrets as ``EnvVar`` so that the Dagster UI shows
their names, never their values.
"""

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yt.wrapper as yt
from dagster_aws.s3 import S3Resource as DagsterAwsS3Resource
from pydantic import Field

from yt_assets.local_yt.idle import DEFAULT_IDLE_TIMEOUT_S
from yt_assets.s3.settings import S3_ENV_VARS
from yt_assets.settings import DEFAULT_LOCAL_ROOT, Settings, load_settings
from yt_assets.yt.links import operation_url, table_url, web_ui_base

LOCAL_PROXY = "local"


class YTResource(dg.ConfigurableResource):
    """A YTsaurus cluster, or the embedded local YT when proxy is unset or "local".

    Example::

        import dagster as dg
        from yt_assets.resources import YTResource

        @dg.asset
        def table_names(yt_cluster: YTResource) -> list[str]:
            with yt_cluster.get_client() as client:
                return client.list("//home")

        defs = dg.Definitions(
            assets=[table_names],
            resources={"yt_cluster": YTResource(proxy=dg.EnvVar("YT_PROXY"), token=dg.EnvVar("YT_TOKEN"))},
        )

    (Plain text: Dagster shows this docstring in the launchpad.)
    """

    proxy: str | None = Field(
        default=None,
        description="YT HTTP proxy (e.g. 'hahn' or 'https://yt.example.com'). Unset or 'local': the "
        "embedded local YT under local_root, started on demand and shared by the runs of that root.",
    )
    token: str | None = Field(
        default=None, repr=False, description="YT OAuth token (pass as EnvVar('YT_TOKEN'))."
    )
    local_root: str = Field(
        default=DEFAULT_LOCAL_ROOT, description="State directory of the embedded local YT."
    )
    local_idle_timeout_s: float = Field(
        default=DEFAULT_IDLE_TIMEOUT_S,
        gt=0,
        description="An embedded local YT started by a run stops itself after this many seconds "
        "without requests or running operations; the next run starts it again on the same state.",
    )
    local_docker_images: dict[str, str] = Field(
        default_factory=dict,
        description="Embedded local YT only: docker_image name -> virtualenv or interpreter on this "
        "machine that runs the jobs of that image. Jobs without an image run a bare Python, as on a "
        "YT node; an unmapped image fails its jobs.",
    )
    scratch_root: str = Field(
        default="//tmp/yt_assets",
        description="Cypress directory for tables being built (e.g. operation outputs) before they "
        "are moved into place.",
    )
    web_ui: str | None = Field(
        default=None,
        description="Base URL of the cluster's web UI (e.g. 'https://yt.example.com/hahn'), used to "
        "link tables and operations from Dagster metadata.",
    )
    request_timeout_ms: int = Field(default=60_000, ge=1, description="Timeout of light requests.")
    heavy_request_timeout_ms: int = Field(
        default=300_000, ge=1, description="Timeout of heavy requests (table reads and writes)."
    )
    retries_total_timeout_ms: int = Field(
        default=120_000, ge=0, description="How long failed requests are retried in all."
    )
    write_chunk_size_mb: int = Field(
        default=4,
        ge=1,
        description="Rows are buffered and retried per chunk of this size on write: memory per write "
        "stays about this large whatever the table size.",
    )

    @property
    def is_local(self) -> bool:
        return self.proxy in (None, "", LOCAL_PROXY)

    def proxy_url(self) -> str:
        """The proxy address clients use; starts the embedded local YT if this resource is local."""
        if not self.is_local:
            assert self.proxy is not None
            return self.proxy
        from yt_assets.local_yt import JobEnvironment, ensure_local_yt

        return ensure_local_yt(
            Path(self.local_root).resolve(),
            JobEnvironment(docker_images=dict(self.local_docker_images)),
            idle_timeout_s=self.local_idle_timeout_s,
        )

    def cluster_name(self) -> str:
        """The cluster as materialisations name it: the proxy, or ``local <state directory>``."""
        if self.is_local:
            return f"{LOCAL_PROXY} {Path(self.local_root).resolve()}"
        return str(self.proxy)

    def local_warning(self) -> str | None:
        """The run-log warning of a materialisation on the embedded local YT (``None`` otherwise)."""
        if not self.is_local:
            return None
        return (
            f"YT_PROXY is not set: using the embedded local YT ({self.cluster_name()}), not a "
            "YTsaurus cluster. Set YT_PROXY (and YT_TOKEN) to run on a cluster."
        )

    def client_config(self, proxy_url: str) -> dict[str, Any]:
        """The ``YtClient`` config this resource applies (no secrets in it).

        For the embedded local YT it starts from the local YT's own client defaults (no proxy
        discovery, no token, quick retry backoffs, uncompressed loopback requests).
        """
        if self.is_local:
            from yt_assets.local_yt.launcher import default_client_config

            config = default_client_config(proxy_url)
        else:
            config = yt.default_config.get_config_from_env()
        config["proxy"]["request_timeout"] = self.request_timeout_ms
        config["proxy"]["heavy_request_timeout"] = self.heavy_request_timeout_ms
        config["proxy"]["retries"]["total_timeout"] = self.retries_total_timeout_ms
        config["write_retries"]["chunk_size"] = self.write_chunk_size_mb * 1024 * 1024
        config["pickling"]["ignore_system_modules"] = True
        # A failed transaction ping must not raise KeyboardInterrupt inside a Dagster step: the
        # commit that follows fails with the YT error instead.
        config["ping_failed_mode"] = "pass"
        # yt.wrapper would log a failed operation's job stderrs as they are; the assets report
        # them themselves, with the secure vault's values hidden (yt.progress.failed_job_stderrs).
        config["operation_tracker"]["enable_logging_failed_operation"] = False
        return config

    @contextmanager
    def get_client(self) -> Iterator[yt.YtClient]:
        """A configured ``YtClient``; one per thread (the client is not thread-safe). While the
        block runs, an embedded local YT started on demand does not stop for being idle."""
        proxy_url = self.proxy_url()
        client = yt.YtClient(
            proxy=proxy_url, token=self.token or None, config=self.client_config(proxy_url)
        )
        if not self.is_local:
            yield client
            return
        from yt_assets.local_yt.launcher import keeping_alive

        # The embedded local YT stops when idle; not while a step holds this client.
        with keeping_alive(proxy_url, self.local_idle_timeout_s):
            yield client

    def web_ui_base(self) -> str | None:
        """Where links point: ``web_ui`` (or ``YT_WEB_UI``), else the embedded YT's web view."""
        configured = self.web_ui or os.environ.get("YT_WEB_UI")
        if configured or not self.is_local:
            return web_ui_base(configured, None, is_local=False)
        return web_ui_base(None, self.proxy_url(), is_local=True)

    def web_url(self, path: str) -> str | None:
        """A link to the Cypress node ``path`` in the YT web UI (or the local web view)."""
        return table_url(self.web_ui_base(), path)

    def operation_url(self, operation_id: str) -> str | None:
        """A link to an operation in the YT web UI (or the local web view)."""
        return operation_url(self.web_ui_base(), operation_id)


class S3Resource(DagsterAwsS3Resource):
    """An S3 client (dagster-aws's S3Resource: get_client() gives a boto3 S3 client), configured
    from the S3_* variables; the keys are Dagster EnvVars, shown by name only.

    (A subclass only for this plain-text description, which Dagster shows in the launchpad.)
    """


def build_s3_resource(role: str, settings: Settings) -> S3Resource:
    """An :class:`S3Resource` for ``role`` ("download" or "upload") from the settings.

    Keys are passed as ``EnvVar``: Dagster resolves them at launch and shows only their names. A
    missing key fails the run that needs it with an error naming the variable.
    """
    access_var, secret_var = S3_ENV_VARS[role]
    return s3_resource(settings.s3_endpoint, settings.s3_region, access_var, secret_var)


def s3_resource(
    endpoint_url: str | None, region_name: str, access_key_var: str, secret_key_var: str
) -> S3Resource:
    """The one way an :class:`S3Resource` is made: keys as ``EnvVar`` names, ``use_ssl`` from the
    endpoint's scheme."""
    return S3Resource(
        endpoint_url=endpoint_url,
        # boto3 takes the scheme from the endpoint; use_ssl shown in the launchpad agrees with it.
        use_ssl=not (endpoint_url or "").lower().startswith("http://"),
        region_name=region_name,
        aws_access_key_id=dg.EnvVar(access_key_var),
        aws_secret_access_key=dg.EnvVar(secret_key_var),
    )


def build_resources(
    secrets_file: Path | None = None,
    *,
    settings: Settings | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> dict[str, Any]:
    """All resources of the code location, from ``settings`` (default: read from ``environ``,
    default ``os.environ``, and ``secrets_file``, default ``configs/secrets.env``)."""
    if settings is None:
        settings = load_settings(environ, secrets_file)
    return {
        "yt_cluster": YTResource(
            proxy=settings.yt_proxy,
            token=dg.EnvVar("YT_TOKEN") if settings.has_yt_token else None,
            local_root=settings.yt_local_root,
            local_idle_timeout_s=settings.yt_local_idle_timeout_s or DEFAULT_IDLE_TIMEOUT_S,
            local_docker_images=dict(settings.yt_local_docker_images),
            web_ui=settings.yt_web_ui,
        ),
        "s3": build_s3_resource("download", settings),
        "s3_upload": build_s3_resource("upload", settings),
    }
