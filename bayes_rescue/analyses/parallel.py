"""Independent tasks on Dask: a local cluster on this machine's cores, or an existing scheduler.

``with dask_map(None) as mapper`` runs in this process (serial, lazily: a task runs when its result is
asked for, so a caller can show progress per task); ``dask_map("local")`` starts a
``dask.distributed.LocalCluster`` with one single-threaded worker process per core (scheduler and workers
on loopback) and closes it afterwards; ``dask_map("tcp://host:8786")`` uses that scheduler. Each task
carries its own seed, so results are identical wherever a task runs; each worker process keeps its own
compiled-model cache, so a structure is compiled once per worker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator

from bayes_rescue.errors import InputError


@contextlib.contextmanager
def dask_map(scheduler: str | None) -> Iterator[Callable[[Callable, Iterable], Iterator]]:
    """A ``map(fn, tasks)`` returning an iterator over the results in the order of ``tasks``, running in
    this process or on Dask (see the module docstring). Consume it inside the ``with`` block."""
    if scheduler in (None, "", "serial"):
        yield map
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "needs dask.distributed, which is not installed: pip install 'bayes_rescue[parallel]'", field="--scheduler"
        ) from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler ({exc})", field="--scheduler") from None
    try:

        def mapper(fn: Callable, tasks: Iterable) -> Iterator:
            futures = client.map(fn, list(tasks), pure=False)  # all submitted now
            return (f.result() for f in futures)  # each result as soon as it and those before it are done

        yield mapper
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
