"""The broker: a retry is enqueued even when Redis is briefly unreachable, and jobs a
failed fetch left in a live worker's ack set are put back by its next consumer."""

import redis
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name
from dramatiq.middleware import TimeLimit

from workers import broker as broker_module
from workers.broker import INBOUND, DurableRetries, broker
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


def acknowledgements_awaited(queue: str) -> set[str]:
    """The jobs of ``queue`` this process fetched and has not acknowledged, as Redis has them."""
    key = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue}"
    return {job.decode() for job in broker.client.smembers(key)}


def queue_jobs(count: int, queue: str = INBOUND) -> list[str]:
    jobs = [ingest_webhooks.message([[f"delivery-{n}"]]) for n in range(count)]
    return [broker.enqueue(job.copy(queue_name=queue)).options["redis_message_id"] for job in jobs]


def test_jobs_a_broken_consumer_never_handed_out_are_put_back_by_the_next_one():
    first, second, third = queue_jobs(3)
    broken = broker.consume(INBOUND, prefetch=3)
    handed_out = next(broken)
    # The fetch took all three; the consumer fails before handing out the other two.
    assert acknowledgements_awaited(INBOUND) == {first, second, third}
    assert handed_out.options["redis_message_id"] == first

    replacement = broker.consume(INBOUND, prefetch=3)
    again = [next(replacement).options["redis_message_id"] for _ in range(2)]

    assert sorted(again) == sorted([second, third])
    assert next(replacement) is None  # the job a thread still holds is not fetched twice
    replacement.ack(handed_out)
    assert acknowledgements_awaited(INBOUND) == {second, third}


def test_jobs_a_fetch_took_but_never_returned_are_put_back_by_the_next_consumer():
    jobs = queue_jobs(2)
    # Redis ran the fetch, moving the jobs to this worker's ack set, and died before answering.
    broker.do_fetch(INBOUND, 2)

    consumer = broker.consume(INBOUND, prefetch=2)
    fetched = [next(consumer) for _ in range(2)]

    assert sorted(message.options["redis_message_id"] for message in fetched) == sorted(jobs)
    for message in fetched:
        consumer.ack(message)
    assert acknowledgements_awaited(INBOUND) == set()


def test_a_delay_queue_consumer_leaves_forgotten_jobs_to_the_clock():
    delay_queue = dq_name(INBOUND)
    [job] = queue_jobs(1, delay_queue)
    broker.do_fetch(delay_queue, 1)

    assert next(broker.consume(delay_queue, prefetch=1)) is None
    assert acknowledgements_awaited(delay_queue) == {job}
