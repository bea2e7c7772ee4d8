"""A stable 64-bit hash for everything the emulator derives from ``(seed, id, ...)``."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1


def mix64(*parts: int) -> int:
    """splitmix64 over the parts: a stable 64-bit hash, the same in every process (unlike ``hash()``)."""
    z = 0x9E3779B97F4A7C15
    for part in parts:
        z = ((z ^ (part & _MASK64)) + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z
