"""Unique, random-looking identifiers without remembering the ones already issued.

Each id space is a fixed bijection of [0, 36**length) (an affine map modulo 36**length with a
multiplier coprime with 36): index i always maps to the same id and two indices never share one,
so millions of event ids stay unique in constant memory.
"""

from __future__ import annotations

import random

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_BLOCK = 36**3
_TRIPLETS: list[str] = []


def _triplets() -> list[str]:
    # Built on first use (never at import): every 3-character base-36 string, in numeric order.
    if not _TRIPLETS:
        _TRIPLETS.extend(a + b + c for a in ALPHABET for b in ALPHABET for c in ALPHABET)
    return _TRIPLETS


def _multiplier(rng: random.Random, modulus: int) -> int:
    # Coprime with 36 (odd and not a multiple of 3), hence invertible modulo 36**n.
    while True:
        candidate = rng.randrange(modulus // 3, modulus)
        if candidate % 2 and candidate % 3:
            return candidate


class IdSpace:
    """`prefix` + `length` base-36 characters; `space(i)` is the i-th id of a fixed permutation."""

    def __init__(self, prefix: str, length: int, seed: str) -> None:
        rng = random.Random(f"ids:{prefix}:{length}:{seed}")
        self.prefix = prefix
        self.length = length
        self.modulus = 36**length
        self._a = _multiplier(rng, self.modulus)
        self._b = rng.randrange(self.modulus)
        self._blocks = -(-length // 3)
        self._table = _triplets()

    def __call__(self, index: int) -> str:
        if not 0 <= index < self.modulus:
            raise ValueError(f"index {index} outside the {self.prefix} id space")
        number = (self._a * index + self._b) % self.modulus
        table = self._table
        parts = []
        for _ in range(self._blocks):
            number, low = divmod(number, _BLOCK)
            parts.append(table[low])
        parts.reverse()
        return self.prefix + "".join(parts)[-self.length :]
