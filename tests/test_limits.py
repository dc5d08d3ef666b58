"""Rate limits: a precise sliding log per connection; a send without a token waits."""

import datetime
import time

import pytest
import responses
from dramatiq.rate_limits.backends import RedisBackend

from app.db import utcnow
from app.models import MessageStatus
from app.redis_client import get_redis
from tests.platform_fakes import SEND_URLS, conversation, reload, reply
from workers import limits
from workers.limits import Limit, SlidingLogRateLimiter
from workers.outbound import send_message


def limiter(*limits_: Limit) -> SlidingLogRateLimiter:
    return SlidingLogRateLimiter(RedisBackend(client=get_redis()), "test:limits", limits_)


def test_a_limit_lets_n_calls_through_then_says_how_long_until_the_oldest_frees():
    three_a_second = limiter(Limit("burst", 3, 1))

    assert [three_a_second.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = three_a_second.take()

    assert 0.9 < wait <= 1.0


def test_the_window_slides_with_each_call_instead_of_resetting_on_the_second():
    two_a_second = limiter(Limit("burst", 2, 1))
    two_a_second.take()
    time.sleep(0.5)
    two_a_second.take()

    assert 0.4 < two_a_second.take() <= 0.5
    time.sleep(0.52)
    assert two_a_second.take() == 0.0
    assert 0.4 < two_a_second.take() <= 0.5


def test_a_token_is_taken_from_every_limit_or_from_none():
    daily = Limit("daily", 1, 86400)
    burst = Limit("burst", 5, 1)
    both = limiter(daily, burst)
    both.take()

    assert both.take() > 86000
    burst_only = limiter(burst)
    assert [burst_only.take() for _ in range(4)] == [0.0] * 4
    assert burst_only.take() > 0


def test_waiters_reserve_slots_in_order_an_even_share_of_the_window_apart():
    two_a_second = limiter(Limit("burst", 2, 1))
    two_a_second.take("a"), two_a_second.take("b")

    waits = [two_a_second.take(name) for name in ("c", "d", "e", "f")]

    assert [round(wait, 1) for wait in waits] == [1.0, 1.5, 2.0, 2.5]


def test_a_waiter_back_at_its_slot_takes_it_and_a_newcomer_cannot_jump_ahead():
    one_per_half_second = limiter(Limit("burst", 1, 0.5))
    one_per_half_second.take("first")
    wait = one_per_half_second.take("second")
    time.sleep(wait)

    assert one_per_half_second.take("newcomer") > 0.4
    assert one_per_half_second.take("second") == 0.0


def test_a_caller_that_does_not_wait_reserves_nothing():
    one_a_second = limiter(Limit("burst", 1, 1))
    one_a_second.take()

    assert one_a_second.take() > 0.9
    assert 0.9 < one_a_second.take("waiter") <= 1.0


def test_a_limit_of_zero_is_no_limit():
    unlimited = limiter(Limit("daily", 0, 86400))

    assert all(unlimited.take() == 0.0 for _ in range(50))


def test_it_is_a_dramatiq_rate_limiter():
    one = limiter(Limit("burst", 1, 60))

    with one.acquire(raise_on_failure=False) as first:
        assert first
    with one.acquire(raise_on_failure=False) as second:
        assert not second


def test_a_connection_has_the_configured_defaults_unless_it_overrides_them(connections):
    tiktok, whatsapp = connections["tiktok"], connections["whatsapp"]
    whatsapp.daily_quota, whatsapp.burst_limit = 5000, 20

    assert limits.for_replies(tiktok).limits == [
        Limit("daily", 100, 86400),
        Limit("burst", 600, 60),
    ]
    assert limits.for_replies(whatsapp).limits == [
        Limit("daily", 5000, 86400),
        Limit("burst", 20, 1),
    ]
    assert limits.for_calls(whatsapp).limits == [Limit("burst", 20, 1)]
    assert limits.for_calls(whatsapp).guard_ms == limits.GUARD_MS


def test_the_daily_quotas_come_from_the_environment(connections, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("SNORQ_DAILY_QUOTA_FACEBOOK", "0")
    get_settings.cache_clear()
    try:
        assert limits.for_replies(connections["facebook"]).limits == [Limit("burst", 300, 1)]
    finally:
        get_settings.cache_clear()


@pytest.fixture
def arrivals():
    """The moments the fake WhatsApp received each send."""
    seen = []

    def answer(request):
        seen.append(time.monotonic())
        return 200, {}, f'{{"messages": [{{"id": "wamid.{len(seen)}"}}]}}'

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, SEND_URLS["whatsapp"], callback=answer)
        yield seen


def most_in_any_span(times: list[float], span: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < span) for i, start in enumerate(times))


def test_a_burst_over_the_limit_is_spread_out_and_none_fail(
    worker, org, connections, user, arrivals
):
    connection = connections["whatsapp"]
    connection.burst_limit = 3
    connection.save()
    thread = conversation(org, connection)
    replies = [reply(thread, user, f"Reply {n}") for n in range(9)]

    for message in replies:
        send_message.send(message.id)
    worker.drain(timeout_ms=30_000)

    assert [reload(m).status for m in replies] == [MessageStatus.SENT] * 9
    # The limiter counts on Redis's clock; arrivals add a few ms of thread scheduling.
    assert most_in_any_span(arrivals, 0.95) <= 3
    assert arrivals[-1] - arrivals[0] >= 1.95


def test_waiting_for_tokens_does_not_use_up_the_retry_budget(
    worker, org, connections, user, arrivals
):
    connection = connections["whatsapp"]
    connection.burst_limit = 1
    connection.save()
    thread = conversation(org, connection)
    replies = [reply(thread, user, f"Reply {n}") for n in range(6)]

    for message in replies:
        send_message.send(message.id)
    worker.drain(timeout_ms=30_000)

    # The last of six waited for five tokens, more than MAX_RETRIES waits.
    assert [reload(m).status for m in replies] == [MessageStatus.SENT] * 6
    assert most_in_any_span(arrivals, 0.95) == 1


def test_over_the_daily_quota_a_reply_waits_for_tomorrow_without_failing(
    org, connections, user, arrivals
):
    connection = connections["whatsapp"]
    connection.daily_quota = 2
    connection.save()
    thread = conversation(org, connection)
    replies = [reply(thread, user, f"Reply {n}") for n in range(3)]

    for message in replies:
        send_message.fn(message.id)

    waiting = reload(replies[2])
    assert [reload(m).status for m in replies[:2]] == [MessageStatus.SENT] * 2
    assert (waiting.status, waiting.error_code) == (MessageStatus.PENDING, None)
    assert waiting.send_after > utcnow() + datetime.timedelta(hours=23)
    assert len(arrivals) == 2
