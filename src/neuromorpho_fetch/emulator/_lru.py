"""An LRU map bounded by the total size of its values, shared by the catalogue and the file routes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteLRU(Generic[K, V]):
    """Keeps values up to ``limit`` bytes in all (as the caller sizes them), dropping the least recently
    used first; a value bigger than a quarter of the limit is not kept, so a few huge ones cannot evict
    everything else (callers can always make it again)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        if size > self._limit // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._used -= old[1]
        self._items[key] = (value, size)
        self._used += size
        while self._used > self._limit:
            _, (_, dropped) = self._items.popitem(last=False)
            self._used -= dropped
