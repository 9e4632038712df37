"""RFC 1982 serial number arithmetic with SERIAL_BITS = 32, as RTR uses it (RFC 8210 §5.1 ff.).

:class:`Serial` is the one place the router's client session and the embedded cache do serial
arithmetic: ``Serial(a) < Serial(b)`` is the RFC 1982 order (neither ``<`` nor ``>`` holds at
distance 2^31, where the RFC leaves the order undefined) and ``Serial(a) + n`` the RFC 1982
addition (defined for 0 <= n <= 2^31 - 1).  Serials travel and are stored as plain ``int``;
wrap one in :class:`Serial` where it is compared or incremented.
"""

from __future__ import annotations

from dataclasses import dataclass

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


@dataclass(frozen=True, slots=True)
class Serial:
    """A 32-bit RTR serial number with RFC 1982 comparison and addition."""

    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", int(self.value) & _MASK)

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __add__(self, n: int) -> Serial:
        if not 0 <= n <= _HALF - 1:
            raise ValueError("RFC 1982 addition is defined for 0 <= n <= 2^31 - 1")
        return Serial(self.value + n)

    def __lt__(self, other: Serial) -> bool:
        a, b = self.value, other.value
        return (a < b and b - a < _HALF) or (a > b and a - b > _HALF)

    def __gt__(self, other: Serial) -> bool:
        return other < self

    def __le__(self, other: Serial) -> bool:
        return self == other or self < other

    def __ge__(self, other: Serial) -> bool:
        return self == other or other < self

    def __str__(self) -> str:
        return str(self.value)
