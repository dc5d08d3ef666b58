import logging

from tests.log_scan import canaries, leaks


def test_a_token_or_a_customer_text_in_a_log_line_is_caught():
    forbidden = {"wa-app-secret", "Where is my parcel, please?"}
    lines = [
        "app.web: queued a whatsapp webhook",
        "workers.outbound: sent with token snorq_" + "x" * 43,
        "workers.inbound: body was Where is my parcel, please? (oops)",
        "app.config: secret wa-app-secret",
    ]
    found = leaks(lines, forbidden)
    assert len(found) == 3
    assert "queued a whatsapp webhook" not in " ".join(found)


def test_the_suite_secrets_are_among_the_canaries():
    forbidden = canaries({"WHATSAPP_APP_SECRET": "wa-app-secret", "SHORT": "abc"})
    assert "wa-app-secret" in forbidden and "abc" not in forbidden
    assert "whatsapp-access-token" in forbidden


def test_queued_job_arguments_never_reach_a_log_line(caplog):
    from dramatiq.message import Message

    message = Message(
        queue_name="inbound",
        actor_name="ingest_webhooks",
        args=([["id", "whatsapp", "Where is my parcel, please?", 0]],),
        kwargs={},
        options={},
    )
    with caplog.at_level(logging.ERROR):
        logging.getLogger("dramatiq.worker.WorkerThread").error(
            "Failed to process message %s with unhandled exception.", message
        )
    assert "Where is my parcel" not in caplog.text
    assert f"ingest_webhooks#{message.message_id}" in caplog.text
