"""PayloadPool: a buffer returns only when nobody else refers to it, and the pool stays bounded."""

from __future__ import annotations

from tidemark.core.nbd.buffers import PayloadPool


def test_an_unshared_buffer_is_reused() -> None:
    pool = PayloadPool(limit=1 << 20)
    buffer = pool.take(4096)
    ident = id(buffer)
    pool.give_back(buffer)
    del buffer
    assert pool.held == 4096
    assert id(pool.take(4096)) == ident and pool.held == 0


def test_a_buffer_an_export_kept_is_never_reused() -> None:
    pool = PayloadPool(limit=1 << 20)
    kept: list[bytearray] = []
    buffer = pool.take(4096)
    kept.append(buffer)  # e.g. queued for Kafka by the export
    pool.give_back(buffer)
    assert pool.held == 0
    view = memoryview(kept[0])
    kept.clear()
    pool.give_back(buffer)
    assert pool.held == 0, "a live memoryview also keeps the buffer"
    view.release()
    pool.give_back(buffer)
    assert pool.held == 4096


def test_the_pool_keeps_at_most_its_limit() -> None:
    pool = PayloadPool(limit=8192)
    for _ in range(4):
        pool.give_back(bytearray(4096))
    assert pool.held == 8192
    assert len(pool.take(100)) == 100  # another size: a fresh buffer
