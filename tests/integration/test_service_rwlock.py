"""The index lock: searches run side by side, an add runs alone and is not starved."""

from __future__ import annotations

import threading
import time

from avrec.service.rwlock import ReadWriteLock


def test_readers_share_writers_exclude():
    lock, inside, seen, errors = ReadWriteLock(), [], [], []

    def reader():
        for _ in range(100):
            with lock.read():
                inside.append(1)
                time.sleep(0.0005)
                seen.append(len(inside))
                inside.pop()

    def writer():
        for _ in range(10):
            with lock.write():
                if inside:
                    errors.append(len(inside))
                time.sleep(0.001)

    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and max(seen) > 1
