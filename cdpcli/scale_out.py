"""Imports bigger than one machine, driven by an existing engine (Dask, Spark, a job array):
one `import_lines` per partition (or `import_paths` per share of a bucket's objects), named so
that a retried partition resends the same messageIds, and the partitions' counts added up into
one summary. See docs/scale-out.md.

    import dask, dask.bag as db
    from cdpcli.scale_out import import_partition, total

    parts = db.read_text("archive/*.ndjson.gz", blocksize=None).to_delayed()   # a partition per file
    tasks = [dask.delayed(import_partition)(part, number=i, name="backfill-2024", target=target)
             for i, part in enumerate(parts)]
    print(total(client.gather(client.compute(tasks, retries=2))))

A bucket (or a directory) whose files are the partitions: `import_share` per task, a share of
the objects each, with the ids `cdp import s3://…` derives:

    tasks = [dask.delayed(import_share)("s3://bucket/segment-logs/", number=k, of=64, name="backfill",
                                        target=target, archive="segment") for k in range(64)]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdpcli.target import Target

# ImportResult's counts that add up across partitions
SUMMED = ("read", "sent", "invalid", "failed", "skipped", "blank", "unsettled", "batches", "requests", "retries")


def import_partition(
    lines: Iterable[Any],
    *,
    number: int,
    name: str,
    target: Target,
    rejects_dir: str = ".",
    checkpoint_dir: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Import one partition as source `<name>-<number>`: its derived messageIds depend on that
    name and each line's position only, so the engine's retry of a failed task resends the
    same ids (the API keeps one of each). Rejects (and checkpoints, with checkpoint_dir) go to
    a file per partition. Returns the counts as a plain dict (cheap to ship back)."""
    from cdpcli.importing import import_lines  # lazy: start-up (the engine loads where tasks run)

    source = f"{name}-{number}"
    # a task runs on a worker where the folders may not exist yet (a fresh container)
    os.makedirs(rejects_dir, exist_ok=True)
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
    result = import_lines(
        lines,
        target=target,
        source=source,
        rejects=os.path.join(rejects_dir, f"{source}.rejects.ndjson"),
        checkpoint=os.path.join(checkpoint_dir, f"{source}.checkpoint") if checkpoint_dir else None,
        **options,
    )
    return _summary(result, source)


def import_share(
    paths: str | Iterable[str],
    *,
    number: int,
    of: int,
    name: str,
    target: Target,
    rejects_dir: str = ".",
    checkpoint_dir: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Import share `number` of `of` of what `paths` names (files, directories, archives, an
    s3:// prefix): every `of`-th file or object, dealt as `cdp import PATHS --shard
    number/of --shard-by file` deals them, so each keeps the messageIds `cdp import PATHS`
    derives for it (an object: its key under the prefix) whatever `of` is, and a retried task
    resends the same ids. Each share lists the prefix itself (one request per 1,000 keys).
    Rejects (and checkpoints, with checkpoint_dir) go to a file per share named `<name>-<number>`;
    `options` are import_paths's (format, s3_endpoint, archive, rate, …)."""
    from cdpcli.importing import import_paths  # lazy: start-up (the engine loads where tasks run)

    share = f"{name}-{number}"
    result = import_paths(
        paths,
        target=target,
        shard=f"{number}/{of}",
        shard_by="file",
        rejects=os.path.join(rejects_dir, f"{share}.rejects.ndjson"),
        checkpoint=os.path.join(checkpoint_dir, f"{share}.checkpoint") if checkpoint_dir else None,
        **options,
    )
    return _summary(result, share)


def _summary(result: Any, source: str) -> dict[str, Any]:
    """An ImportResult's counts as a plain dict (cheap to ship back from a worker)."""
    summary = {**result.counts(), "source": source, "exit_code": int(result.exit_code)}
    if result.error is not None:
        summary["error"] = result.error.message
    return summary


def total(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The partitions' counts added up; `exit_code` is the worst (highest) of theirs."""
    summaries = list(summaries)
    added: dict[str, Any] = {key: sum(s.get(key, 0) for s in summaries) for key in SUMMED}
    added["partitions"] = len(summaries)
    added["exit_code"] = max((s["exit_code"] for s in summaries), default=0)
    added["errors"] = {s["source"]: s["error"] for s in summaries if "error" in s}
    return added
