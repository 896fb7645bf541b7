"""The shared budget: trial slots reserved atomically in the study's database.

Optuna's ``MaxTrialsCallback`` counts trials after they finish, so m workers overshoot a trial
budget by up to m. Here a worker reserves a *slot* before it trains: one conditional ``UPDATE``
(``... SET trials = trials + 1 WHERE trials < max AND seconds fit``), which the database applies
atomically under concurrent workers (a row lock in PostgreSQL, the write lock in SQLite). Each slot
is keyed by the trial's identity (``trial_key``), so a trial that is re-queued after its worker
died re-uses its slot instead of taking a new one. Device seconds are reserved the same way: the
forecast when a trial starts, replaced by the measured seconds when it ends.

Workers also beat a heartbeat on their slot from a background thread, whatever runs the trial; a
slot whose heartbeat is older than the grace period belongs to a dead worker, and its trial is
re-queued by whichever worker notices first. Heartbeats are written and judged by the database's
clock, one for all workers (by each worker's own, one whose clock ran a minute ahead took the live
trials of all the others). A worker whose slot was taken over (it stopped beating for longer than
the grace period: a paused VM, a suspended laptop, a network partition) finds its beat refused
(fencing: only the slot's worker, while it is running, may beat it) and drops the trial
(:meth:`lost`), rather than train on beside the worker that took it over.

A session that ends with claims still open (its database went away mid-trial) leaves them to this
process's next session (:func:`ended_claims`): their worker, this process, is known to be off
them, so that session takes them back at once instead of waiting a grace period for them to go
stale (``budgetnas search/worker --db-wait`` runs it in the same process once the database is back).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

log = logging.getLogger("budgetnas")
_META = sa.MetaData()

# Bounds on a PostgreSQL connection (libpq's options). Without them a worker whose database host
# vanished while it waited for an answer (a spot instance, a network partition: no reset sent;
# a row-lock wait, a heartbeat) waited for ever, its trial's slot held, and one connecting to a
# host that drops packets waited minutes (review, 2026-12-07). Keepalives find a silent server in
# about a minute (idle 30 s, then 3 probes 10 s apart); ``tcp_user_timeout`` (libpq 12+) ends a
# send left unacknowledged a minute, where keepalives are not sent. The error is a database
# outage: ``--db-wait`` waits for the server and runs the session again.
CONNECT_TIMEOUT = 10
_PG_OPTIONS = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
TCP_USER_TIMEOUT_MS = 60_000


def _libpq_version(driver: str) -> int:
    try:
        if driver == "psycopg":
            import psycopg
            return int(psycopg.pq.version())
        import psycopg2.extensions
        return int(psycopg2.extensions.libpq_version())
    except (ImportError, AttributeError):  # (no driver: opening the database says so)
        return 0


def connect_args(url: str) -> dict[str, object]:
    """The DBAPI ``connect_args`` for the study's database at ``url``: SQLite's busy timeout; for
    PostgreSQL through libpq (psycopg2, psycopg), a connect timeout and keepalives, each unless
    the URL sets it itself (``?connect_timeout=30``)."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return {}  # (create_engine says what is wrong with it)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    if backend == "sqlite":
        return {"timeout": 60}
    if backend != "postgresql" or driver not in ("psycopg2", "psycopg"):
        return {}  # (another driver spells its options its own way)
    wanted: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT, **_PG_OPTIONS}
    if _libpq_version(driver) >= 120000:
        wanted["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    return {k: v for k, v in wanted.items() if k not in u.query}


BUDGET = sa.Table(
    "budgetnas_budget", _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("trials", sa.Integer, nullable=False, default=0),
    sa.Column("seconds_reserved", sa.Float, nullable=False, default=0.0),
    sa.Column("seconds_committed", sa.Float, nullable=False, default=0.0),
)
SLOTS = sa.Table(
    "budgetnas_slots", _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("trial_key", sa.String(64), primary_key=True),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # running | requeued | done
    sa.Column("forecast", sa.Float, nullable=False, default=0.0),
    sa.Column("heartbeat", sa.Float, nullable=False),
)


# Keys of one-off job claims (claim_job: the final training) start with this; trial keys are
# uuid hex, so the two never meet in the slots table.
JOB_PREFIX = "final:"
# Keys of study-wide locks (hold: a read-modify-write of the study's user attributes).
LOCK_PREFIX = "lock:"
# Keys of cells being trained (claim_job, by the evaluation cache's key): a worker proposed a cell
# another is training waits for its result instead of paying for it twice.
CELL_PREFIX = "cell:"
# The keys of slots that are no trial's: a key with none of them is a trial's (a uuid hex).
NON_TRIAL_PREFIXES = (JOB_PREFIX, LOCK_PREFIX, CELL_PREFIX)


def _trial_slots() -> list[sa.ColumnElement]:
    """SQL conditions that keep the slots of trials, leaving out job claims, locks and cells."""
    return [~SLOTS.c.trial_key.startswith(prefix) for prefix in NON_TRIAL_PREFIXES]


# Claims (slot key -> worker name) that sessions of this process left open when they ended (the
# database failed under them): by (database URL, study). Only the same worker name takes them back
# early (a worker is this host and process), and only while the slot is still that worker's.
_ENDED: dict[tuple[str, str], dict[str, str]] = {}
_ENDED_LOCK = threading.Lock()


def ended_claims(url: str, study: str) -> dict[str, str]:
    """The claims that ended sessions of this process left open on ``study`` at ``url``."""
    with _ENDED_LOCK:
        return dict(_ENDED.get((url, study), {}))


def database_failed(e: BaseException) -> bool:
    """Whether ``e`` is the study's database failing (gone, unreachable, locked, full, damaged), not
    a mistake in what was asked nor a bug: the session stops, and what is finished stays stored.

    A SQLite file damaged under a running search raises a bare ``DatabaseError`` ("file is not a
    database", "database disk image is malformed"), which is not an ``OperationalError``: it ended
    the search with sqlalchemy's traceback, 2026-12-06.
    """
    import sqlite3

    import optuna

    if isinstance(e, (OperationalError, sa.exc.InterfaceError, optuna.exceptions.StorageInternalError)):
        return True
    orig = getattr(e, "orig", None)
    # A server that refuses writes for a while: a read-only standby after a failover, one shutting
    # down or still starting (PostgreSQL's SQLSTATEs; psycopg2 names it pgcode, psycopg 3 sqlstate).
    if isinstance(e, sa.exc.DBAPIError) and (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) in (
            "25006", "57P01", "57P02", "57P03"):
        return True
    return isinstance(e, sa.exc.DatabaseError) and type(orig) is sqlite3.DatabaseError


@dataclass(frozen=True)
class Slot:
    trial_key: str
    forecast: float


class BudgetLedger:
    """Atomic trial and device-second reservations for one study, shared by all its workers."""

    def __init__(self, url: str, study: str, *, heartbeat_interval: float = 10.0) -> None:
        """Connect to ``url`` (the study's database) and create the tables if missing."""
        pool: dict[str, object] = {"poolclass": sa.pool.NullPool} if url.startswith("sqlite") else {"pool_pre_ping": True}
        self.engine = sa.create_engine(url, connect_args=connect_args(url), **pool)
        self.study = study
        self.url = url
        self.heartbeat_interval = heartbeat_interval
        for attempt in range(5):  # workers starting together race to create the tables
            try:
                _META.create_all(self.engine, checkfirst=True)
                break
            except (IntegrityError, ProgrammingError, OperationalError):
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        try:
            with self.engine.begin() as c:
                c.execute(sa.insert(BUDGET).values(study=study, trials=0, seconds_reserved=0.0,
                                                   seconds_committed=0.0))
        except IntegrityError:
            pass  # another worker created it first
        # slot key -> (the worker beating it, a token of this beating: a key closed and taken up
        # again by the same worker between a beat's read and its check is not a takeover)
        self._beating: dict[str, tuple[str, object]] = {}
        self._lost: set[str] = set()  # slots taken over by another worker while this one beat them
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _now(self) -> sa.ColumnElement:
        """The database's clock, in seconds since 1970 (as ``time.time()``), as a SQL expression:
        every worker's heartbeats are written and compared by this one clock."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return (sa.func.julianday("now") - 2440587.5) * 86400.0
        if dialect == "postgresql":
            return sa.cast(sa.func.extract("epoch", sa.func.now()), sa.Float)
        return sa.literal(time.time())  # (another database: this worker's clock)

    def clock_offset(self) -> float:
        """Seconds the database's clock is ahead of this machine's (negative: behind)."""
        with self.engine.connect() as c:
            t0 = time.time()
            server = float(c.execute(sa.select(self._now())).scalar_one())
            return server - (t0 + time.time()) / 2

    # -- reservations ---------------------------------------------------------------------------
    def reserve(self, trial_key: str, worker: str, *, max_trials: int | None,
                seconds_limit: float | None, forecast: float) -> Slot | None:
        """Take a slot for ``trial_key`` (or re-use its old one); None if the budget is spent."""
        now = self._now()
        with self.engine.begin() as c:
            # The slot's row locked first, then the budget's, as commit, extend, release and
            # claim_stale lock them. A retry reserved (budget, then slot) while its slot was
            # committed (slot, then budget) deadlocked under PostgreSQL, which aborts one of the
            # two: a database error, read as an outage. No caller interleaves them so today (a
            # repair commits only slots no retry waits for), but one lock order keeps it so
            # (review, 2026-12-07). (A new key has no row to lock.)
            old = c.execute(sa.select(SLOTS.c.forecast, SLOTS.c.state).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key).with_for_update()).first()
            if old is not None:
                forecast_now = float(old.forecast)
                if old.state == "requeued":
                    # A trial cut off earlier keeps its trial slot but gave its seconds back when
                    # it stopped: reserve its forecast again, under the same limit as a new one.
                    cond = [BUDGET.c.study == self.study]
                    if max_trials is not None:
                        # and only while the trials finished or running leave it room: a trial
                        # budget lowered on resume below the slots held (re-queued ones count) let
                        # every re-queued trial resume at once with --concurrent, beyond it (found
                        # 2026-12-07: 4 trials counted of 3). Counted in the statement that takes
                        # the slot, which SQLite runs under its write lock; PostgreSQL first locks
                        # the budget's row, so that the count sees every slot taken before (a
                        # blocked UPDATE re-checks only its row: its subquery kept the old snapshot,
                        # and two retries both resumed, a workers review found).
                        c.execute(sa.select(BUDGET.c.trials).where(BUDGET.c.study == self.study).with_for_update())
                        cond.append(sa.select(sa.func.count()).select_from(SLOTS).where(
                            SLOTS.c.study == self.study, SLOTS.c.trial_key != trial_key,
                            SLOTS.c.state.in_(("running", "done")),
                            *_trial_slots()
                        ).scalar_subquery() < max_trials)
                    if seconds_limit is not None:
                        cond.append(BUDGET.c.seconds_committed + BUDGET.c.seconds_reserved + forecast
                                    <= seconds_limit)
                    done = c.execute(sa.update(BUDGET).where(*cond).values(
                        seconds_reserved=BUDGET.c.seconds_reserved + forecast))
                    if done.rowcount != 1:
                        return None
                    forecast_now = forecast
                c.execute(sa.update(SLOTS).where(SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key)
                          .values(worker=worker, state="running", heartbeat=now, forecast=forecast_now))
                return Slot(trial_key, forecast_now)
            cond = [BUDGET.c.study == self.study]
            if max_trials is not None:
                cond.append(BUDGET.c.trials < max_trials)
            if seconds_limit is not None:
                cond.append(BUDGET.c.seconds_committed + BUDGET.c.seconds_reserved + forecast <= seconds_limit)
            done = c.execute(sa.update(BUDGET).where(*cond).values(
                trials=BUDGET.c.trials + 1, seconds_reserved=BUDGET.c.seconds_reserved + forecast))
            if done.rowcount != 1:
                return None
            c.execute(sa.insert(SLOTS).values(study=self.study, trial_key=trial_key, worker=worker,
                                              state="running", forecast=forecast, heartbeat=now))
        return Slot(trial_key, forecast)

    def extend(self, slot: Slot, seconds: float, *, seconds_limit: float, worker: str) -> Slot | None:
        """Reserve up to ``seconds`` more for a running trial that has used its forecast (a slower
        device than measured, a wrong forecast): as much as fits under ``seconds_limit`` beside
        every other reservation, atomically; the slot with its larger reservation, or None when
        nothing is left (the trial must stop: the budget is spent) or the slot is no longer this
        ``worker``'s running one (another worker took it over after a lapse of its heartbeat).
        Workers of a shared study each hold only what they reserved, so two trials outrunning
        their forecasts at once cannot both take the same last seconds."""
        with self.engine.begin() as c:
            # The slot's row first, as claim_stale and release lock them (PostgreSQL: no lock-order
            # deadlock); SQLite takes its write lock here, so nothing changes until the commit.
            mine = c.execute(sa.update(SLOTS).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == slot.trial_key, SLOTS.c.state == "running",
                SLOTS.c.worker == worker).values(heartbeat=self._now())).rowcount
            if mine != 1:
                self._mark_lost(slot.trial_key)  # (not the budget: the caller tells them apart by lost())
                return None
            row = c.execute(sa.select(BUDGET.c.seconds_reserved, BUDGET.c.seconds_committed)
                            .where(BUDGET.c.study == self.study).with_for_update()).first()
            grant = min(seconds, seconds_limit - float(row.seconds_committed) - float(row.seconds_reserved)) \
                if row is not None else 0.0
            if grant <= 0:
                return None
            c.execute(sa.update(BUDGET).where(BUDGET.c.study == self.study)
                      .values(seconds_reserved=BUDGET.c.seconds_reserved + grant))
            # (added to what the row holds, not to the caller's copy: an extension whose commit
            # went through while its answer was lost left the copy short, and the next one wrote
            # it back, the first grant reserved in the totals for good: a review, 2026-12-07)
            c.execute(sa.update(SLOTS).where(SLOTS.c.study == self.study, SLOTS.c.trial_key == slot.trial_key)
                      .values(forecast=SLOTS.c.forecast + grant))
            held = c.execute(sa.select(SLOTS.c.forecast).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == slot.trial_key)).scalar_one()
        return Slot(slot.trial_key, float(held))

    def holds(self, trial_key: str, worker: str) -> bool:
        """Whether ``worker`` still holds the running slot of ``trial_key`` (read now, in the
        database: before a trial that is about to stop saves its checkpoint and writes its
        records, which, taken over meanwhile, are another worker's)."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(SLOTS.c.worker, SLOTS.c.state).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key)).first()
        if row is not None and row.worker == worker and row.state == "running":
            return True
        self._mark_lost(trial_key)
        return False

    def release(self, slot: Slot) -> None:
        """Give a slot back unused (a cell served from the cache while its slot was reserved, a
        trial that never trained), with what it holds in the database: an extended slot holds more
        than the caller's copy may say. (The slot row first, then the totals, as commit does.)"""
        where = [SLOTS.c.study == self.study, SLOTS.c.trial_key == slot.trial_key]
        for _ in range(5):  # (SQLite reads before its write lock: a slot extended in between is read again)
            with self._closing(slot.trial_key), self.engine.begin() as c:
                row = c.execute(sa.select(SLOTS.c.forecast).where(*where).with_for_update()).first()
                if row is None:
                    return  # released once, however many workers try
                if c.execute(sa.delete(SLOTS).where(*where, SLOTS.c.forecast == row.forecast)).rowcount == 1:
                    c.execute(sa.update(BUDGET).where(BUDGET.c.study == self.study).values(
                        trials=BUDGET.c.trials - 1,
                        seconds_reserved=BUDGET.c.seconds_reserved - float(row.forecast)))
                    return

    def release_key(self, trial_key: str) -> None:
        """Release the slot of ``trial_key`` if it holds one (a trial that never trained)."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(SLOTS.c.forecast).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key)).first()
        if row is not None:
            self.release(Slot(trial_key, float(row.forecast)))

    def bill(self, seconds: float) -> None:
        """Add device seconds used outside any slot to the budget: those of a trial that was taken
        over (:meth:`lost`), whose slot is its new worker's now. They were spent all the same."""
        with self.engine.begin() as c:
            c.execute(sa.update(BUDGET).where(BUDGET.c.study == self.study).values(
                seconds_committed=BUDGET.c.seconds_committed + seconds))

    def commit(self, slot: Slot, seconds: float, *, finished: bool = True, worker: str | None = None) -> bool:
        """Replace the slot's forecast by the device seconds it used; ``finished`` closes it.

        Once only: a slot closed already (by another worker's repair of it, while this one was
        paused between recording its trial and committing: its forecast given back twice and its
        seconds counted twice) is left as it is, and False returned; with ``worker``, also one that
        is not that worker's any more. (The slot row first, then the totals, as claim_stale and
        extend lock them.)"""
        # (a worker commits its running slot; a repair, the slot it has just claimed, re-queued)
        mine = [SLOTS.c.study == self.study, SLOTS.c.trial_key == slot.trial_key,
                *([SLOTS.c.state.in_(("running", "requeued"))] if worker is None
                  else [SLOTS.c.state == "running", SLOTS.c.worker == worker])]
        with self._closing(slot.trial_key), self.engine.begin() as c:
            row = c.execute(sa.select(SLOTS.c.forecast).where(*mine).with_for_update()).first()
            if row is None or c.execute(sa.update(SLOTS).where(*mine, SLOTS.c.forecast == row.forecast).values(
                    state="done" if finished else "requeued", forecast=0.0)).rowcount != 1:
                return False
            c.execute(sa.update(BUDGET).where(BUDGET.c.study == self.study).values(
                seconds_reserved=BUDGET.c.seconds_reserved - float(row.forecast),  # (what the slot holds)
                seconds_committed=BUDGET.c.seconds_committed + seconds))
        return True

    def committed(self) -> float:
        """Device seconds committed by finished (or cut-off) trials."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(BUDGET.c.seconds_committed).where(BUDGET.c.study == self.study)).first()
        return float(row.seconds_committed) if row else 0.0

    def usage(self) -> tuple[int, float]:
        """(trial slots taken, device seconds committed + reserved)."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(BUDGET).where(BUDGET.c.study == self.study)).first()
        return (int(row.trials), float(row.seconds_committed + row.seconds_reserved)) if row else (0, 0.0)

    def stale(self, grace: float) -> set[str]:
        """Keys of slots whose worker has not beaten for ``grace`` seconds: running ones, and
        re-queued ones (a worker that claimed a dead trial and died before re-queuing it; the
        caller asks only about trials still running, so a trial waiting in the queue is not one)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(SLOTS.c.trial_key).where(
                SLOTS.c.study == self.study, SLOTS.c.state.in_(("running", "requeued")),
                sa.or_(SLOTS.c.heartbeat < self._now() - grace, self._ended()))).all()
        return {r.trial_key for r in rows}

    def silent(self, seconds: float) -> set[str]:
        """Keys of running trial slots whose worker has not beaten for ``seconds`` (fewer than a
        grace period: a worker that has missed a beat or two, probably dead, not yet stale)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(SLOTS.c.trial_key).where(
                SLOTS.c.study == self.study, SLOTS.c.state == "running",
                SLOTS.c.heartbeat < self._now() - seconds, *_trial_slots())).all()
        return {r.trial_key for r in rows}

    def _ended(self) -> sa.ColumnElement:
        """SQL condition: the slot is a claim an ended session of this process left open, and still
        that session's worker's."""
        pairs = ended_claims(self.url, self.study).items()
        if not pairs:
            return sa.false()
        return sa.or_(*(sa.and_(SLOTS.c.trial_key == k, SLOTS.c.worker == w) for k, w in pairs))

    def _leave(self, claims: dict[str, str]) -> None:
        """Leave ``claims`` (key -> worker), still open, to this process's next session."""
        if claims:
            with _ENDED_LOCK:
                _ENDED.setdefault((self.url, self.study), {}).update(claims)

    def _forget_ended(self, key: str) -> None:
        """``key`` is taken up again (by this process's new session, or its claim was settled)."""
        with _ENDED_LOCK:
            _ENDED.get((self.url, self.study), {}).pop(key, None)

    @contextlib.contextmanager
    def _taking_ended(self, key: str, worker: str):
        """For a block that takes over the claim ``key``: the SQL condition that it is an ended
        claim of ``worker`` (this process's own, taken back at once), held for this block alone
        (taken out of the registry first, so that a second claimant of this process, a thread or
        another Search, does not take it too, and put back unless the block says ``taken``)."""
        with _ENDED_LOCK:
            ended = _ENDED.get((self.url, self.study), {})
            own = ended.get(key) == worker
            if own:
                del ended[key]
        outcome = {"taken": False}
        try:
            yield (sa.and_(SLOTS.c.trial_key == key, SLOTS.c.worker == worker) if own else sa.false()), outcome
        finally:
            if own and not outcome["taken"]:
                with _ENDED_LOCK:
                    _ENDED.setdefault((self.url, self.study), {}).setdefault(key, worker)

    @contextlib.contextmanager
    def _closing(self, key: str):
        """Stop beating ``key`` for a block that closes its claim (first: a beat refused by the
        closed slot is no loss); if the block fails (the database went away), the claim is left
        to this process's next session as an ended one, as :meth:`close` leaves those still beaten."""
        with self._lock:
            beaten = self._beating.pop(key, None)
        try:
            yield
        except BaseException:
            if beaten is not None:
                self._leave({key: beaten[0]})
            raise

    def open_slots(self) -> list[Slot]:
        """Trial slots not closed yet (running or re-queued); one-off job claims are left out."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(SLOTS.c.trial_key, SLOTS.c.forecast).where(
                SLOTS.c.study == self.study, SLOTS.c.state.in_(("running", "requeued")),
                *_trial_slots())).all()
        return [Slot(r.trial_key, float(r.forecast)) for r in rows]

    def slot_keys(self) -> set[str]:
        """Keys of every slot of the study (trials that reserved one, and one-off jobs)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(SLOTS.c.trial_key).where(SLOTS.c.study == self.study)).all()
        return {r.trial_key for r in rows}

    def claim_stale(self, trial_key: str, worker: str, grace: float | None) -> bool:
        """Atomically take over a dead worker's slot (marking it re-queued, with a fresh heartbeat);
        True for exactly one claimant. ``grace=None``: whatever its heartbeat (a local run's new
        session, whose earlier processes are all dead). Only ``reserve`` makes a slot running again, so a retry that
        another worker has just picked up is never mistaken for a dead one.

        The dead attempt's forecast is given back in the same transaction (as a trial stopped by a
        signal gives it back when it commits): its retry reserves its own when it starts, and what
        the dead attempt used is on its trial's record. (It stayed reserved for good before: every
        dead worker's trial shrank the seconds budget of the study by its forecast.)
        """
        now = self._now()
        with self._taking_ended(trial_key, worker) as (own, outcome), self.engine.begin() as c:
            row = c.execute(sa.select(SLOTS.c.forecast).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key)).first()
            if row is None:
                return False
            done = c.execute(sa.update(SLOTS).where(
                SLOTS.c.study == self.study, SLOTS.c.trial_key == trial_key,
                SLOTS.c.state.in_(("running", "requeued")), SLOTS.c.forecast == row.forecast,
                *([] if grace is None else [sa.or_(SLOTS.c.heartbeat < now - grace, own)])).values(
                    heartbeat=now, worker=worker, state="requeued", forecast=0.0))
            if done.rowcount != 1:
                return False
            if row.forecast:
                c.execute(sa.update(BUDGET).where(BUDGET.c.study == self.study).values(
                    seconds_reserved=BUDGET.c.seconds_reserved - float(row.forecast)))
            outcome["taken"] = True
        return True

    # -- one-off jobs ---------------------------------------------------------------------------
    def claim_job(self, key: str, worker: str, grace: float) -> str:
        """Claim a job that exactly one worker of the study must do (the final training).

        Returns ``"claimed"`` (do it, then :meth:`finish_job`), ``"running"`` (a live worker has
        it) or ``"done"``. A claim whose worker stopped beating for ``grace`` seconds is taken
        over. The claim lives in the slots table with a key no trial uses; it takes no budget.
        """
        now = self._now()
        try:
            with self.engine.begin() as c:
                c.execute(sa.insert(SLOTS).values(study=self.study, trial_key=key, worker=worker,
                                                  state="running", forecast=0.0, heartbeat=now))
        except IntegrityError:
            with self._taking_ended(key, worker) as (own, outcome), self.engine.begin() as c:
                taken = c.execute(sa.update(SLOTS).where(
                    SLOTS.c.study == self.study, SLOTS.c.trial_key == key,
                    SLOTS.c.state.in_(("running", "requeued")), sa.or_(SLOTS.c.heartbeat < now - grace, own))
                    .values(worker=worker, state="running", heartbeat=now)).rowcount
                if not taken:
                    row = c.execute(sa.select(SLOTS.c.state).where(
                        SLOTS.c.study == self.study, SLOTS.c.trial_key == key)).first()
                    return "done" if row is not None and row.state == "done" else "running"
                outcome["taken"] = True
        self.start_beating(key, worker)
        return "claimed"

    def finish_job(self, key: str, *, done: bool = True, worker: str | None = None) -> None:
        """Mark a claimed job done (or hand it back with ``done=False``, e.g. when stopped); with
        ``worker``, only while the claim is still that worker's (not one taken over meanwhile)."""
        mine = [SLOTS.c.study == self.study, SLOTS.c.trial_key == key]
        if worker is not None:
            mine.append(SLOTS.c.worker == worker)
        with self._closing(key), self.engine.begin() as c:
            if done:
                c.execute(sa.update(SLOTS).where(*mine).values(state="done"))
            else:
                c.execute(sa.delete(SLOTS).where(*mine))

    @contextlib.contextmanager
    def hold(self, name: str, worker: str, grace: float, *, poll: float = 0.02):
        """Hold the study-wide lock ``name`` for the block: for a read-modify-write of the study's
        user attributes, which Optuna writes key by key with no compare-and-set (two workers
        reading the same value and each writing theirs lose one update). The lock is a claim row
        in the slots table, taken as :meth:`claim_job` takes one (a dead holder's is taken over
        after ``grace``) and deleted at the end. Not re-entrant."""
        key = LOCK_PREFIX + name
        while self.claim_job(key, worker, grace) != "claimed":
            time.sleep(poll)
        try:
            yield
        finally:
            self.finish_job(key, done=False)

    # -- heartbeat ------------------------------------------------------------------------------
    def start_beating(self, trial_key: str, worker: str) -> None:
        self._forget_ended(trial_key)  # (this session holds it now)
        with self._lock:
            self._beating[trial_key] = (worker, object())
            self._lost.discard(trial_key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat_loop, name="budgetnas-heartbeat",
                                                daemon=True)
                self._thread.start()

    def stop_beating(self, trial_key: str) -> None:
        with self._lock:
            self._beating.pop(trial_key, None)

    def abandon(self, trial_key: str) -> None:
        """Stop beating ``trial_key``, whose attempt ended with its claim open (an error, the
        database gone): the claim is left to this process's next session, as :meth:`close` leaves
        those still beaten."""
        with self._lock:
            beaten = self._beating.pop(trial_key, None)
        if beaten is not None:
            self._leave({trial_key: beaten[0]})

    def lost(self, trial_key: str) -> bool:
        """Whether the slot this worker beats for ``trial_key`` was taken over by another worker
        (its beat was refused): the trial is that worker's now, and this one must drop it."""
        return trial_key in self._lost

    def beat(self) -> None:
        """Beat every slot this worker holds, once: each only while it is still this worker's and
        running; one that is not any more is marked :meth:`lost` (and beaten no more)."""
        with self._lock:
            held = dict(self._beating)
        if not held:
            return
        refused = []
        with self.engine.begin() as c:
            for key, (worker, _) in held.items():
                if c.execute(sa.update(SLOTS).where(
                        SLOTS.c.study == self.study, SLOTS.c.trial_key == key, SLOTS.c.worker == worker,
                        SLOTS.c.state == "running").values(heartbeat=self._now())).rowcount != 1:
                    refused.append(key)
        for key in refused:
            self._mark_lost(key, held[key])

    def _mark_lost(self, key: str, beaten: tuple[str, object] | None = None) -> None:
        """``key``'s slot is not this worker's any more: beaten no more, and :meth:`lost`. With
        ``beaten`` (what a beat read), only if it is still that same beating: one closed meanwhile
        (and perhaps taken up again by this worker) was not taken over."""
        with self._lock:
            now = self._beating.get(key)
            if beaten is not None and now is not beaten:
                return
            self._beating.pop(key, None)
            self._lost.add(key)
        log.warning("this worker's claim %s was taken over by another worker (its heartbeat lapsed for longer "
                    "than the grace period): its work on it is dropped here", key)

    def _beat_loop(self) -> None:
        missed = 0
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                keys = list(self._beating)
            if keys:
                try:
                    self.beat()
                    missed = 0
                except Exception as e:  # a missed beat is retried at the next interval
                    missed += 1
                    if missed == 2:
                        log.warning("heartbeat to the study's database failed twice (%s); if this "
                                    "goes on, other workers will re-queue this worker's trial", e)

    def close(self) -> None:
        """Stop beating and disconnect. Claims still beaten (the session ended without closing
        them: its database went away mid-trial) are left to this process's next session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            left = {key: worker for key, (worker, _) in self._beating.items()}
            self._beating.clear()
        self._leave(left)
        self.engine.dispose()
