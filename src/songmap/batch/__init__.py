"""Batch analysis of whole libraries: resumable, on local processes or a Dask cluster.

    from songmap.batch import run_batch
    summary = run_batch(["~/Music"], output="results.jsonl", workers=2)

See ``songmap.batch.run`` for the driver, ``local`` and ``cluster`` for the two runners.
"""

from songmap.batch.discover import AUDIO_EXTENSIONS, Source, discover_audio
from songmap.batch.progress import BatchSummary, Progress
from songmap.batch.run import Record, default_store_path, run_batch

__all__ = ["AUDIO_EXTENSIONS", "BatchSummary", "Progress", "Record", "Source",
           "default_store_path", "discover_audio", "run_batch"]
