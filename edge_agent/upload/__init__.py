"""Upload of encoded batches and heartbeats to the cloud ingest API.

The uploader returns an :class:`Outcome` per batch and never deletes anything; the outbox drainer acts
on it::

    result = await uploader.upload(body)
    match result.outcome:
        case Outcome.SENT:         outbox.delete(seq)                  # 2xx, duplicates included
        case Outcome.RETRY_LATER:  await asyncio.sleep(result.after)   # Retry-After or backoff + jitter
        case Outcome.SPLIT:        outbox.split(seq)                   # 413: re-cut into halves
        case Outcome.DEAD_LETTER:  outbox.dead_letter(seq, result.reason)
        case Outcome.AUTH_FAILED:  report; await asyncio.sleep(result.after)
"""

from edge_agent.upload.backoff import MAX_RETRY_AFTER, Backoff, BackoffState, parse_retry_after
from edge_agent.upload.uploader import (
    DEFAULT_MAX_BODY,
    Outcome,
    Timeouts,
    Uploader,
    UploaderStats,
    UploadResult,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_RETRY_AFTER",
    "Backoff",
    "BackoffState",
    "Outcome",
    "Timeouts",
    "UploadResult",
    "Uploader",
    "UploaderStats",
    "parse_retry_after",
]
