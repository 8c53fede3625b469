"""A ``sqlite3`` connection on a thread of its own: each call from the event loop is one hop, and
write transactions queued meanwhile share one commit (group commit), each in its own savepoint."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.domain.errors import StoreError

BUSY_TIMEOUT_MS = 30_000
# Writes sharing one commit at most, so a long queue still commits (and answers) every so often.
MAX_GROUP = 32
T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]


def connect(path: str) -> sqlite3.Connection:
    """A connection set up as every connection of the store is: WAL, and commits that survive a
    killed process (``synchronous=NORMAL`` loses at most the last commits on power loss)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        db.close()
        raise
    return db


@dataclass(frozen=True)
class Outcome:
    """What one unit of work came to: its result, or the error it raised."""

    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Write:
    work: Work
    future: asyncio.Future[Any]


class DatabaseThread:
    """One ``sqlite3`` connection and the one thread that opens, uses and closes it.

    A connection must stay on the thread that made it, and each hop between the event loop and
    the thread costs a wake-up on both sides: so a caller hands over a whole unit of work at once.
    sqlite3 errors become StoreError on the way back."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._writes: queue.SimpleQueue[_Write] = queue.SimpleQueue()

    async def open(self, path: str) -> None:
        await self._hop(self._open, path)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with the connection (outside any transaction it does not begin itself)."""
        return await self._hop(self._run, work)

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` as a write transaction: all of it is committed, or none of it.

        Writes handed over while the thread is busy wait in a queue; the thread then runs them
        one after the other in one transaction, each in a savepoint of its own (an error undoes
        only its own part), commits once, and only then answers them all."""
        if self._closed:
            raise StoreError("the SQLite store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.put(_Write(work, future))
        # One drain per write: the first takes every write queued by then, later ones find
        # fewer or none, and no write is ever left without a drain behind it.
        self._executor.submit(self._commit_queued)
        try:
            return await future
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection after the work already handed over, then let the thread end."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._hop(self._close, force=True)
        finally:
            # The thread is idle (or finishing the close if this was cancelled): it ends at once.
            self._executor.shutdown(wait=False)

    async def _hop(self, function: Callable[..., T], *args: Any, force: bool = False) -> T:
        if self._closed and not force:
            raise StoreError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {type(exc).__name__}: {exc}") from exc

    # On the thread ------------------------------------------------------------------------------

    def _open(self, path: str) -> None:
        self._db = connect(path)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StoreError("the SQLite store is closed")
        return work(self._db)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _commit_queued(self) -> None:
        group: list[_Write] = []
        while len(group) < MAX_GROUP:
            try:
                write = self._writes.get_nowait()
            except queue.Empty:
                break
            if not write.future.cancelled():  # a caller that gave up before it ran
                group.append(write)
        if not group:
            return
        try:
            if self._db is None:
                raise StoreError("the SQLite store is closed")
            outcomes = commit_group(self._db, [write.work for write in group])
        except BaseException as exc:  # every waiting caller must hear of it
            outcomes = [Outcome(error=exc)] * len(group)
        _answer(list(zip(group, outcomes, strict=True)))


def _answer(answers: list[tuple[_Write, Outcome]]) -> None:
    """Settle each caller's future on its own loop: one wake-up per loop for the whole group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Write, Outcome]]] = {}
    for write, outcome in answers:
        by_loop.setdefault(write.future.get_loop(), []).append((write, outcome))
    for loop, group in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, group)


def _settle(group: list[tuple[_Write, Outcome]]) -> None:
    for write, outcome in group:
        if write.future.done():  # cancelled meanwhile
            continue
        if outcome.error is None:
            write.future.set_result(outcome.result)
        else:
            write.future.set_exception(outcome.error)


def commit_group(db: sqlite3.Connection, works: list[Work]) -> list[Outcome]:
    """Run each of ``works`` as if in a transaction of its own, committing them together.

    Each runs in a savepoint: an error rolls back only its own part. An error that ends the whole
    transaction (SQLite rolls back on disk full or I/O errors) fails that work; the others are
    run again from the start in a new transaction (they only read and write the database)."""
    if len(works) == 1:
        return [_alone(db, works[0])]
    outcomes: dict[int, Outcome] = {}
    todo = list(range(len(works)))
    while todo:
        done: dict[int, Outcome] = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            for index in todo:
                outcome = _in_savepoint(db, works[index])
                if outcome.error is not None:
                    outcomes[index] = outcome
                    if not db.in_transaction:
                        break
                else:
                    done[index] = outcome
            if db.in_transaction:
                db.execute("COMMIT")
                outcomes.update(done)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        todo = [index for index in todo if index not in outcomes]
    return [outcomes[index] for index in range(len(works))]


def _alone(db: sqlite3.Connection, work: Work) -> Outcome:
    try:
        return Outcome(result=in_transaction(work, db))
    except Exception as exc:  # handed to the caller
        return Outcome(error=exc)


def _in_savepoint(db: sqlite3.Connection, work: Work) -> Outcome:
    db.execute("SAVEPOINT member")
    try:
        result = work(db)
    except Exception as exc:  # handed to the caller
        if db.in_transaction:
            db.execute("ROLLBACK TO member")
            db.execute("RELEASE member")
        return Outcome(error=exc)
    db.execute("RELEASE member")
    return Outcome(result=result)


def in_transaction(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """Run ``work`` as one write transaction: all of it is committed, or none of it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # some errors (disk full, I/O) have already rolled it back
            db.execute("ROLLBACK")
        raise
    return result


def in_snapshot(work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """Run several reads of ``work`` against one consistent state of the database."""
    db.execute("BEGIN")
    try:
        return work(db)
    finally:
        if db.in_transaction:
            db.execute("COMMIT")
