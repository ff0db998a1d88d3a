"""Analysis worker processes: one slot, one worker loop, one job type for every runner.

- ``job``: ``Job`` (one file), the ``analyze`` task, answers and batch ``Outcome``\\ s.
- ``process``: what runs inside a worker (``WorkerSpec``, models loaded once, the loop).
- ``slot``: one worker process and its pipe (spawn, deadline, kill, restart, progress).
- ``local``: the batch's runner on local slots; ``dask``: the same jobs on a Dask cluster.

The service drives slots from asyncio behind its admission line (``songmap.api.pool``);
the batch drives them from one loop (``LocalRunner``) or sends jobs to Dask.

"Threads" meant four things before; each has its own name now:

- ``AnalysisSettings.threads``: threads *one analysis* uses (the network runtime's threads,
  and with more than 1 its independent stages run side by side). Default 2 (``songmap
  analyze``); ``songmap batch`` uses 1 per worker (more workers beat more threads) and
  ``songmap serve`` cores / workers. It is in the result's provenance under that name.
- ``WorkerSpec.blas_threads``: the BLAS/OpenMP pools of a worker process (batch: the same
  as its analysis threads; service: the libraries' default).
- ``workers`` (batch ``--workers``, ``SONGMAP_WORKERS``): worker processes.
- Dask's ``nthreads``: analyses a cluster runs at once (``dask.cluster_threads``).

Layering: this package imports the pipeline and below, never ``api``, ``batch`` or ``cli``.
"""

from songmap.workers.job import Job, Outcome, analyze
from songmap.workers.memory import default_memory_mb
from songmap.workers.process import WorkerContext, WorkerSpec
from songmap.workers.slot import Slot

__all__ = ["Job", "Outcome", "Slot", "WorkerContext", "WorkerSpec", "analyze",
           "default_memory_mb"]
