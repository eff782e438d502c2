"""BitReader: MSB-first bit reading with exp-Golomb codes, as H.264 headers need."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class BitstreamError(ValueError):
    """A bitstream structure is truncated or malformed."""


class BitReader:
    """Reads bits most-significant first, plus the ue(v)/se(v) codes of H.264 § 9.1."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0  # in bits

    @property
    def position(self) -> int:
        """Bits consumed so far."""
        return self._pos

    def read_bits(self, count: int) -> int:
        """Read ``count`` bits as an unsigned integer."""
        if self._pos + count > len(self._data) * 8:
            raise BitstreamError("read past the end of the data")
        value = 0
        for _ in range(count):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def read_flag(self) -> bool:
        """Read one bit as a boolean."""
        return self.read_bits(1) == 1

    def read_ue(self) -> int:
        """Read an unsigned exp-Golomb code."""
        leading_zeros = 0
        while self.read_bits(1) == 0:
            leading_zeros += 1
            if leading_zeros > 31:
                raise BitstreamError("exp-Golomb code longer than 32 bits")
        return (1 << leading_zeros) - 1 + self.read_bits(leading_zeros)

    def read_se(self) -> int:
        """Read a signed exp-Golomb code (1, -1, 2, -2, ... for codes 1, 2, 3, 4, ...)."""
        code = self.read_ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)
