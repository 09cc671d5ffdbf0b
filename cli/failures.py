"""How a command fails: one line saying what failed and what to do, a documented exit code, and a
traceback only when asked for (`imagepipe --debug ...` or IMAGEPIPE_DEBUG=1).

Exit codes (docs/operations.md, "Exit codes"):
  0  done
  1  the command ran and found something off (bucket check, migrate verify), or refused the request
  2  usage or configuration error
  3  object store unreachable or refusing (credentials, bucket)
  4  database unreachable or refusing
  5  broker unreachable
  70 an unexpected error (a bug: the line names it; --debug shows the traceback)
"""

from __future__ import annotations

import re
import sys
from typing import Any, NoReturn

import click

EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_DATABASE = 4
EXIT_BROKER = 5
EXIT_INTERNAL = 70

SETTINGS_KEY = "imagepipe.settings"


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """`--debug`, or IMAGEPIPE_DEBUG=1 (the option's environment variable, read by click)."""
    return bool(ctx is not None and ctx.find_root().meta.get("imagepipe.debug"))


def _where(ctx: click.Context, what: str) -> str:
    """The endpoint a failure concerns, from the settings the command read (if it got that far)."""
    settings: Any = ctx.find_root().meta.get(SETTINGS_KEY)
    if settings is None:
        return ""
    from services.infra.settings import mask_url

    if what == "store":
        if settings.storage_backend == "local":
            return f" at {settings.local_storage_dir}"
        endpoint = settings.aws_s3_endpoint_url or f"AWS S3 ({settings.aws_region})"
        return f" at {endpoint}, bucket {settings.aws_s3_bucket}"
    if what == "database":
        return f" at {mask_url(settings.database_url)}"
    return f" at {mask_url(settings.broker_url)}"


def _hint(ctx: click.Context, what: str) -> str:
    settings: Any = ctx.find_root().meta.get(SETTINGS_KEY)
    embedded = settings is not None and getattr(settings, "store_embedded", False)
    if what == "store":
        if embedded:
            return "is `make run` (imagepipe run) running in this project folder?"
        return "check AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and AWS_S3_BUCKET"
    if what == "database":
        return "check DATABASE_URL and that the server answers; `imagepipe db upgrade` (or make run) creates the schema"
    return "check CELERY_BROKER_URL and that the broker answers"


def classify(exc: BaseException) -> tuple[str, int] | None:
    """(what failed, exit code) for the dependency failures a command can meet, else None."""
    from storage.base import ObjectNotFound, StorageError, TransientStorageError

    if isinstance(exc, StorageError):
        if isinstance(exc, TransientStorageError):
            return "store unreachable", EXIT_STORE
        if isinstance(exc, ObjectNotFound):
            return "store: object missing", EXIT_STORE
        return "store refused the request", EXIT_STORE
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError

        if isinstance(exc, DBAPIError) and re.search(r"no such table|relation .* does not exist", str(exc.orig)):
            return "database has no imagepipe schema", EXIT_DATABASE
        if isinstance(exc, OperationalError):
            return "database unreachable", EXIT_DATABASE
        if isinstance(exc, DBAPIError):
            return "database refused the request", EXIT_DATABASE
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        pass
    try:
        from kombu.exceptions import OperationalError as BrokerError

        if isinstance(exc, BrokerError):
            return "broker unreachable", EXIT_BROKER
    except ImportError:  # pragma: no cover
        pass
    return None


def fail(ctx: click.Context, exc: BaseException) -> NoReturn:
    """Print one line for `exc` and exit with its code (the traceback too with --debug)."""
    if debug_enabled(ctx):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    found = classify(exc)
    cause = getattr(exc, "orig", None) or exc  # a database error's own message, without the statement
    text = " ".join(str(cause).split()) or exc.__class__.__name__
    if len(text) > 300:
        text = text[:297] + "..."
    if found is not None:
        what, code = found
        kind = what.split()[0]
        click.echo(f"error: {what}{_where(ctx, kind)}: {text} ({_hint(ctx, kind)})", err=True)
        sys.exit(code)
    click.echo(
        f"error: unexpected {exc.__class__.__name__}: {text} (run again with --debug or IMAGEPIPE_DEBUG=1 for the traceback)",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)


class Group(click.Group):
    """The top-level group: turns any failure of a subcommand into `fail`'s one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `imagepipe ... | head`: the reader is gone, nothing to say
            sys.stderr.close()
            sys.exit(0)
        except Exception as exc:
            fail(ctx, exc)
