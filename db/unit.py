"""One unit of work per request and per task.

Services change state in the session they are given and never commit. The scope that opened
the session (a request in api/app.py, a task phase in workers/) commits once; work that must
only happen once the change is durable (enqueueing a task, sending a callback, deleting
objects) is registered with `after_commit` and runs only if the commit succeeded. An action may
change the session again (a purge after the row is marked `deleting`); the scope then commits
that as well, and runs what it registered in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session, sessionmaker

_ACTIONS = "imagepipe.after_commit"


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run `action` once the session's current transaction has committed."""
    session.info.setdefault(_ACTIONS, []).append(action)


def commit(session: Session) -> None:
    """Commit, then run the after-commit actions (and commit what they changed), in order.
    For the scopes only: services never call it."""
    while True:
        session.commit()
        actions = session.info.pop(_ACTIONS, [])
        if not actions:
            return
        for action in actions:
            action()


def discard(session: Session) -> None:
    """Roll back and forget the actions registered for the abandoned transaction."""
    session.info.pop(_ACTIONS, None)
    session.rollback()


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    session = sessions()
    try:
        yield session
        commit(session)
    except BaseException:
        discard(session)
        raise
    finally:
        session.close()


# What services that run in several phases are given: a factory of unit-of-work scopes.
Units = Callable[[], AbstractContextManager[Session]]


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed (its result is a cursor result; the type says only Result)."""
    return cast(CursorResult[Any], result).rowcount
