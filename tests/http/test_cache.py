"""The answer cache of the page's listing: one computation per change, nobody queued behind it."""

from __future__ import annotations

import threading

import pytest

from vigil.http.cache import AnswerCache


def test_an_answer_is_made_once_per_generation() -> None:
    cache, made = AnswerCache(), []

    def make(text: bytes) -> bytes:
        made.append(text)
        return text

    assert cache.get("k", 1, lambda: make(b"one")) == b"one"
    assert cache.get("k", 1, lambda: make(b"again")) == b"one"
    assert cache.get("k", 2, lambda: make(b"two")) == b"two"
    assert made == [b"one", b"two"]


@pytest.mark.timeout(20)
def test_while_a_new_answer_is_made_others_get_the_one_before_it() -> None:
    cache = AnswerCache()
    cache.get("k", 1, lambda: b"old")
    started, finish = threading.Event(), threading.Event()

    def slow() -> bytes:
        started.set()
        assert finish.wait(10)
        return b"new"

    maker = threading.Thread(target=lambda: cache.get("k", 2, slow))
    maker.start()
    assert started.wait(10)
    try:
        assert cache.get("k", 2, lambda: b"computed twice") == b"old"  # not queued behind the maker
    finally:
        finish.set()
        maker.join()
    assert cache.get("k", 2, lambda: b"computed twice") == b"new"


@pytest.mark.timeout(20)
def test_with_no_answer_before_it_others_wait_for_the_first_and_do_not_compute_again() -> None:
    cache, made = AnswerCache(), []
    started, finish = threading.Event(), threading.Event()

    def slow() -> bytes:
        made.append(1)
        started.set()
        assert finish.wait(10)
        return b"first"

    maker = threading.Thread(target=lambda: cache.get("k", 1, slow))
    maker.start()
    assert started.wait(10)
    got: list[bytes] = []
    waiter = threading.Thread(target=lambda: got.append(cache.get("k", 1, lambda: b"second")))
    waiter.start()
    finish.set()
    maker.join()
    waiter.join()
    assert got == [b"first"] and made == [1]


def test_many_distinct_requests_keep_a_bounded_number_of_answers_and_locks() -> None:
    cache = AnswerCache(size=8)
    for i in range(1000):
        cache.get(("offset", i), 1, lambda: b"x")
    assert len(cache._answers) == 8 and len(cache._busy) <= 2 * 8 + 1
