"""``snorq dead-letters``: what failed for good, as tables for people or JSON for scripts."""

from __future__ import annotations

import dataclasses
import json

from app.webhook_failures import FailedWebhook
from workers.dead_letters import DeadLetter


def as_json(letters: list[DeadLetter], webhooks: list[FailedWebhook]) -> str:
    """``{"dead_letters": […], "webhook_events": […]}``, times in ISO 8601 (UTC)."""
    return json.dumps(
        {
            "dead_letters": [dataclasses.asdict(letter) for letter in letters],
            "webhook_events": [
                {**dataclasses.asdict(w), "organization_ids": sorted(w.organization_ids)}
                for w in webhooks
            ],
        },
        default=lambda value: value.isoformat(),
        indent=2,
    )


def as_text(letters: list[DeadLetter], webhooks: list[FailedWebhook]) -> str:
    """Two tables, then what to do about them."""
    parts = [f"Dead-lettered jobs: {len(letters)}"]
    if letters:
        parts.append(
            _table(
                ("JOB", "QUEUE", "ACTOR", "DIED (UTC)", "REQUEST", "ARGUMENTS", "REASON"),
                [
                    (
                        letter.message_id,
                        letter.queue,
                        letter.actor,
                        _time(letter.died_at),
                        letter.request_id or "-",
                        letter.arguments,
                        letter.reason,
                    )
                    for letter in letters
                ],
            )
        )
    parts.append(f"\nWebhook events not processed: {len(webhooks)}")
    if webhooks:
        parts.append(
            _table(
                ("EVENT", "PLATFORM", "RECEIVED (UTC)", "STATUS", "UNROUTED ACCOUNTS", "REASON"),
                [
                    (
                        str(w.id),
                        w.platform,
                        _time(w.received_at),
                        w.status,
                        ", ".join(w.unrouted) or "-",
                        w.reason,
                    )
                    for w in webhooks
                ],
            )
        )
    parts.append(_advice(letters, webhooks))
    return "\n".join(part for part in parts if part)


def _advice(letters: list[DeadLetter], webhooks: list[FailedWebhook]) -> str:
    lines = []
    unrouted = sorted({(w.platform, account) for w in webhooks for account in w.unrouted})
    for platform, account in unrouted:
        lines.append(
            f"  {platform} account {account} has no connection: connect it "
            f"(snorq add-connection --org ID --platform {platform} --account-id {account} …)"
        )
    if webhooks:
        lines.append("  Once fixed: snorq replay --failed   (or --event ID)")
    if letters:
        lines.append("  Once fixed: snorq replay --dead-letters   (or --job JOB)")
    return "\nWhat to do:\n" + "\n".join(lines) if lines else ""


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
