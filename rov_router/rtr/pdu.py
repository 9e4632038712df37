"""RTR PDUs: types, encoding and strict decoding (RFC 6810 v0, RFC 8210 v1, 8210bis-27 v2).

Decoding never trusts the peer: lengths, ranges, host bits and per-version PDU types are
checked, and every failure raises :class:`PDUError` carrying the RFC error code to report and
the offending PDU bytes.  Reserved fields are written as zero and ignored on receipt, as
RFC 8210 §5 requires.

Length (~620 lines): one PDU type per class, each with its encoder and its strict decoder side
by side, plus the framer's fast path for Prefix PDUs; they share the header and record
layouts, and reading a type's encoding next to its checks is the point.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address

from ..rpki.payload import BATCH_INT_V4, BATCH_REC_V4, BATCH_REC_V6, VRP, ASPARecord, RouterKey

SUPPORTED_VERSIONS = (0, 1, 2)
HEADER_LEN = 8
#: 8210bis §5.1: no PDU may exceed 65,535 octets (v2).  For v0/v1 we apply the same bound:
#: no legitimate PDU of those versions comes near it, and it keeps a lying length field from
#: making us buffer unbounded data.
MAX_PDU_LEN = 65535


class PDUType(IntEnum):
    SERIAL_NOTIFY = 0
    SERIAL_QUERY = 1
    RESET_QUERY = 2
    CACHE_RESPONSE = 3
    IPV4_PREFIX = 4
    IPV6_PREFIX = 6
    END_OF_DATA = 7
    CACHE_RESET = 8
    ROUTER_KEY = 9
    ERROR_REPORT = 10
    ASPA = 11


class ErrorCode(IntEnum):
    CORRUPT_DATA = 0
    INTERNAL_ERROR = 1
    NO_DATA_AVAILABLE = 2
    INVALID_REQUEST = 3
    UNSUPPORTED_PROTOCOL_VERSION = 4
    UNSUPPORTED_PDU_TYPE = 5
    WITHDRAWAL_OF_UNKNOWN_RECORD = 6
    DUPLICATE_ANNOUNCEMENT = 7
    UNEXPECTED_PROTOCOL_VERSION = 8
    ASPA_PROVIDER_LIST_ERROR = 9
    TRANSPORT_FAILURE = 10
    ORDERING_ERROR = 11
    CACHE_RESTART = 12
    CACHE_SHUTDOWN = 13


#: Highest error code defined for each protocol version (RFC 6810 §10, RFC 8210 §12, bis §12).
MAX_ERROR_CODE = {0: 7, 1: 8, 2: 13}

#: PDU types each version knows (Router Key is v1+, ASPA is v2 only).
_TYPES_BY_VERSION = {
    0: frozenset(t for t in PDUType if t not in (PDUType.ROUTER_KEY, PDUType.ASPA)),
    1: frozenset(t for t in PDUType if t is not PDUType.ASPA),
    2: frozenset(PDUType),
}


def error_code_valid(code: int, version: int) -> bool:
    """Whether ``code`` is defined for a session of ``version``."""
    return 0 <= code <= MAX_ERROR_CODE.get(version, 13)


def error_is_fatal(code: int, version: int) -> bool:
    """Fatal errors drop the session and flush that cache's data (bis §12).

    No Data Available (2) and Cache Restart (12) are never fatal; Unsupported Protocol Version
    (4) became non-fatal in 8210bis (it is part of negotiation: nothing is established yet).
    """
    if code in (ErrorCode.NO_DATA_AVAILABLE, ErrorCode.CACHE_RESTART):
        return False
    return not (code == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION and version >= 2)


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.replace("_", " ").title()
    except ValueError:
        return f"Unknown error code {code}"


class PDUError(Exception):
    """A received PDU is malformed.  ``code`` is the Error Report code to send back."""

    def __init__(self, code: int, message: str, pdu: bytes = b"") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pdu = bytes(pdu)

    def __str__(self) -> str:
        return f"{error_name(self.code)} ({self.code}): {self.message}"


class LegacyASPALayout(PDUError):
    """An ASPA PDU in the draft-8210bis-10 layout (StayRTR 0.5.1, Huawei VRP), not the current one."""


# ---------------------------------------------------------------------------------------------
# PDU classes
# ---------------------------------------------------------------------------------------------

_HDR = struct.Struct("!BBHI")
_HDR_SERIAL = struct.Struct("!BBHII")
# a Prefix PDU is the header and one VRP batch record (the layout is rpki.payload's)
_V4 = struct.Struct(_HDR.format + BATCH_REC_V4.format[1:])
_V6 = struct.Struct(_HDR.format + BATCH_REC_V6.format[1:])
_EOD1 = struct.Struct("!BBHIIIII")
_U32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class SerialNotify:
    version: int
    session_id: int
    serial: int
    type = PDUType.SERIAL_NOTIFY

    def encode(self) -> bytes:
        return _HDR_SERIAL.pack(self.version, self.type, self.session_id, 12, self.serial)


@dataclass(frozen=True, slots=True)
class SerialQuery:
    version: int
    session_id: int
    serial: int
    type = PDUType.SERIAL_QUERY

    def encode(self) -> bytes:
        return _HDR_SERIAL.pack(self.version, self.type, self.session_id, 12, self.serial)


@dataclass(frozen=True, slots=True)
class ResetQuery:
    version: int
    type = PDUType.RESET_QUERY

    def encode(self) -> bytes:
        return _HDR.pack(self.version, self.type, 0, 8)


@dataclass(frozen=True, slots=True)
class CacheResponse:
    version: int
    session_id: int
    type = PDUType.CACHE_RESPONSE

    def encode(self) -> bytes:
        return _HDR.pack(self.version, self.type, self.session_id, 8)


@dataclass(frozen=True, slots=True)
class CacheReset:
    version: int
    type = PDUType.CACHE_RESET

    def encode(self) -> bytes:
        return _HDR.pack(self.version, self.type, 0, 8)


@dataclass(frozen=True, slots=True)
class PrefixPDU:
    """IPv4 Prefix (type 4) or IPv6 Prefix (type 6); the family follows from the VRP."""

    version: int
    announce: bool
    vrp: VRP

    @property
    def type(self) -> PDUType:
        return PDUType.IPV6_PREFIX if len(self.vrp.addr) == 16 else PDUType.IPV4_PREFIX

    def encode(self) -> bytes:
        return encode_prefix(self.version, self.announce, self.vrp)


@dataclass(frozen=True, slots=True)
class EndOfData:
    version: int
    session_id: int
    serial: int
    #: None in version 0, which carries no timers.
    refresh: int | None = None
    retry: int | None = None
    expire: int | None = None
    type = PDUType.END_OF_DATA

    def encode(self) -> bytes:
        if self.version == 0:
            return _HDR_SERIAL.pack(0, self.type, self.session_id, 12, self.serial)
        return _EOD1.pack(
            self.version,
            self.type,
            self.session_id,
            24,
            self.serial,
            self.refresh if self.refresh is not None else 3600,
            self.retry if self.retry is not None else 600,
            self.expire if self.expire is not None else 7200,
        )


@dataclass(frozen=True, slots=True)
class RouterKeyPDU:
    version: int
    announce: bool
    key: RouterKey
    type = PDUType.ROUTER_KEY

    def encode(self) -> bytes:
        k = self.key
        length = 32 + len(k.spki)
        return (
            _HDR.pack(self.version, self.type, (1 if self.announce else 0) << 8, length)
            + k.ski
            + _U32.pack(k.asn)
            + k.spki
        )


@dataclass(frozen=True, slots=True)
class ErrorReport:
    version: int
    code: int
    pdu: bytes = b""
    text: str = ""
    type = PDUType.ERROR_REPORT

    def encode(self) -> bytes:
        text = self.text.encode("utf-8")
        pdu = self.pdu
        length = 16 + len(pdu) + len(text)
        if length > MAX_PDU_LEN:  # bis §5.8: truncate, but keep at least the first 4 octets
            pdu = pdu[: max(4, MAX_PDU_LEN - 16 - len(text))]
            # cut the text at a character boundary, not inside a UTF-8 sequence
            text = text[: MAX_PDU_LEN - 16 - len(pdu)].decode("utf-8", "ignore").encode()
            length = 16 + len(pdu) + len(text)
        return (
            _HDR.pack(self.version, self.type, self.code, length)
            + _U32.pack(len(pdu))
            + pdu
            + _U32.pack(len(text))
            + text
        )


@dataclass(frozen=True, slots=True)
class ASPAPDU:
    """ASPA (type 11, v2 only), 8210bis-27 §5.12 layout: flags in header byte 2."""

    version: int
    announce: bool
    record: ASPARecord
    type = PDUType.ASPA

    def encode(self) -> bytes:
        providers = self.record.providers if self.announce else ()
        length = 12 + 4 * len(providers)
        return (
            _HDR.pack(self.version, self.type, (1 if self.announce else 0) << 8, length)
            + _U32.pack(self.record.customer)
            + b"".join(_U32.pack(p) for p in providers)
        )


PDU = (
    SerialNotify
    | SerialQuery
    | ResetQuery
    | CacheResponse
    | CacheReset
    | PrefixPDU
    | EndOfData
    | RouterKeyPDU
    | ErrorReport
    | ASPAPDU
)


def encode_prefix(version: int, announce: bool, vrp: VRP) -> bytes:
    if len(vrp.addr) == 4:
        return _V4.pack(
            version,
            PDUType.IPV4_PREFIX,
            0,
            20,
            int(announce),
            vrp.plen,
            vrp.maxlen,
            vrp.addr,
            vrp.asn,
        )
    return _V6.pack(
        version, PDUType.IPV6_PREFIX, 0, 32, int(announce), vrp.plen, vrp.maxlen, vrp.addr, vrp.asn
    )


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

_FIXED_LEN = {
    PDUType.SERIAL_NOTIFY: 12,
    PDUType.SERIAL_QUERY: 12,
    PDUType.RESET_QUERY: 8,
    PDUType.CACHE_RESPONSE: 8,
    PDUType.IPV4_PREFIX: 20,
    PDUType.IPV6_PREFIX: 32,
    PDUType.CACHE_RESET: 8,
}


def check_header(version: int, ptype: int, length: int, raw: bytes) -> None:
    """Header checks that do not need the body: known version and type, sane length."""
    if version not in SUPPORTED_VERSIONS:
        raise PDUError(
            ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            f"protocol version {version} is not supported",
            raw,
        )
    if length < HEADER_LEN:
        raise PDUError(
            ErrorCode.CORRUPT_DATA, f"PDU length {length} is below the 8-octet header", raw
        )
    if length > MAX_PDU_LEN:
        raise PDUError(
            ErrorCode.CORRUPT_DATA, f"PDU length {length} exceeds the 65,535-octet limit", raw
        )
    try:
        t = PDUType(ptype)
    except ValueError:
        raise PDUError(ErrorCode.UNSUPPORTED_PDU_TYPE, f"unknown PDU type {ptype}", raw) from None
    if t not in _TYPES_BY_VERSION[version]:
        raise PDUError(
            ErrorCode.UNSUPPORTED_PDU_TYPE, f"{t.name} PDU is not defined in version {version}", raw
        )
    fixed = _FIXED_LEN.get(t)
    if t is PDUType.END_OF_DATA:
        fixed = 12 if version == 0 else 24
    if fixed is not None and length != fixed:
        raise PDUError(
            ErrorCode.CORRUPT_DATA, f"{t.name} PDU has length {length}, expected {fixed}", raw
        )


def decode_prefix(data: bytes) -> tuple[bool, VRP]:
    """Decode a complete IPv4/IPv6 Prefix PDU (length already checked) into (announce, VRP)."""
    if len(data) == 20:
        _, _, _, _, flags, plen, maxlen, addr, asn = _V4.unpack(data)
        bits = 32
    else:
        _, _, _, _, flags, plen, maxlen, addr, asn = _V6.unpack(data)
        bits = 128
    if plen > bits or maxlen > bits or maxlen < plen:
        raise PDUError(
            ErrorCode.CORRUPT_DATA,
            f"bad lengths: prefix length {plen}, max length {maxlen} (need prefix length <= "
            f"max length <= {bits})",
            data,
        )
    if plen < bits and int.from_bytes(addr, "big") & ((1 << (bits - plen)) - 1):
        raise PDUError(
            ErrorCode.CORRUPT_DATA,
            f"prefix {_fmt_addr(addr)}/{plen} has bits set beyond its length",
            data,
        )
    return bool(flags & 1), VRP(addr, plen, maxlen, asn)


def _fmt_addr(addr: bytes) -> str:
    return str(IPv4Address(addr) if len(addr) == 4 else IPv6Address(addr))


def decode(data: bytes, *, aspa_draft10: bool = False) -> PDU:
    """Decode one complete PDU (exactly ``length`` bytes, as framed by :class:`Framer`)."""
    data = bytes(data)
    if len(data) < HEADER_LEN:
        raise PDUError(ErrorCode.CORRUPT_DATA, f"truncated PDU of {len(data)} octets", data)
    version, ptype, field, length = _HDR.unpack_from(data, 0)
    check_header(version, ptype, length, data)
    if length != len(data):
        raise PDUError(
            ErrorCode.CORRUPT_DATA, f"length field {length} != {len(data)} octets received", data
        )
    t = PDUType(ptype)
    if t is PDUType.IPV4_PREFIX or t is PDUType.IPV6_PREFIX:
        announce, vrp = decode_prefix(data)
        return PrefixPDU(version, announce, vrp)
    if t is PDUType.SERIAL_NOTIFY:
        return SerialNotify(version, field, _U32.unpack_from(data, 8)[0])
    if t is PDUType.SERIAL_QUERY:
        return SerialQuery(version, field, _U32.unpack_from(data, 8)[0])
    if t is PDUType.RESET_QUERY:
        return ResetQuery(version)
    if t is PDUType.CACHE_RESPONSE:
        return CacheResponse(version, field)
    if t is PDUType.CACHE_RESET:
        return CacheReset(version)
    if t is PDUType.END_OF_DATA:
        if version == 0:
            return EndOfData(0, field, _U32.unpack_from(data, 8)[0])
        _, _, _, _, serial, refresh, retry, expire = _EOD1.unpack(data)
        return EndOfData(version, field, serial, refresh, retry, expire)
    if t is PDUType.ERROR_REPORT:
        return _decode_error_report(data, version, field)
    if t is PDUType.ROUTER_KEY:
        if length < 32:
            raise PDUError(ErrorCode.CORRUPT_DATA, f"Router Key PDU of length {length} < 32", data)
        flags = field >> 8
        ski = data[8:28]
        asn = _U32.unpack_from(data, 28)[0]
        spki = data[32:]
        if not spki:
            raise PDUError(
                ErrorCode.CORRUPT_DATA, "Router Key PDU without SubjectPublicKeyInfo", data
            )
        return RouterKeyPDU(version, bool(flags & 1), RouterKey(ski, asn, spki))
    # ASPA
    return _decode_aspa(data, version, field, length, aspa_draft10)


def _decode_error_report(data: bytes, version: int, code: int) -> ErrorReport:
    length = len(data)
    if length < 16:
        raise PDUError(ErrorCode.CORRUPT_DATA, f"Error Report of length {length} < 16", data)
    enc_len = _U32.unpack_from(data, 8)[0]
    if 12 + enc_len + 4 > length:
        raise PDUError(
            ErrorCode.CORRUPT_DATA,
            f"Error Report encapsulated PDU length {enc_len} overruns the PDU",
            data,
        )
    enc = data[12 : 12 + enc_len]
    text_len = _U32.unpack_from(data, 12 + enc_len)[0]
    if 16 + enc_len + text_len != length:
        raise PDUError(
            ErrorCode.CORRUPT_DATA,
            f"Error Report text length {text_len} does not match the PDU length {length}",
            data,
        )
    text = data[16 + enc_len :].decode("utf-8", errors="replace").rstrip("\x00")
    return ErrorReport(version, code, enc, text)


def _decode_aspa(data: bytes, version: int, field: int, length: int, draft10: bool) -> ASPAPDU:
    flags, zero = field >> 8, field & 0xFF
    if _looks_draft10(data, flags, length):
        if not draft10:
            raise LegacyASPALayout(
                ErrorCode.ASPA_PROVIDER_LIST_ERROR,
                "ASPA PDU in the draft-8210bis-10 layout (flags, AFI and provider count in the "
                "body; sent by StayRTR 0.5.1), not the 8210bis-27 layout",
                data,
            )
        return _decode_aspa_draft10(data, version, length)
    if length < 12 or (length - 12) % 4:
        raise PDUError(ErrorCode.CORRUPT_DATA, f"ASPA PDU length {length} is not 12 + 4n", data)
    del zero  # reserved: ignored on receipt
    customer = _U32.unpack_from(data, 8)[0]
    providers = struct.unpack_from(f"!{(length - 12) // 4}I", data, 12)
    return _check_aspa(version, bool(flags & 1), customer, providers, data)


def _check_aspa(
    version: int, announce: bool, customer: int, providers: tuple[int, ...], data: bytes
) -> ASPAPDU:
    if not announce:
        if providers:
            raise PDUError(
                ErrorCode.ASPA_PROVIDER_LIST_ERROR,
                f"ASPA withdraw for AS{customer} carries {len(providers)} providers",
                data,
            )
        return ASPAPDU(version, False, ASPARecord(customer, ()))
    if not providers:
        raise PDUError(
            ErrorCode.ASPA_PROVIDER_LIST_ERROR,
            f"ASPA announce for AS{customer} has no providers",
            data,
        )
    if len(providers) > 1:
        if 0 in providers:
            raise PDUError(
                ErrorCode.ASPA_PROVIDER_LIST_ERROR,
                f"ASPA for AS{customer}: AS0 in a list of {len(providers)} providers",
                data,
            )
        if any(a >= b for a, b in itertools.pairwise(providers)):
            raise PDUError(
                ErrorCode.ASPA_PROVIDER_LIST_ERROR,
                f"ASPA for AS{customer}: providers not in strictly increasing order",
                data,
            )
    return ASPAPDU(version, True, ASPARecord(customer, tuple(providers)))


def _looks_draft10(data: bytes, hdr_flags: int, length: int) -> bool:
    """Recognise the draft-10 layout: header bytes 2-3 zero, body = flags, AFI, count, customer."""
    if hdr_flags != 0 or length < 16:
        return False
    flags, afi, count = data[8], data[9], int.from_bytes(data[10:12], "big")
    return (
        flags in (0, 1)
        and afi in (0, 1, 2, 3)
        and count == (length - 16) // 4
        and ((length - 16) % 4 == 0)
    )


def _decode_aspa_draft10(data: bytes, version: int, length: int) -> ASPAPDU:
    announce = bool(data[8] & 1)
    customer = _U32.unpack_from(data, 12)[0]
    providers = tuple(sorted(set(struct.unpack_from(f"!{(length - 16) // 4}I", data, 16))))
    if len(providers) > 1:
        providers = tuple(p for p in providers if p != 0)
    if not announce:
        return ASPAPDU(version, False, ASPARecord(customer, ()))
    return _check_aspa(version, True, customer, providers, data)


_HOSTMASK4 = [(1 << (32 - n)) - 1 for n in range(33)]
_HOSTMASK6 = [(1 << (128 - n)) - 1 for n in range(129)]
_B4 = struct.Struct(_HDR.format + BATCH_INT_V4.format[1:])  # the address as an int, for the mask
_B6 = _V6


class Framer:
    """Splits a TCP byte stream into PDUs.  Feed bytes, iterate complete PDU byte strings.

    A length field that cannot be right (below 8, above 65,535) raises :class:`PDUError` at
    once, without waiting for bytes that would never come.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf)

    def take_prefixes(self, version: int, batch) -> int:
        """Fast path for the bulk of a transfer: move consecutive well-formed Prefix PDUs of
        ``version`` from the front of the buffer into ``batch`` (a :class:`VRPBatch`) as raw
        records.  Stops at the first PDU that is anything else or fails a check, leaving it to
        :func:`decode` to report precisely.  Returns the number of PDUs taken."""
        buf = self._buf
        n = len(buf)
        off = 0
        taken = 0
        v4 = batch.v4
        v6 = batch.v6
        m4 = _HOSTMASK4
        m6 = _HOSTMASK6
        unpack4 = _B4.unpack_from
        unpack6 = _B6.unpack_from
        while n - off >= 20:
            ver = buf[off]
            typ = buf[off + 1]
            if ver != version:
                break
            if typ == 4:
                _, _, _, length, _flags, plen, maxlen, addr, _asn = unpack4(buf, off)
                if length != 20 or maxlen > 32 or plen > maxlen or addr & m4[plen]:
                    break
                v4 += buf[off + 8 : off + 20]
                off += 20
            elif typ == 6:
                if n - off < 32:
                    break
                _, _, _, length, _flags, plen, maxlen, addr, _asn = unpack6(buf, off)
                if (
                    length != 32
                    or maxlen > 128
                    or plen > maxlen
                    or (int.from_bytes(addr, "big") & m6[plen])
                ):
                    break
                v6 += buf[off + 8 : off + 32]
                off += 32
            else:
                break
            taken += 1
        if off:
            del buf[:off]
        return taken

    def __iter__(self):
        buf = self._buf
        off = 0
        n = len(buf)
        try:
            while n - off >= HEADER_LEN:
                length = _U32.unpack_from(buf, off + 4)[0]
                if length < HEADER_LEN or length > MAX_PDU_LEN:
                    raw = bytes(buf[off : off + min(max(length, HEADER_LEN), 64, n - off)])
                    v, t, _, _ = _HDR.unpack_from(buf, off)
                    check_header(v, t, length, raw)  # raises with the precise reason
                if n - off < length:
                    break
                pdu = bytes(buf[off : off + length])
                off += length  # before yielding: a consumer may stop after this PDU
                yield pdu
        finally:
            del buf[:off]
