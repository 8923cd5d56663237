"""The run's log: a subscriber that turns the events worth a line into log records.

Milestones at INFO, trouble at WARNING, every object at DEBUG. Frequent counting events
(bytes, lines, items) are never logged: progress lines and the summary carry their totals.
Bad rows are logged by object, line and reason only, never their content.
"""

from __future__ import annotations

import logging

from .hub import (
    BadRowFound,
    BytesRead,
    ClockSkewed,
    Event,
    ItemsAcknowledged,
    LinesParsed,
    ListingDone,
    ObjectFailedEvent,
    ObjectFinished,
    ObjectRestarted,
    ObjectSkipped,
    PrefixCarried,
    RateChanged,
    RunsSelected,
    ServiceWaiting,
    TableReady,
    Throttled,
)
from .snapshot import format_bytes

RUN_LOGGER = "populator.run"
_SILENT = (BytesRead, LinesParsed, ItemsAcknowledged, Throttled)


class EventLog:
    """Subscribe it to the hub; it logs on `populator.run`."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(RUN_LOGGER)
        self._rate_cuts = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, _SILENT):
            return
        log = self._log
        match event:
            case RateChanged(state=state):
                if state.throttle_events > self._rate_cuts:
                    self._rate_cuts = state.throttle_events
                    log.info(
                        "DynamoDB throttled: write rate cut to %s items/s (cut %d)",
                        f"{state.rate:,.0f}",
                        state.throttle_events,
                        extra={"write_rate": round(state.rate, 1), "rate_cuts": state.throttle_events},
                    )
            case RunsSelected(runs=runs):
                span = f" ({runs[0].name} to {runs[-1].name})" if runs else ""
                log.info("runs selected: %d%s", len(runs), span, extra={"runs": len(runs)})
            case ListingDone(objects=objects, bytes=size):
                log.info(
                    "listing done: %d objects, %s",
                    objects,
                    format_bytes(size),
                    extra={"objects_total": objects, "bytes_total": size},
                )
            case TableReady(table=table):
                capacity = f", {table.write_capacity} WCU" if table.write_capacity else ""
                log.info(
                    "table %s %s (%s%s)",
                    table.name,
                    "created" if table.created else "found",
                    table.billing_mode,
                    capacity,
                    extra={"table": table.name, "billing_mode": table.billing_mode},
                )
                if table.ttl_problem:
                    log.warning(
                        "time to live is not on for table %s's attribute ttl (%s): the manifest will "
                        "never expire. Enable it: aws dynamodb update-time-to-live --table-name %s "
                        "--time-to-live-specification Enabled=true,AttributeName=ttl (or give this "
                        "identity dynamodb:UpdateTimeToLive and run again). The backfill goes on.",
                        table.name,
                        table.ttl_problem,
                        table.name,
                        extra={"table": table.name, "ttl_problem": table.ttl_problem},
                    )
            case ObjectFailedEvent(obj=obj, reason=reason):
                log.warning("object failed: %s: %s", obj.key, reason, extra={"object": obj.key})
            case ObjectRestarted(obj=obj, reason=reason, attempt=attempt):
                log.warning(
                    "reading %s broke off (%s); reading it again from its start, writing nothing "
                    "of what is stored already (attempt %d)",
                    obj.key,
                    reason,
                    attempt,
                    extra={"object": obj.key},
                )
            case ObjectFinished(obj=obj):
                log.debug(
                    "object done: %s (%d lines, %d items, %d bad rows, %d without a fingerprint)",
                    obj.key,
                    event.lines,
                    event.items,
                    event.bad_rows,
                    event.no_fingerprint,
                    extra={"object": obj.key},
                )
            case ServiceWaiting(service=service, since=since, reason=reason):
                if since is None:
                    log.warning("%s answers again: the run goes on", service, extra={"service": service})
                else:
                    log.warning(
                        "%s does not answer (%s): waiting for it, trying again with backoff",
                        service,
                        reason,
                        extra={"service": service},
                    )
            case ClockSkewed(service=service, offset=offset):
                direction = "behind" if offset > 0 else "ahead of"
                log.warning(
                    "this machine's clock is %.0f minutes %s AWS's (from %s's answer's Date): "
                    "requests are signed with AWS's time from now on; fix the clock (NTP: chrony "
                    "or systemd-timesyncd)",
                    abs(offset) / 60,
                    direction,
                    service,
                    extra={"service": service, "clock_offset_s": round(offset, 1)},
                )
            case PrefixCarried(obj=obj, lines=lines, items=items):
                log.debug(
                    "%s: its first %d lines were stored already: %d items not written again",
                    obj.key,
                    lines,
                    items,
                    extra={"object": obj.key},
                )
            case ObjectSkipped(obj=obj):
                if log.isEnabledFor(logging.DEBUG):  # a resume publishes one for each of a million
                    log.debug("object skipped (done before): %s", obj.key, extra={"object": obj.key})
            case BadRowFound(obj=obj, line=line, reason=reason):
                log.debug("bad row: %s line %d: %s", obj.key, line, reason, extra={"object": obj.key})
