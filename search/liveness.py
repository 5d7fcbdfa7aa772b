"""Workers that die or are stopped: heartbeats, retries, and a clean release on SIGTERM.

Every process that trains a study's trials opens Optuna's storage through
:func:`study_storage`, which turns on Optuna's own heartbeat: while a trial runs, a thread
of its worker writes a heartbeat every ``heartbeat_interval`` seconds. Before starting each
trial, a worker fails the trials whose heartbeat is older than ``grace_period`` (Optuna's
``fail_stale_trials``) and calls :class:`RetryDeadTrial` for each: the project's
``trial_results`` row is marked failed with the reason, and Optuna's
``RetryHeartbeatStaleTrialCallback`` (named ``RetryFailedTrialCallback`` before Optuna 4.9, a
deprecated alias in 5.x) queues the same parameters again as a new trial, which
workers run before sampling new ones (after any trials queued earlier, e.g. warm starts). The settings live with the study (user attribute
``vlpetl_liveness``), so every worker judges every other by the same clock.

A worker asked to stop (SIGTERM from ``docker compose stop``, a scheduler or
``search.launch``; SIGINT from Ctrl-C) does not wait for the grace period: :class:`WorkerGuard`
interrupts the running trial, and the worker releases it the same way (failed with the
reason, queued again) before it exits. Completed trials are never touched.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from search.trial_info import worker_id
from storage import TrialRecord, TrialStatus, mark_trial_failed, record_trial
from storage.engine import is_disconnect, retry_on_disconnect, write_refusal
from storage.urls import is_sqlite

log = logging.getLogger(__name__)

__all__ = [
    "LIVENESS_ATTR",
    "Liveness",
    "ReconnectingRDBStorage",
    "RetryDeadTrial",
    "WorkerGuard",
    "WorkerStopped",
    "await_other_trials",
    "earlier_attempts",
    "fail_dead_trials",
    "release_trial",
    "study_liveness",
    "study_storage",
]

LIVENESS_ATTR = "vlpetl_liveness"


@dataclass(frozen=True)
class Liveness:
    """How a study's workers prove they are alive, and how often a dead trial is retried.

    Attributes:
        heartbeat_interval: seconds between two heartbeats of a running trial.
        grace_period: seconds without a heartbeat after which the trial counts as dead.
        max_retry: how many times one trial is queued again; a configuration that kills its
            worker every time (out of memory, say) is given up after that.
    """

    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 2

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("Invalid liveness settings:\n  - " + "\n  - ".join(problems))

    def problems(self) -> list[str]:
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool):
                found.append(f"{f.name} must be a whole number of seconds or retries, but got {value!r}")
        if found:
            return found
        if self.heartbeat_interval < 1:
            found.append(f"heartbeat_interval must be >= 1 second, but got {self.heartbeat_interval}")
        if self.grace_period < 2 * self.heartbeat_interval:
            found.append(
                "grace_period >= 2 * heartbeat_interval must hold, so that one late heartbeat does not "
                f"fail a live trial, but got ({self.grace_period=}, {self.heartbeat_interval=})"
            )
        if self.max_retry < 0:
            found.append(f"max_retry must be >= 0 (0: never retry), but got {self.max_retry}")
        return found

    def to_attr(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_attr(cls, data: Any) -> "Liveness":
        """The settings stored with a study; the defaults when it has none.

        Raises:
            ValueError: If the stored value is not a mapping of known fields with valid values.
        """
        if data is None:
            return cls()
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ValueError(
                f"study attribute {LIVENESS_ATTR!r} must map some of {sorted(known)} to numbers, but got {data!r}; "
                f"fix it with study.set_user_attr({LIVENESS_ATTR!r}, {cls().to_attr()})"
            )
        return cls(**data)


def _stored_liveness(url: str, study_name: str) -> Liveness:
    plain = RDBStorage(url)
    try:
        study_id = plain.get_study_id_from_name(study_name)
        return Liveness.from_attr(plain.get_study_user_attrs(study_id).get(LIVENESS_ATTR))
    except KeyError:  # a study about to be created: it will get the defaults
        return Liveness()
    finally:
        plain.engine.dispose()


# RDBStorage calls that a repeat cannot harm: reads, and writes that set a value or add a
# parameter (a repeat after a dropped connection sets the same; a parameter or heartbeat
# already inserted is an integrity error Optuna ignores). Not create_new_trial: a repeat
# after a commit whose answer was lost would leave a second, orphaned trial.
# The underscored ones are what Optuna's _CachedStorage, which every Study wraps its storage
# in, calls instead of the public names: trial.suggest_* goes through _set_trial_param and
# study.get_trials through _get_trials, so without them a cut fails a trial as it samples.
_REPEATABLE = (
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "get_best_trial", "get_trial_param",
    "set_study_user_attr", "set_study_system_attr", "set_trial_user_attr", "set_trial_system_attr",
    "set_trial_param", "set_trial_intermediate_value", "set_trial_state_values", "record_heartbeat",
    "_set_trial_param", "_get_trials", "_get_best_trial_id", "_get_stale_trial_ids",
)  # fmt: skip


def _reconnecting(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    def call(self: RDBStorage, *args: Any, **kwargs: Any) -> Any:
        return retry_on_disconnect(lambda: _unwrap(method, self, *args, **kwargs), f"optuna {name}")

    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


def _unwrap(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Optuna turns a dropped connection into StorageInternalError; hand the database's error on.
    try:
        return method(*args, **kwargs)
    except optuna.exceptions.StorageInternalError as error:
        if isinstance(error.__cause__, DBAPIError) and is_disconnect(error.__cause__):
            raise error.__cause__ from None
        raise


class ReconnectingRDBStorage(RDBStorage):
    """Optuna's RDB storage, whose repeatable calls survive a connection the server dropped.

    ``pool_pre_ping`` replaces a pooled connection that died while idle; a connection cut in
    the middle of a call (a failover, ``pg_terminate_backend``) fails that call, which is run
    again with backoff (``storage.engine.retry_on_disconnect``). Without it, a trial whose
    objective asked the storage at that moment would fail, or lose its result.
    """


for _name in _REPEATABLE:
    setattr(ReconnectingRDBStorage, _name, _reconnecting(_name))


def study_storage(url: str, engine: Engine, study_name: str) -> RDBStorage:
    """Optuna's storage at ``url`` with heartbeats on, dead trials retried, dropped connections survived.

    Args:
        url: The study database (the same URL as ``engine``'s).
        engine: Our read-write engine, where a dead trial's row is marked failed.
        study_name: The study whose liveness settings apply (defaults if it has none yet).

    Returns:
        An ``RDBStorage`` for ``optuna.create_study`` / ``optuna.load_study``.

    Raises:
        ValueError: If the study stores invalid liveness settings.
    """
    liveness = _stored_liveness(url, study_name)
    # Optuna sets pool_pre_ping only for MySQL: without it, the first query after the server
    # closed a pooled connection (a restart, a failover, an idle timeout) fails the worker.
    engine_kwargs = {} if is_sqlite(url) else {"pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are marked experimental since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return ReconnectingRDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=liveness.heartbeat_interval,
            grace_period=liveness.grace_period,
            heartbeat_stale_trial_callback=RetryDeadTrial(engine, liveness),
        )


def study_liveness(study: optuna.Study) -> Liveness:
    """The study's liveness settings (the defaults when it stores none).

    Only read here: workers starting together would race to write the attribute; a study
    that stores none uses the defaults in every worker, which is the same thing.
    """
    return Liveness.from_attr(study.user_attrs.get(LIVENESS_ATTR))


def earlier_attempts(trial: optuna.Trial) -> list[int]:
    """The trials that ``trial`` retries, oldest first; empty for a trial that is not a retry."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(RetryHeartbeatStaleTrialCallback.retry_history(frozen))


def _retry_number(study: optuna.Study, number: int) -> int | None:
    for trial in study.get_trials(deepcopy=False):
        if trial.system_attrs.get("retry_history", [])[-1:] == [number]:
            return trial.number
    return None


def release_trial(study: optuna.Study, trial: FrozenTrial, cause: str, engine: Engine, max_retry: int) -> int | None:
    """Queue a failed trial again (unless retried too often) and record why it failed.

    Args:
        study: The trial's study.
        trial: The trial, already failed in Optuna.
        cause: What stopped it, for the ``error`` column.
        engine: Our read-write engine.
        max_retry: Retries allowed for one original trial.

    Returns:
        The number of the new trial, or None when it was not queued again.
    """
    # Read before the callback: it appends to the trial's own retry_history list.
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, trial)
    retry = _retry_number(study, trial.number)
    if retry is not None:
        reason = f"{cause}; queued again as trial {retry}"
    else:
        reason = (
            f"{cause}; not queued again: trial {history[0]} already ran {len(history)} times "
            f"(trials {', '.join(map(str, history))}; at most {max_retry} retries)"
        )
    if not mark_trial_failed(engine, study.study_name, trial.number, reason):
        _record_unrecorded(engine, study.study_name, trial, reason)
    log.warning("trial %d failed: %s", trial.number, reason)
    return retry


def _record_unrecorded(engine: Engine, study_name: str, trial: FrozenTrial, reason: str) -> None:
    """Write the failed row of a trial whose worker died before writing any: every trial has one."""
    config, trainable, total = (trial.user_attrs.get(k) for k in ("config", "trainable_params", "total_params"))
    if config is None or trainable is None or total is None:
        # Its worker stopped within milliseconds of starting it, before counting its parameters.
        log.warning("trial %d has no result row: its worker stopped before counting its parameters", trial.number)
        return
    record_trial(
        engine,
        TrialRecord(
            study_name=study_name, trial_number=trial.number, status=TrialStatus.FAILED.value, method=config["method"],
            config=config, trainable_params=trainable, total_params=total, error=reason, finished_at=datetime.now(UTC),
        ),
    )  # fmt: skip


class RetryDeadTrial:
    """Optuna's heartbeat-stale callback: mark our row failed with the reason, queue the trial again.

    Optuna fails a stale trial in one worker only (the state change is atomic), so each
    dead trial is released exactly once.
    """

    def __init__(self, engine: Engine, liveness: Liveness):
        self.engine = engine
        self.liveness = liveness

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        cause = (
            f"its worker stopped sending heartbeats for over {self.liveness.grace_period} s "
            f"(killed, out of memory, or its machine lost); noticed by worker {worker_id()}"
        )
        release_trial(study, trial, cause, self.engine, self.liveness.max_retry)


def fail_dead_trials(study: optuna.Study) -> None:
    """Release the study's dead trials now (Optuna does it only before starting a trial)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# Optuna keeps heartbeats in its own tables and exposes no read of them; its schema is stable
# (versioned by its migrations) and lives in the same database as our results.
_RUNNING_HEARTBEATS = text(
    "SELECT t.number, h.heartbeat FROM trials t JOIN studies s ON s.study_id = t.study_id "
    "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id WHERE s.study_name = :study AND t.state = 'RUNNING'"
)


def _running_heartbeats(engine: Engine, study_name: str) -> dict[int, Any]:
    def read() -> dict[int, Any]:
        with engine.connect() as connection:
            return {int(number): beat for number, beat in connection.execute(_RUNNING_HEARTBEATS, {"study": study_name})}

    return retry_on_disconnect(read, "reading the study's heartbeats")


def await_other_trials(study: optuna.Study, engine: Engine, time_left: float | None = None) -> bool:
    """Before a worker leaves: wait until every trial still running is known alive, or released as dead.

    A worker whose study reached its goal while another worker's trial was still running
    cannot tell whether that worker lives: if it was killed a moment ago, its trial goes stale
    only after the grace period, and a study whose every worker had left by then would keep
    it "running", never retried. So the worker watches each running trial: one whose
    heartbeat moves is alive (its own worker will finish it); one that stops being running
    was finished; one that goes stale is released here (failed, queued again) and the worker
    goes back to train the retry. The wait is one heartbeat interval when the others are
    alive, at most the grace period when one is dead.

    Args:
        study: The study, on the heartbeat storage (:func:`study_storage`).
        engine: An engine on the study's database.
        time_left: Seconds the worker may still spend (its time limit), None for no limit.

    Returns:
        Whether a dead trial was released (there may be a retry to train now).
    """
    liveness = study_liveness(study)
    first = _running_heartbeats(engine, study.study_name)
    if not first:
        return False
    log.info("waiting for trials %s of other workers to show they are alive", ", ".join(map(str, sorted(first))))
    deadline = time.monotonic() + liveness.grace_period + 2 * liveness.heartbeat_interval
    if time_left is not None:
        deadline = min(deadline, time.monotonic() + time_left)
    watching = set(first)
    while watching and time.monotonic() < deadline:
        time.sleep(liveness.heartbeat_interval)
        fail_dead_trials(study)
        now = _running_heartbeats(engine, study.study_name)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        if any(n not in now and states.get(n) == TrialState.FAIL for n in watching):
            return True
        watching = {n for n in watching if n in now and now[n] == first[n]}
    return False


def _storage_outage(error: BaseException) -> bool:
    """A lost database connection, raised by our storage calls or through Optuna's.

    Optuna wraps every SQLAlchemy error of a commit in a StorageInternalError, the ones a cut
    connection leaves behind included (the driver's "connection is closed" InterfaceError, a
    session that must roll back first), not only the OperationalError `is_disconnect` knows. Such
    a trial is the database's failure, not its configuration's: queued again (as often as the
    study's max_retry allows). Only bad data (DataError, IntegrityError) and a database that
    refuses writes (a full disk: search.cli_common ends the run) are not outages.
    """
    if isinstance(error, optuna.exceptions.StorageInternalError):
        cause = error.__cause__
        return not isinstance(cause, (DataError, IntegrityError)) and write_refusal(error) is None
    return isinstance(error, DBAPIError) and is_disconnect(error)


def _free_interrupted_frames(stop: BaseException) -> None:
    """Drop the locals of every frame the stop unwound, and so what only they held.

    Why: the stop is raised wherever the trial is, and library code is not always safe against
    it. transformers (5.x) starts its weight-loading thread pool outside its try/finally, so a
    stop that lands while the pool starts a thread leaves that thread unregistered and the pool
    never shut down. The thread waits for work until the pool is freed, and the interpreter's
    exit waits for the thread: a launcher printed its stop and then hung (CI, 2026-12-07). The
    pool is held by its loader's frame, which the exception's traceback keeps alive; clearing
    the frames frees it, and a freed pool wakes its threads, which end.
    """
    traceback.clear_frames(stop.__traceback__)


# How long a stopped trial may go on before the stop is raised again (WorkerGuard._insist).
_STOP_REPEAT_SECONDS = 5


class WorkerStopped(KeyboardInterrupt):
    """Raised inside a running trial when its worker is asked to stop.

    A KeyboardInterrupt, so that no ``except Exception`` in training code swallows it and
    Optuna marks the trial failed and re-raises it out of ``study.optimize``.
    """


class WorkerGuard:
    """Wraps a worker's objective: clean stops on SIGTERM / SIGINT, and no zombie results.

    Stop signals: while a trial runs, the signal interrupts it (:class:`WorkerStopped`) and
    :meth:`release` queues it again; between trials the study stops after the trial being
    told; before the first trial (the benchmark being prepared, say) nothing is claimed yet
    and the process exits at once with ``128 + signal number``.

    Zombies: a worker that stalled past the grace period (paused, cut off from the database)
    may finish a trial that another worker already failed and queued again. Its result would
    then be recorded ``complete`` while Optuna says failed; the guard marks the row failed
    again, and Optuna refuses the late result (``Cannot tell a FAIL trial``, which Optuna 5.0
    surfaces as an AssertionError), which :attr:`overtaken` lets the worker recognise and survive.

    Usage::

        guard = WorkerGuard(study, engine, liveness)
        guard.install()
        try:
            run(guard.wrap(objective))
        except WorkerStopped as stop:
            guard.release(stop)
    """

    def __init__(self, study: optuna.Study, engine: Engine, liveness: Liveness):
        self.study = study
        self.engine = engine
        self.liveness = liveness
        self.signal_name: str | None = None
        self.exit_code = 0
        self.current: optuna.Trial | None = None
        self.interrupted: int | None = None  # the trial a stop signal interrupted
        self.overtaken: int | None = None  # the last trial failed by another worker while it ran here

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def wrap(self, objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
        """The objective, interruptible by the stop signals and checked for zombie results."""

        def run(trial: optuna.Trial) -> Any:
            self.current = trial
            try:
                try:
                    if self.signal_name is not None:  # arrived between Optuna's ask and here
                        self._interrupt()
                    values = objective(trial)
                finally:
                    self.current = None
                self._check_still_running(trial.number)
            except optuna.TrialPruned:
                raise
            except Exception as error:  # Optuna fails the trial: our row must agree
                if _storage_outage(error):
                    self._release_after_outage(trial.number, error)
                else:
                    self._fail_row(trial.number, error)
                raise
            return values

        return run

    def _fail_row(self, number: int, error: Exception) -> None:
        """Mark the row of a trial whose objective raised failed, unless it says so already.

        The objective writes its own failed row for errors in training; this covers an error
        after its outcome was written (a ``complete`` or ``infeasible`` row), which would
        otherwise leave the two tables disagreeing: the row counted as a result that Optuna
        (and so the sampler and the study's goal) never got.
        """
        reason = f"failed after its outcome was recorded: {type(error).__name__}: {error}".strip()
        if mark_trial_failed(self.engine, self.study.study_name, number, reason, keep_failed=True):
            log.warning("trial %d: %s", number, reason)

    def _release_after_outage(self, number: int, error: Exception) -> None:
        """A trial the database failed (the connection stayed down through every retry) is
        queued again, as a dead worker's is: the configuration is not at fault."""
        trial = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is None or trial.state != TrialState.RUNNING:
            return  # another worker declared it dead and queued it already
        cause = f"the study database failed on worker {worker_id()} ({type(error).__name__})"
        release_trial(self.study, trial, cause, self.engine, self.liveness.max_retry)

    def _check_still_running(self, number: int) -> None:
        failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if any(t.number == number for t in failed):
            self.overtaken = number
            reason = (
                f"finished on worker {worker_id()} after another worker had declared it dead (no heartbeat "
                f"for over {self.liveness.grace_period} s) and queued it again; the retry counts instead"
            )
            mark_trial_failed(self.engine, self.study.study_name, number, reason)
            log.warning("trial %d: %s", number, reason)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal_name is not None:
            if self.current is not None and self.current.number == self.interrupted:
                self._interrupt()  # the stop raised before was lost (see _insist): raise it again
            return  # already stopping: let the release finish
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        log.warning("%s received: stopping (a running trial is released and queued again)", self.signal_name)
        if self.current is not None:
            self._insist(signum, self.current.number)
            self._interrupt()
        try:
            self.study.stop()  # between trials: the loop ends after the trial being told
        except RuntimeError:  # not in the optimisation loop: nothing is claimed
            raise SystemExit(self.exit_code) from None

    def _insist(self, signum: int, number: int) -> None:
        """Signal the main thread again while trial `number` still runs, every few seconds.

        Why: the stop is raised wherever the main thread is, and Python prints and drops an
        exception raised inside a weakref callback or a ``__del__``; the trial then trained on to
        its end (CI, 2026-12-07: "Exception ignored in: WeakKeyDictionary...remove"). A stop that
        went through leaves the trial within milliseconds, long before the first repeat.
        """

        def watch() -> None:
            while True:
                time.sleep(_STOP_REPEAT_SECONDS)
                current = self.current
                if current is None or current.number != number:
                    return
                log.warning("trial %d still runs %s s after the stop: stopping it again", number, _STOP_REPEAT_SECONDS)
                signal.pthread_kill(threading.main_thread().ident or 0, signum)

        threading.Thread(target=watch, name="stop-repeat", daemon=True).start()

    def _interrupt(self) -> None:
        assert self.current is not None
        self.interrupted = self.current.number
        raise WorkerStopped(f"worker {worker_id()} was stopped by {self.signal_name} before the trial finished")

    def release(self, stop: WorkerStopped) -> int | None:
        """Queue the interrupted trial again and record why it failed.

        Args:
            stop: The exception the stop signal raised, caught by the caller.

        Returns:
            The number of the new trial; None when no trial was interrupted, it was not
            failed in Optuna (it had finished), or it was retried too often already.
        """
        if self.interrupted is None:
            return None
        _free_interrupted_frames(stop)
        trial = next((t for t in self.study.get_trials(deepcopy=False) if t.number == self.interrupted), None)
        if trial is None or trial.state != TrialState.FAIL:
            return None
        cause = f"worker {worker_id()} was stopped by {self.signal_name} before the trial finished"
        return release_trial(self.study, trial, cause, self.engine, self.liveness.max_retry)
