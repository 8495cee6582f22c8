"""Stale trials and retries: a RUNNING trial whose worker stopped sending heartbeats is
failed with reason ``stale``, and a failed trial is queued again when the study's retry
rule allows it (exactly once, by the claim ``retry:<n>``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tuningfork.storage.view import TrialRecord
from tuningfork.trial import TrialState

if TYPE_CHECKING:
    from tuningfork.study._study import Study


def wants_retry(study: Study, record: TrialRecord) -> bool:
    if record.state is not TrialState.FAIL or "retried_by" in record.system_attrs:
        return False
    if int(record.system_attrs.get("retry_count", 0)) >= study.max_retries:
        return False
    reason = record.reason or ""
    if reason.startswith("stale"):
        return True
    return study.retry_failed_exceptions and not reason.startswith("interrupted")


def queue_retries(study: Study, numbers: Iterable[int]) -> None:
    """Queue a retry of each failed trial in ``numbers`` that the study's retry rule
    allows. The claim ``retry:<n>`` makes it exactly once, however many workers try."""
    if study.max_retries <= 0:
        return
    events = []
    for number in numbers:
        record = study._log.view.records[number]
        if not wants_retry(study, record):
            continue
        system = record.system_attrs
        events.append(
            {
                "op": "trial",
                "state": "WAITING",
                "params": dict(record.params),
                "dists": {k: d._json() for k, d in record.distributions.items()},
                "sys": {
                    "retry_of": number,
                    "retry_count": int(system.get("retry_count", 0)) + 1,
                    # whose checkpoint directory the chain of retries shares
                    "checkpoint_of": system.get("checkpoint_of", number),
                },
                "claim": f"retry:{number}",
            }
        )
    if events:
        study._log.append(events, sync=True)


def reap_stale(study: Study, now: float) -> list[int]:
    """Fail the RUNNING trials whose last heartbeat (or start) is more than the study's
    grace period before ``now`` (seconds since the epoch); queue their retries. Only trials
    run by `Study.optimize` (which promise heartbeats) and not run by this handle are
    judged. Returns the numbers failed. The caller holds the log's lock."""
    view = study._log.view
    if not view.running:
        return []
    beats = study._log.heartbeats()
    events: list[dict[str, Any]] = []
    for number in list(view.running):
        record = view.records[number]
        if number in study._active or not record.system_attrs.get("heartbeat"):
            continue
        started = max(record.datetime_start or 0.0, record.system_attrs.get("resumed_at", 0.0))
        beat = max(beats.get(number, 0.0), started)
        if now - beat <= study.grace_period:
            continue
        reason = f"stale: no heartbeat from worker {record.worker} for {now - beat:.0f} s"
        events.append({"op": "finish", "n": number, "state": "FAIL", "reason": reason, "t": now})
    if events:
        study._log.append(events, sync=True)
        queue_retries(study, [event["n"] for event in events])
    return [event["n"] for event in events]
