"""The one runtime wiring of every command: the settings read from the environment (with the
embedded defaults of development, services/infra/settings.py), and the database, store and queue
built from them. A command that fails on a dependency says so in one line (cli/failures.py)."""

from __future__ import annotations

import sys

import click

from services.infra.runtime import Runtime, build_runtime
from services.infra.settings import ConfigError, Settings

from .failures import EXIT_USAGE, SETTINGS_KEY


def settings(role: str = "cli") -> Settings:
    """The settings a command of `role` needs (services/infra/settings.py ROLES: in production a
    command requires only what it uses)."""
    try:
        read = Settings.from_env(role=role)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # for the one-line error of a failure further on (cli/failures.py)
        ctx.find_root().meta[SETTINGS_KEY] = read
    return read


def runtime() -> Runtime:
    """The wiring (database, store, queue) for the commands that use the services."""
    return build_runtime(settings())
