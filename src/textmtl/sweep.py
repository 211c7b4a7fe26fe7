"""Run many independent jobs: a local process pool, or a Dask distributed cluster.

An executor takes a function, a list of payloads and one shared object (the data every job
reads), and yields ``(payload, result)`` as jobs finish, in any order. The shared object is sent
once per worker (a pool initializer, or ``Client.scatter(broadcast=True)``), not once per job.
The caller owns the results: it stores them as they arrive, so whatever finished before an
interruption is kept.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from .errors import ConfigError

_shared: Any = None


def _one_thread_per_worker() -> None:
    """Processes, not threads, share the cores: two 1-thread processes out-run one 2-thread one.

    Both torch and the BLAS behind numpy/scipy must be told: left alone, OpenBLAS starts a thread
    per core in every worker, and those threads spinning against the other worker's cost about a
    third of the study's throughput on 2 cores (measured, docs/meta-study.md). A limit covers
    only the libraries loaded when it is set, so it is set before every job (about 2 ms): a
    job may load another (scipy's own OpenBLAS, say).
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    global _thread_limits
    _thread_limits = threadpool_limits(limits=1)  # kept alive: the limit holds while it exists


_thread_limits: Any = None


#: how often a worker checks that its parent is alive when it has no pipe to watch (seconds)
PARENT_POLL_SECONDS = 1.0


def _exit_with_parent() -> None:
    """Make this pool worker exit as soon as the process that started it is gone.

    A ``kill -9`` of ``textmtl study`` gives the pool no chance to shut its workers down, and
    a spawned worker blocked on its call queue would then live forever (and with it the
    multiprocessing resource tracker, which exits only when every holder of its pipe has).
    A daemon thread therefore watches the parent: the spawn start method hands every child a
    pipe whose other end only the parent holds (``parent_process().sentinel``), which becomes
    readable the moment the parent dies; ``os.getppid()`` changing (re-parenting) is the
    fallback. ``os._exit``, not ``sys.exit``: the main thread may be inside a job, and nothing
    in the worker is worth flushing for a parent that can no longer receive it.

    PR_SET_PDEATHSIG is deliberately not used: it fires when the parent *thread* that started
    the worker exits, and the pool may start workers from whichever thread submits jobs.
    """
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    parent_pid = os.getppid()

    def watch() -> None:
        while True:
            if sentinel is not None:
                if multiprocessing.connection.wait([sentinel], timeout=PARENT_POLL_SECONDS):
                    os._exit(1)  # EOF on the pipe: the parent is gone
            else:
                threading.Event().wait(PARENT_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="textmtl-parent-watch", daemon=True).start()


def _init_worker(shared: Any) -> None:
    _exit_with_parent()
    global _shared
    _shared = shared


def _call_with_shared(fn: Callable[[Any, Any], Any], payload: Any) -> Any:
    _one_thread_per_worker()
    return fn(payload, _shared)


class LocalExecutor:
    """A pool of worker processes on this machine.

    Args:
        workers: processes (default: the machine's cores); 0 runs jobs in this process, which is
            what tests and debuggers want.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        if self.workers < 0:
            raise ConfigError(f"'workers' must be >= 0, got {self.workers}")

    def describe(self) -> str:
        return f"{self.workers} local worker process(es)" if self.workers else "this process"

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        payloads = list(payloads)
        if self.workers == 0:
            for payload in payloads:
                yield payload, fn(payload, shared)
            return
        # spawn, not fork: a forked child of a process that has run OpenMP code can hang
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker, initargs=(shared,))
        try:
            pending = {pool.submit(_call_with_shared, fn, p): p for p in payloads}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        except BaseException:
            # Ctrl-C, SIGTERM, a failed job or a caller that stopped reading: end the running jobs
            # now. Leaving the pool's context would wait for them, which for a 30-minute training
            # run is a 30-minute hang after Ctrl-C; what finished is already the caller's.
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers running the rest."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # private: so guarded
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=5)


class DaskExecutor:
    """Jobs on a Dask distributed cluster.

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.5:8786``; every worker needs textmtl
            installed (the shared data travels through the cluster, not the file system).
    """

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--scheduler needs Dask: pip install 'textmtl[dask]'") from None
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {error}") from None
        self.address = address

    def describe(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask cluster {self.address} ({len(workers)} worker(s))"

    def map(self, fn: Callable[[Any, Any], Any], payloads: Iterable[Any], shared: Any) -> Iterator[tuple[Any, Any]]:
        from distributed import as_completed

        shared_future = self.client.scatter(shared, broadcast=True, hash=False)
        futures = {}
        for payload in payloads:
            futures[self.client.submit(_dask_call, fn, payload, shared_future, pure=False)] = payload
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        self.client.close()


def _dask_call(fn: Callable[[Any, Any], Any], payload: Any, shared: Any) -> Any:
    # a Dask worker runs jobs on threads of one process; one compute thread each keeps them apart
    _one_thread_per_worker()
    return fn(payload, shared)
