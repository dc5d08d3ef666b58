import threading
import time

import pytest

from app.web.intake import Intake


def test_a_lone_delivery_is_sent_at_once_as_a_group_of_one():
    sent = []
    Intake(sent.append).submit(["d1"], 10)
    assert sent == [[["d1"]]]


def test_concurrent_deliveries_share_groups_and_each_returns_after_its_own_is_sent():
    sent, returned_after_sent = [], []
    release = threading.Event()

    def slow_send(group):
        if not sent:
            release.wait(2)
        sent.append([d[0] for d in group])

    intake = Intake(slow_send)

    def submit(n):
        intake.submit([n], 1)
        returned_after_sent.append(any(n in group for group in sent))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    threads[0].start()
    time.sleep(0.05)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)

    assert sorted(n for group in sent for n in group) == list(range(20))
    assert len(sent) < 20
    assert all(returned_after_sent) and len(returned_after_sent) == 20


def test_every_delivery_of_a_failed_group_sees_the_failure():
    gate = threading.Event()

    def failing_send(group):
        gate.wait(2)
        raise ConnectionError("broker down")

    intake = Intake(failing_send)
    errors = []

    def submit(n):
        try:
            intake.submit([n], 1)
        except ConnectionError as error:
            errors.append((n, str(error)))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert sorted(n for n, _ in errors) == list(range(5))


@pytest.mark.parametrize(
    ("max_group", "max_bytes", "sizes", "expected"),
    [
        (2, 100, [1, 1, 1, 1, 1], [2, 2, 1]),
        (10, 5, [3, 3, 3], [1, 1, 1]),
        (10, 5, [9, 1, 1], [1, 2]),
    ],
)
def test_groups_respect_count_and_byte_limits(max_group, max_bytes, sizes, expected):
    intake = Intake(lambda group: None, max_group=max_group, max_bytes=max_bytes)
    from app.web.intake import _Waiting

    intake._waiting = [_Waiting([n], size) for n, size in enumerate(sizes)]
    groups = []
    while intake._waiting:
        groups.append(len(intake._take_group()))
    assert groups == expected
