"""py-spy profiles of running processes, and where their samples go.

A rule names the code it counts by the objects themselves (functions and modules, imported here),
not by file paths typed as strings: moving a module moves its rule with it, and a rule naming
something that no longer exists fails at import."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import FunctionType, ModuleType


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


class Profile:
    """py-spy sampling a process and its children (collapsed stacks), without stopping them."""

    def __init__(self, pid: int, out: Path, rate: int = 47):
        self.out, self.proc = out, None
        exe = py_spy()
        if exe:
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", str(rate),
                 "--format", "raw", "-o", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def stop(self) -> Counter | None:
        if self.proc is None:
            return None
        self.proc.send_signal(2)  # SIGINT: py-spy writes what it has
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        stacks: Counter = Counter()
        if self.out.exists():
            for line in self.out.read_text(errors="replace").splitlines():
                stack, _, n = line.rpartition(" ")
                if stack and n.isdigit():
                    stacks[stack] += int(n)
        return stacks


def _where(obj: object) -> str:
    """How py-spy's frames show `obj`: `Class.function (package/module.py` for a function, the
    module's file (`werkzeug/formparser.py`) or the package's folder (`sqlalchemy/`) for a module;
    derived from the dotted names, as py-spy shows paths below the import root."""
    if isinstance(obj, ModuleType):
        is_package = Path(inspect.getfile(obj)).name == "__init__.py"
        return obj.__name__.replace(".", "/") + ("/" if is_package else ".py")
    function = inspect.unwrap(obj)  # type: ignore[arg-type]
    assert isinstance(function, FunctionType), obj
    return f"{function.__qualname__} ({function.__module__.replace('.', '/')}.py"


class Rule:
    """A share of the samples: those whose stack passes through any of `code`."""

    def __init__(self, name: str, code: Iterable[object]):
        self.name = name
        self.needles = tuple(_where(c) for c in code)

    def matches(self, stack: str) -> bool:
        return any(needle in stack for needle in self.needles)


def classify(stacks: Counter, rules: list[Rule]) -> Counter:
    out: Counter = Counter()
    for stack, n in stacks.items():
        out[next((rule.name for rule in rules if rule.matches(stack)), "other")] += n
    return out


def leaf_functions(stacks: Counter, top: int = 8) -> list[tuple[str, int]]:
    leaves: Counter = Counter()
    for stack, n in stacks.items():
        leaves[stack.rsplit(";", 1)[-1]] += n
    return leaves.most_common(top)


def print_profile(title: str, stacks: Counter | None, rules: list[Rule]) -> dict:
    if stacks is None:
        print(f"{title}: py-spy not found (pip install py-spy); no profile")
        return {}
    total = sum(stacks.values()) or 1
    shares = classify(stacks, rules)
    print(f"{title}: {total} samples")
    for name, n in shares.most_common():
        print(f"    {name:28} {100 * n / total:5.1f} %")
    print("    hottest functions:", "; ".join(f"{f} {100 * n / total:.1f}%" for f, n in leaf_functions(stacks)))
    return {name: round(n / total, 4) for name, n in shares.items()} | {"samples": total}


def worker_rules() -> list[Rule]:
    """Where a worker's sample is spent, by the first rule its stack matches."""
    import billiard
    import celery
    import kombu
    import psycopg2
    import redis
    import sqlalchemy
    from PIL import JpegImagePlugin, WebPImagePlugin

    from pipeline import encoders, perceptual, placeholders, probe, render
    from services.images import process

    return [
        Rule("store (the I/O threads' writes)", [process.Writes._write, process.put_all]),
        Rule("fetch (prefetch thread)", [process.Prefetch._read]),
        Rule("encode jpeg (Pillow)", [JpegImagePlugin]),
        Rule("encode webp (Pillow)", [WebPImagePlugin]),
        Rule("encode png, avif (libvips)", [encoders.encode]),
        Rule("placeholders", [placeholders]),
        Rule("perceptual hash", [perceptual]),
        Rule("resize", [render.cascade]),
        Rule("decode", [render.decode_for_renditions]),
        Rule("probe", [probe]),
        Rule("database", [sqlalchemy, psycopg2]),
        Rule("broker", [kombu, redis]),
        Rule("celery / billiard", [celery, billiard]),
    ]


def api_decoding() -> Rule:
    import PIL
    import pyvips

    from pipeline import encoders, probe, render

    return Rule("pixel decoding", [pyvips, PIL, render, probe, encoders])


def api_rules() -> list[Rule]:
    import boto3
    import botocore
    import celery
    import gunicorn
    import kombu
    import psycopg2
    import redis
    import s3transfer
    import sqlalchemy
    import werkzeug
    from werkzeug import formparser
    from werkzeug.sansio import multipart

    from pipeline import sniff
    from services.images import ingest

    return [
        api_decoding(),
        Rule("store put (botocore)", [botocore, boto3, s3transfer]),
        Rule("sha256 / sniff", [ingest._digest, sniff]),
        Rule("multipart parsing", [formparser, multipart]),
        Rule("database", [sqlalchemy, psycopg2]),
        Rule("broker", [kombu, redis, celery]),
        Rule("gunicorn / werkzeug", [gunicorn, werkzeug]),
    ]
