"""What is generated from the settings' declarations: `.env.example` and the settings table of
docs/configuration.md and docs/deploy.md (`imagepipe config generate`; tests/services/infra/test_config.py
fails when either is stale), and the redacted listing `imagepipe check-config` prints."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from services.infra.declarations import GROUPS, describe, env_name, extra
from services.infra.settings import declarations, mask_url


def _default_text(field: FieldInfo) -> str:
    declared = extra(field)
    if declared["shown"]:
        return declared["shown"]
    value = field.default
    if value is None or value == "" or value == ():
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def env_example() -> str:
    """The text of .env.example."""
    lines = [
        "# imagepipe configuration, generated from services/infra/declarations.py by `imagepipe config generate`.",
        "# Every variable is optional in development (make run fills in embedded defaults); in production",
        "# (IMAGEPIPE_ENV=production) the ones marked [prod] are required. `imagepipe check-config`",
        "# validates a set of values without starting anything. docs/configuration.md explains each one.",
    ]
    for group, title in GROUPS.items():
        lines += ["", f"# --- {title}"]
        for _, field in declarations():
            declared = extra(field)
            if declared["group"] != group:
                continue
            notes = [(field.description or "").split(";")[0]]
            if declared["shown"]:
                notes.append(f"default: {declared['shown']}")
            if declared["aliases"]:
                notes.append(f"also read from {', '.join(declared['aliases'])}")
            required = "[prod] " if env_name(field) in _REQUIRED_IN_PRODUCTION else ""
            lines.append(f"# {required}{'; '.join(notes)}")
            if declared["secret"] or declared["shown"] or _default_text(field) == "":
                lines.append(f"# {env_name(field)}={'' if declared['secret'] else (declared['example'] or '')}")
            else:
                lines.append(f"{env_name(field)}={_default_text(field)}")
    return "\n".join(lines) + "\n"


_REQUIRED_IN_PRODUCTION = {"DATABASE_URL", "CELERY_BROKER_URL", "AWS_S3_BUCKET", "JWT_SECRET"}
DOCS_BEGIN, DOCS_END = "<!-- settings:begin (generated: imagepipe config generate) -->", "<!-- settings:end -->"


def docs_table() -> str:
    """The settings table of docs/configuration.md."""
    rows = [DOCS_BEGIN, "", "| variable | default | accepts | notes |", "|---|---|---|---|"]
    for group, title in GROUPS.items():
        rows.append(f"| **{title}** | | | |")
        for _, field in declarations():
            declared = extra(field)
            if declared["group"] != group:
                continue
            names = " or ".join(f"`{n}`" for n in (env_name(field), *declared["aliases"]))
            default = _default_text(field)
            accepts = describe(field) if describe(field) != "text" else ("secret" if declared["secret"] else "")
            notes = (field.description or "").replace("|", "\\|")
            if declared["secret"]:
                notes += " (secret: never printed)"
            rows.append(f"| {names} | {('`' + default + '`') if default else '—'} | {accepts} | {notes} |")
    rows += ["", DOCS_END]
    return "\n".join(rows)


def render_docs(current: str) -> str:
    """docs/configuration.md with its generated table replaced."""
    start, end = current.index(DOCS_BEGIN), current.index(DOCS_END) + len(DOCS_END)
    return current[:start] + docs_table() + current[end:]


def redacted(settings: Any) -> list[tuple[str, str, str]]:
    """(variable, value, group) of every setting, secrets hidden, for check-config."""
    out = []
    for name, field in declarations():
        value = getattr(settings, name)
        if extra(field)["secret"]:
            value = "(set)" if value else "(not set)"
        elif isinstance(value, str) and "://" in value:
            value = mask_url(value)
        elif isinstance(value, tuple):
            value = ",".join(value) or "none"
        out.append((env_name(field), str(value if value is not None else ""), extra(field)["group"]))
    return out
