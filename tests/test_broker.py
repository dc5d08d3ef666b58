"""The broker's middleware: a retry is enqueued even when Redis is briefly unreachable."""

import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import TimeLimit

from workers import broker as broker_module
from workers.broker import DurableRetries, broker
from workers.inbound import ingest_webhooks


def retries_middleware() -> DurableRetries:
    [retries] = [m for m in broker.middleware if isinstance(m, DurableRetries)]
    return retries


def test_a_retry_that_meets_redis_down_is_enqueued_once_redis_answers(monkeypatch):
    monkeypatch.setattr(broker_module, "ENQUEUE_RETRY_DELAY", 0)
    enqueued, answers = [], iter([redis.ConnectionError("refused"), redis.TimeoutError(), None])

    def enqueue(message, *, delay=None):
        failure = next(answers)
        if failure is not None:
            raise failure
        enqueued.append((message.options["retries"], delay is not None))

    monkeypatch.setattr(broker, "enqueue", enqueue)
    ended = []
    for middleware in broker.middleware:
        if isinstance(middleware, TimeLimit):
            monkeypatch.setattr(
                middleware, "after_process_message", lambda *a, **k: ended.append(1)
            )
    job = MessageProxy(ingest_webhooks.message([]))

    retries_middleware().after_process_message(broker, job, exception=RuntimeError("boom"))

    # Counted once, as if the first try had worked; the time limit no longer runs.
    assert enqueued == [(1, True)]
    assert not job.failed and ended


def test_a_job_out_of_retries_is_failed_without_enqueueing(monkeypatch):
    def enqueue(message, *, delay=None):
        raise AssertionError("a job out of retries is not retried")

    monkeypatch.setattr(broker, "enqueue", enqueue)
    job = MessageProxy(ingest_webhooks.message([]).copy(options={"retries": 20}))

    retries_middleware().after_process_message(broker, job, exception=RuntimeError("boom"))

    assert job.failed
