"""The one settings object, read from the environment when a process starts (never at import):
every declaration of services/infra/declarations.py and the pipeline's, validated with every
problem reported in one message, the defaults derived from other settings resolved (the embedded
store in development: SeaweedFS on 127.0.0.1 with credentials generated under var/secrets), and
development secrets generated under IMAGEPIPE_VAR_DIR/secrets (which the start-up says).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr, ValidationError, create_model
from pydantic.fields import FieldInfo

from pipeline.limits import ImageLimits
from pipeline.specs import EncoderSettings
from services.infra.declarations import _ENVIRON, GROUPS, ConfigError, Declared, describe, env_name, extra, pipeline_fields
from services.infra.tokens import TokenPolicy

__all__ = ["GROUPS", "ConfigError", "Settings", "available_cpus", "declarations", "derive_secret", "mask_url", "project_home"]


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota (a container's
    `cpus:` limit; cgroup v2's cpu.max or v1's cfs quota), at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            quota = "max"
    if quota not in ("max", "-1"):
        try:
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            pass
    return max(1, cpus)


class _Settings(Declared):
    """The declarations, with what is derived from them."""

    _jwt_generated: bool = PrivateAttr(default=False)
    _store_embedded: bool = PrivateAttr(default=False)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def jwt_secret_generated(self) -> bool:
        return self._jwt_generated

    @property
    def store_embedded(self) -> bool:
        """The embedded SeaweedFS is the store: development, STORAGE_BACKEND=s3, and neither an
        endpoint nor keys configured. `make run` starts it; every other command talks to it."""
        return self._store_embedded

    def flower_credentials(self) -> tuple[str, str]:
        """Flower's basic auth: FLOWER_PASSWORD, or in development one generated under
        var/secrets (ConfigError in production without one)."""
        if self.flower_password:
            return self.flower_user, self.flower_password
        if self.is_production:
            raise ConfigError(["FLOWER_PASSWORD is required to start Flower in production"])
        return self.flower_user, _dev_secret(self.var_dir / "secrets" / "flower_password")

    @property
    def worker_processes(self) -> int:
        """WORKER_CONCURRENCY, or one process per CPU this process may use."""
        return self.worker_concurrency or available_cpus()

    @property
    def token_policy(self) -> TokenPolicy:
        return TokenPolicy(self.jwt_audience, self.jwt_issuer or None, self.jwt_max_lifetime_s)

    @property
    def metrics_root(self) -> Path:
        """METRICS_DIR, resolved (var/metrics unless set)."""
        assert self.metrics_dir is not None, "resolved by from_env"
        return self.metrics_dir

    @property
    def local_storage_root(self) -> Path:
        """LOCAL_STORAGE_DIR, resolved (var/storage unless set)."""
        assert self.local_storage_dir is not None, "resolved by from_env"
        return self.local_storage_dir

    @property
    def limits(self) -> ImageLimits:
        return _subset(ImageLimits, self)

    @property
    def encoder(self) -> EncoderSettings:
        """The encoder settings; the `mls` rendition is on as well when the compliance profile asks."""
        from services.syndication.compliance import profile

        enc = _subset(EncoderSettings, self)
        chosen = profile(self.compliance_profile)
        if chosen is not None and chosen.mls_rendition and not enc.mls_rendition:
            enc = dataclasses.replace(enc, mls_rendition=True)
        return enc

    def with_overrides(self, **changes: Any) -> Settings:
        copy = self.model_copy(update=changes)
        copy._jwt_generated = self._jwt_generated
        copy._store_embedded = self._store_embedded
        return copy

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, role: str = "all") -> Settings:
        """Read and validate `environ` (default: the process environment), reporting every problem.
        In production a process needs only what its role uses (ROLES): a Flower pod holds no JWT
        secret, a worker no token key."""
        import os

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        raw, reported = _validate(cls, env, problems)
        settings = _resolve(raw, problems, reported, ROLES[role])
        if problems:
            raise ConfigError(problems)
        return settings

    def __repr_args__(self):
        """Secrets and URL passwords never reach a repr (a log line, a test failure)."""
        for name, value in super().__repr_args__():
            field = type(self).model_fields.get(name)
            if field is not None and extra(field)["secret"] and value:
                yield name, "***"
            elif isinstance(value, str) and "://" in value:
                yield name, mask_url(value)
            else:
                yield name, value


if TYPE_CHECKING:
    # For the type checker the settings are the declared class (with the pipeline's fields reached
    # through `.limits` and `.encoder`); at run time the class also carries the pipeline's fields.
    Settings = _Settings
else:
    Settings = create_model(  # noqa: N816 (a class)
        "Settings",
        __base__=_Settings,
        __module__=__name__,
        **pipeline_fields(ImageLimits, "limits"),
        **pipeline_fields(EncoderSettings, "encoders"),
    )
    Settings.__doc__ = "The one settings object: every declaration above, and the pipeline's."


def _subset(declared: type, settings: Declared):
    return declared(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(declared)})


def declarations() -> Iterator[tuple[str, FieldInfo]]:
    yield from Settings.model_fields.items()


def _problem(error: Any) -> tuple[str, str]:
    name = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(name)
    if field is None:  # located by its variable name
        field = next((f for _, f in declarations() if env_name(f) == name or name in extra(f)["aliases"]), None)
    variable = env_name(field) if field is not None else name
    if error["type"] == "value_error":
        return variable, f"{variable} {error.get('ctx', {}).get('error')}"
    if field is None:
        return variable, f"{variable}: {error['msg']}"
    return variable, f"{variable} must be {describe(field)}, got {error.get('input')!r}"


def _validate(cls, env: dict[str, str], problems: list[str]) -> tuple[Declared, set[str]]:
    """Validate; on errors, note each and validate again without the offending variables, so the
    checks across settings below still run (everything is reported in one pass)."""
    token = _ENVIRON.set(env)
    try:
        try:
            return cls(), set()
        except ValidationError as exc:
            bad: set[str] = set()
            for error in exc.errors():
                variable, text = _problem(error)
                bad.add(variable)
                problems.append(text)
            _ENVIRON.set({k: v for k, v in env.items() if k not in bad})
            return cls(), bad
    finally:
        _ENVIRON.reset(token)


# What each process uses, so what production requires of it (docs/deploy.md "One secret per
# role"): the database, the broker, the store, the token key (JWT_SECRET), the callbacks' key
# (CALLBACK_SECRET, or derived from JWT_SECRET), the metrics token, Flower's password.
NEEDS = ("database", "broker", "store", "jwt", "callback", "metrics", "flower")
ROLES: dict[str, frozenset[str]] = {
    "api": frozenset({"database", "broker", "store", "jwt", "metrics"}),
    "worker": frozenset({"database", "broker", "store", "callback", "metrics"}),
    "beat": frozenset({"broker"}),
    "flower": frozenset({"broker", "flower"}),
    "cli": frozenset({"database", "broker", "store"}),  # the operator's commands
    "token": frozenset({"jwt"}),  # `imagepipe token`
    "all": frozenset(NEEDS),  # `imagepipe run`, check-config: every process's settings
}


def _resolve(s: Any, problems: list[str], reported: set[str], needs: frozenset[str] = ROLES["all"]) -> Any:
    """Checks across settings, and the defaults derived from others. A variable already reported
    as invalid is not reported again as missing; in production only what the role needs is required."""
    production = s.is_production and "IMAGEPIPE_ENV" not in reported
    changes: dict[str, Any] = {}
    home = (s.home or project_home()).resolve()
    var_dir = s.var_dir if s.var_dir.is_absolute() else home / s.var_dir
    changes.update(home=home, var_dir=var_dir)
    s = s.model_copy(update={"var_dir": var_dir})
    if not s.database_url:
        if production and "database" in needs and "DATABASE_URL" not in reported:
            problems.append("DATABASE_URL is required in production (e.g. postgresql+psycopg2://user:pass@host:5432/imagepipe)")
        changes["database_url"] = f"sqlite:///{s.var_dir / 'imagepipe.db'}"
    if not s.broker_url:
        if production and "broker" in needs and "CELERY_BROKER_URL" not in reported:
            problems.append("CELERY_BROKER_URL (or REDIS_URL) is required in production (e.g. redis://host:6379/0)")
        changes["broker_url"] = "filesystem://"
    broker = changes.get("broker_url", s.broker_url)
    if not s.rate_limit_redis_url and broker.startswith(("redis://", "rediss://")):
        changes["rate_limit_redis_url"] = broker
    if s.storage_backend == "s3" and not s.aws_s3_bucket:
        if production and "store" in needs and "AWS_S3_BUCKET" not in reported:
            problems.append("AWS_S3_BUCKET is required when STORAGE_BACKEND=s3 (a bucket name like listing-images)")
        changes["aws_s3_bucket"] = "imagepipe"
    if bool(s.aws_access_key_id) != bool(s.aws_secret_access_key):
        problems.append(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or both left unset to use the instance role)"
        )
    embedded = (
        s.storage_backend == "s3"
        and not production
        and not s.aws_s3_endpoint_url
        and not s.aws_access_key_id
        and not s.aws_secret_access_key
    )
    if embedded:
        changes["aws_s3_endpoint_url"] = f"http://127.0.0.1:{s.seaweedfs_s3_port}"
        if not s.cors_allowed_origins:  # the web page's direct uploads
            changes["cors_allowed_origins"] = (f"http://{s.host}:{s.port}",)
    if s.storage_backend == "local" and not s.public_api_url and not production:
        changes["public_api_url"] = f"http://{s.host}:{s.port}"
    if s.local_storage_dir is None:
        changes["local_storage_dir"] = s.var_dir / "storage"
    if s.metrics_dir is None:
        changes["metrics_dir"] = s.var_dir / "metrics"
    if bool(s.cloudfront_key_pair_id) != bool(s.cloudfront_private_key_path):
        problems.append("AWS_CLOUDFRONT_KEY_PAIR_ID and AWS_CLOUDFRONT_PRIVATE_KEY_PATH must be set together")
    elif s.cloudfront_private_key_path and not s.cloudfront_private_key_path.is_file():
        problems.append(
            f"AWS_CLOUDFRONT_PRIVATE_KEY_PATH must name a PEM file, {str(s.cloudfront_private_key_path)!r} does not exist"
        )
    if s.cloudfront_key_pair_id and not s.aws_cloudfront_url:
        problems.append("AWS_CLOUDFRONT_KEY_PAIR_ID needs AWS_CLOUDFRONT_URL (the distribution the URLs are for)")
    store_call_s = s.store_max_attempts * (s.store_connect_timeout_s + s.store_read_timeout_s)
    if store_call_s >= s.task_soft_time_limit_s:
        problems.append(
            f"TASK_SOFT_TIME_LIMIT_S ({s.task_soft_time_limit_s}) must exceed the longest a store call may take"
            f" (STORE_MAX_ATTEMPTS x (STORE_CONNECT_TIMEOUT_S + STORE_READ_TIMEOUT_S) = {store_call_s:g} s): a hung"
            " store must end in a retry, not in a task killed for time"
        )
    if s.broker_visibility_timeout_s <= s.task_time_limit_s:
        problems.append("BROKER_VISIBILITY_TIMEOUT_S must exceed TASK_TIME_LIMIT_S (or a running task is delivered twice)")
    if s.task_time_limit_s <= s.task_soft_time_limit_s:
        problems.append("TASK_TIME_LIMIT_S must be greater than TASK_SOFT_TIME_LIMIT_S (the hard limit backs up the soft one)")

    if production and "metrics" in needs and not s.metrics_token and "METRICS_TOKEN" not in reported:
        if needs != ROLES["worker"] or s.worker_metrics_port:
            problems.append(
                "METRICS_TOKEN is required in production: /metrics (the API's and the worker's port) answers only"
                " `Authorization: Bearer <METRICS_TOKEN>` (at least 32 random characters)"
            )
    jwt_secret, generated = s.jwt_secret, False
    if not jwt_secret:
        if production and "jwt" in needs and "JWT_SECRET" not in reported:
            problems.append("JWT_SECRET is required in production (at least 32 random characters)")
        elif (
            production
            and "callback" in needs
            and not s.callback_secret
            and "CALLBACK_SECRET" not in reported
            and "JWT_SECRET" not in reported
        ):
            problems.append("CALLBACK_SECRET is required in production for the worker (it signs callbacks)")
        elif not problems and not production:  # never write a file for a configuration that is refused anyway
            jwt_secret, generated = _dev_secret(s.var_dir / "secrets" / "jwt_secret"), True
    if jwt_secret:
        changes["jwt_secret"] = jwt_secret
        # Local presigned URLs and callbacks need keys of their own; derived one way from the JWT
        # secret so a deployment needs one variable, while production may set each and rotate it
        # independently. A callback receiver holds the callback secret: it must not lead back.
        changes["signing_secret"] = s.signing_secret or derive_secret(jwt_secret, "local-url-signing")
        changes["callback_secret"] = s.callback_secret or derive_secret(jwt_secret, "callback-signing")
    if embedded and not problems:
        changes["aws_access_key_id"], changes["aws_secret_access_key"] = dev_s3_credentials(
            var_dir / "secrets" / "s3_credentials.json"
        )
    resolved = s.model_copy(update=changes)
    resolved._jwt_generated = generated
    resolved._store_embedded = embedded
    return resolved


def project_home(cwd: Path | None = None) -> Path:
    """The project folder: the nearest folder holding imagepipe's pyproject.toml at or above the
    working directory, else the checkout this code runs from, else the working directory (an
    installed package: the deployment sets IMAGEPIPE_VAR_DIR)."""
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents, *Path(__file__).resolve().parents):
        try:
            if re.search(r'^name\s*=\s*"imagepipe"', (folder / "pyproject.toml").read_text(), re.M):
                return folder
        except OSError:
            continue
    return here


def dev_s3_credentials(path: Path) -> tuple[str, str]:
    """The embedded SeaweedFS's credentials, generated once under var/secrets (development)."""
    from services.infra.secretfiles import create_private_file

    key_id, secret = "dev" + secrets.token_hex(8), secrets.token_urlsafe(32)
    if create_private_file(path, json.dumps({"access_key_id": key_id, "secret_access_key": secret})):
        return key_id, secret
    data = json.loads(path.read_text())
    return data["access_key_id"], data["secret_access_key"]


def _dev_secret(path: Path) -> str:
    """Development mode only: a random secret kept under var/ so tokens survive restarts."""
    from services.infra.secretfiles import create_private_file

    value = secrets.token_urlsafe(48)
    if create_private_file(path, value + "\n"):
        return value
    return path.read_text().strip()


def derive_secret(master: str, purpose: str) -> str:
    """A secret for one purpose from the master secret, one way (HMAC-SHA256 with a purpose label):
    whoever holds a derived secret (a callback receiver) learns nothing of the master or of
    the other derived secrets."""
    return hmac.new(master.encode(), f"imagepipe/{purpose}/v1".encode(), hashlib.sha256).hexdigest()


def mask_url(value: str) -> str:
    """A URL with the password of its user part hidden (postgresql://app:***@db/imagepipe)."""
    return re.sub(r"^([a-z][a-z0-9+.\-]*://[^:/@]*):[^@/]*@", r"\1:***@", value)
