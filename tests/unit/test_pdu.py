"""PDU encoding, strict decoding and framing (RFC 6810 v0, RFC 8210 v1, 8210bis-27 v2).

Expected bytes and error codes come from the RFCs and from StayRTR 0.5.1 captures,
not from the code under test.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rov_router.rpki.vrp import VRP, ASPARecord, RouterKey, VRPBatch
from rov_router.rtr import pdu as P
from rov_router.rtr.pdu import (
    ASPAPDU,
    CacheReset,
    CacheResponse,
    EndOfData,
    ErrorCode,
    ErrorReport,
    Framer,
    LegacyASPALayout,
    PDUError,
    PrefixPDU,
    ResetQuery,
    RouterKeyPDU,
    SerialNotify,
    SerialQuery,
    decode,
    error_code_valid,
    error_is_fatal,
)

# ---------------------------------------------------------------------------------------------
# helpers: hand-built PDUs (struct only, independent of the encoders under test)
# ---------------------------------------------------------------------------------------------


def hdr(version: int, ptype: int, field: int, length: int) -> bytes:
    return struct.pack("!BBHI", version, ptype, field, length)


def raw_v4(
    version=2, flags=1, plen=24, maxlen=24, addr=b"\xc0\x00\x02\x00", asn=64496, length=20
) -> bytes:
    return hdr(version, 4, 0, length) + struct.pack("!BBBx4sI", flags, plen, maxlen, addr, asn)


def raw_v6(version=2, flags=1, plen=32, maxlen=48, addr=None, asn=64497, length=32) -> bytes:
    if addr is None:
        addr = bytes.fromhex("20010db8") + bytes(12)
    return hdr(version, 6, 0, length) + struct.pack("!BBBx16sI", flags, plen, maxlen, addr, asn)


def raw_aspa(version=2, flags=1, customer=64496, providers=(64500,), length=None) -> bytes:
    body = struct.pack("!I", customer) + b"".join(struct.pack("!I", p) for p in providers)
    if length is None:
        length = 8 + len(body)
    return hdr(version, 11, flags << 8, length) + body


def raw_error(version=2, code=0, enc=b"", text=b"", enc_len=None, text_len=None, length=None):
    enc_len = len(enc) if enc_len is None else enc_len
    text_len = len(text) if text_len is None else text_len
    body = struct.pack("!I", enc_len) + enc + struct.pack("!I", text_len) + text
    if length is None:
        length = 8 + len(body)
    return hdr(version, 10, code, length) + body


def code_of(data: bytes, **kw) -> int:
    with pytest.raises(PDUError) as ei:
        decode(data, **kw)
    return ei.value.code


V4 = VRP(bytes([192, 0, 2, 0]), 24, 24, 64496)
V6 = VRP(bytes.fromhex("20010db8") + bytes(12), 32, 48, 64497)
KEY = RouterKey(
    bytes(range(20)), 64496, b"\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01" + b"k" * 10
)

# ---------------------------------------------------------------------------------------------
# 1. round trips
# ---------------------------------------------------------------------------------------------

ALL_VERSIONS = (0, 1, 2)


def _roundtrip_cases():
    for v in ALL_VERSIONS:
        yield f"serial-notify-v{v}", SerialNotify(v, 0xAF56, 0xFFFFFFFF), 12
        yield f"serial-query-v{v}", SerialQuery(v, 7, 12345), 12
        yield f"reset-query-v{v}", ResetQuery(v), 8
        yield f"cache-response-v{v}", CacheResponse(v, 0xFFFF), 8
        yield f"cache-reset-v{v}", CacheReset(v), 8
        yield f"ipv4-announce-v{v}", PrefixPDU(v, True, V4), 20
        yield f"ipv4-withdraw-v{v}", PrefixPDU(v, False, V4), 20
        yield f"ipv6-announce-v{v}", PrefixPDU(v, True, V6), 32
        yield f"ipv6-withdraw-v{v}", PrefixPDU(v, False, V6), 32
        enc = PrefixPDU(v, True, V4).encode()
        yield (
            f"error-report-v{v}",
            ErrorReport(v, 7, enc, "duplicate announcement \u2014 AS64496"),
            16 + 20 + len("duplicate announcement \u2014 AS64496".encode()),
        )
        yield f"error-report-empty-v{v}", ErrorReport(v, 2), 16
    yield "end-of-data-v0", EndOfData(0, 44886, 17), 12
    for v in (1, 2):
        yield f"end-of-data-v{v}", EndOfData(v, 44886, 17, 3600, 600, 7200), 24
        yield f"router-key-announce-v{v}", RouterKeyPDU(v, True, KEY), 32 + len(KEY.spki)
        yield f"router-key-withdraw-v{v}", RouterKeyPDU(v, False, KEY), 32 + len(KEY.spki)
    yield "aspa-announce-v2", ASPAPDU(2, True, ASPARecord(64496, (64500, 64501, 65000))), 24
    yield "aspa-announce-as0-v2", ASPAPDU(2, True, ASPARecord(64497, (0,))), 16
    yield "aspa-withdraw-v2", ASPAPDU(2, False, ASPARecord(64496, ())), 12


ROUNDTRIP = list(_roundtrip_cases())


@pytest.mark.parametrize(
    ("pdu", "length"), [c[1:] for c in ROUNDTRIP], ids=[c[0] for c in ROUNDTRIP]
)
def test_roundtrip(pdu, length):
    data = pdu.encode()
    assert len(data) == length
    version, ptype, _, hdr_len = struct.unpack_from("!BBHI", data)
    assert (version, ptype, hdr_len) == (pdu.version, int(pdu.type), length)
    assert decode(data) == pdu
    # Re-encoding the decoded PDU gives the same bytes.
    assert decode(data).encode() == data


def test_exact_bytes_of_queries():
    assert ResetQuery(2).encode() == bytes.fromhex("0202000000000008")
    assert ResetQuery(0).encode() == bytes.fromhex("0002000000000008")
    assert SerialQuery(1, 0xAF56, 0x01020304).encode() == bytes.fromhex("0101af560000000c01020304")


def test_exact_bytes_of_prefix_and_eod():
    assert PrefixPDU(1, True, V4).encode() == raw_v4(version=1)
    assert PrefixPDU(2, False, V6).encode() == raw_v6(version=2, flags=0)
    # End of Data v2 from a StayRTR 0.5.1 capture
    eod = bytes.fromhex("0207af56000000180000000000000e100000025800001c20")
    assert decode(eod) == EndOfData(2, 44886, 0, 3600, 600, 7200)
    assert EndOfData(2, 44886, 0, 3600, 600, 7200).encode() == eod
    eod0 = EndOfData(0, 44886, 9).encode()
    assert eod0 == bytes.fromhex("0007af560000000c00000009")
    assert decode(eod0).refresh is None


def test_exact_bytes_of_router_key_and_aspa():
    rk = RouterKeyPDU(1, True, KEY).encode()
    assert rk[:8] == hdr(1, 9, 0x0100, 32 + len(KEY.spki))
    assert rk[8:28] == KEY.ski
    assert rk[28:32] == struct.pack("!I", 64496)
    assert rk[32:] == KEY.spki
    assert ASPAPDU(2, True, ASPARecord(64496, (64500, 64501))).encode() == raw_aspa(
        providers=(64500, 64501)
    )
    withdraw = ASPAPDU(2, False, ASPARecord(64496, ())).encode()
    assert withdraw == bytes.fromhex("020b00000000000c0000fbf0")


def test_error_report_layout_and_nul_terminated_text():
    enc = bytes.fromhex("0302000000000008")  # a version-3 Reset Query
    data = ErrorReport(0, 4, enc, "Bad protocol version").encode()
    assert data == raw_error(0, 4, enc, b"Bad protocol version")
    # StayRTR terminates its text with a NUL byte (0.5.1)
    got = decode(raw_error(0, 4, enc, b"Bad protocol version\x00"))
    assert got == ErrorReport(0, 4, enc, "Bad protocol version")


def test_error_report_truncates_oversize_pdu_keeping_first_octets():
    big = bytes(70000)
    data = ErrorReport(2, 0, big, "x").encode()
    assert len(data) <= P.MAX_PDU_LEN
    got = decode(data)
    assert len(got.pdu) >= 4
    assert got.text == "x"


# ---- property tests ------------------------------------------------------------------------


@st.composite
def vrps(draw):
    bits = draw(st.sampled_from((32, 128)))
    plen = draw(st.integers(0, bits))
    maxlen = draw(st.integers(plen, bits))
    raw = draw(st.integers(0, (1 << bits) - 1))
    mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
    addr = (raw & mask).to_bytes(bits // 8, "big")
    asn = draw(st.integers(0, 0xFFFFFFFF))
    return VRP(addr, plen, maxlen, asn)


@settings(max_examples=300, deadline=None)
@given(version=st.sampled_from(ALL_VERSIONS), announce=st.booleans(), vrp=vrps())
def test_prefix_roundtrip_property(version, announce, vrp):
    pdu = PrefixPDU(version, announce, vrp)
    data = pdu.encode()
    assert len(data) == (20 if len(vrp.addr) == 4 else 32)
    assert decode(data) == pdu
    # The framer's fast path agrees with decode().
    f = Framer()
    f.feed(data)
    batch = VRPBatch()
    assert f.take_prefixes(version, batch) == 1
    assert f.pending == 0
    assert list(batch) == [(announce, vrp)]


asns = st.integers(1, 0xFFFFFFFF)


@st.composite
def aspa_pdus(draw):
    customer = draw(st.integers(0, 0xFFFFFFFF))
    kind = draw(st.sampled_from(("announce", "as0", "withdraw")))
    if kind == "withdraw":
        return ASPAPDU(2, False, ASPARecord(customer, ()))
    if kind == "as0":
        return ASPAPDU(2, True, ASPARecord(customer, (0,)))
    providers = tuple(sorted(draw(st.sets(asns, min_size=1, max_size=40))))
    return ASPAPDU(2, True, ASPARecord(customer, providers))


@settings(max_examples=300, deadline=None)
@given(pdu=aspa_pdus())
def test_aspa_roundtrip_property(pdu):
    data = pdu.encode()
    assert len(data) == 12 + 4 * len(pdu.record.providers)
    assert data[2] == (1 if pdu.announce else 0)  # flags in header byte 2
    assert data[3] == 0
    assert decode(data) == pdu


# ---------------------------------------------------------------------------------------------
# 2. malformed PDUs -> error codes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ptype", [5, 12, 13, 100, 255])
def test_unknown_pdu_type(ptype):
    assert code_of(hdr(1, ptype, 0, 8)) == ErrorCode.UNSUPPORTED_PDU_TYPE == 5


def test_router_key_in_v0_is_unsupported_type():
    data = RouterKeyPDU(1, True, KEY).encode()
    data = b"\x00" + data[1:]
    assert code_of(data) == 5


@pytest.mark.parametrize("version", [0, 1])
def test_aspa_below_v2_is_unsupported_type(version):
    assert code_of(raw_aspa(version=version)) == 5


_FIXED = [
    (2, 0, 12),  # Serial Notify
    (2, 1, 12),  # Serial Query
    (2, 2, 8),  # Reset Query
    (2, 3, 8),  # Cache Response
    (2, 4, 20),  # IPv4 Prefix
    (2, 6, 32),  # IPv6 Prefix
    (0, 7, 12),  # End of Data v0
    (1, 7, 24),  # End of Data v1
    (2, 7, 24),  # End of Data v2
    (2, 8, 8),  # Cache Reset
]
_WRONG_LEN = [
    (v, t, good + d) for v, t, good in _FIXED for d in (-4, -1, 1, 4, 12) if good + d >= 8
]


@pytest.mark.parametrize(("version", "ptype", "length"), _WRONG_LEN)
def test_wrong_fixed_length(version, ptype, length):
    data = hdr(version, ptype, 0, length) + bytes(length - 8)
    assert code_of(data) == ErrorCode.CORRUPT_DATA == 0


def test_end_of_data_lengths_are_per_version():
    # a 24-octet End of Data is wrong in v0, a 12-octet one wrong in v1/v2
    assert code_of(b"\x00" + EndOfData(1, 1, 1, 3600, 600, 7200).encode()[1:]) == 0
    assert code_of(b"\x01" + EndOfData(0, 1, 1).encode()[1:]) == 0
    assert code_of(b"\x02" + EndOfData(0, 1, 1).encode()[1:]) == 0


def test_router_key_too_short_or_without_spki():
    assert code_of(hdr(1, 9, 0x0100, 28) + bytes(20)) == 0
    assert code_of(hdr(1, 9, 0x0100, 32) + bytes(24)) == 0


def test_length_field_disagrees_with_data():
    data = SerialNotify(1, 1, 1).encode()
    assert code_of(data + b"\x00") == 0
    assert code_of(data[:6]) == 0


@pytest.mark.parametrize("length", [0, 1, 7])
def test_framer_rejects_length_below_header(length):
    f = Framer()
    f.feed(hdr(2, 2, 0, length))
    with pytest.raises(PDUError) as ei:
        list(f)
    assert ei.value.code == 0


@pytest.mark.parametrize("length", [65536, 0x7FFFFFFF, 0xFFFFFFFF])
def test_framer_rejects_length_above_64k_without_waiting(length):
    f = Framer()
    f.feed(hdr(2, 10, 0, length))  # only the header: must not wait for more bytes
    with pytest.raises(PDUError) as ei:
        list(f)
    assert ei.value.code == 0


def test_framer_accepts_length_65535():
    text = b"x" * (65535 - 16)
    data = raw_error(2, 1, b"", text)
    assert len(data) == 65535
    f = Framer()
    f.feed(data)
    assert list(f) == [data]
    assert decode(data).text == text.decode()


@pytest.mark.parametrize(
    "data",
    [
        raw_v4(plen=33, maxlen=33, addr=bytes(4)),
        raw_v4(plen=24, maxlen=33),
        raw_v4(plen=24, maxlen=23),
        raw_v4(plen=0, maxlen=255, addr=bytes(4)),
        raw_v6(plen=129, maxlen=129, addr=bytes(16)),
        raw_v6(plen=32, maxlen=129),
        raw_v6(plen=48, maxlen=32),
        # StayRTR's ::ffff:0:0/96 sent as an IPv4 PDU 0.0.0.0/96-96
        raw_v4(plen=96, maxlen=96, addr=bytes(4)),
    ],
    ids=[
        "v4-plen33",
        "v4-maxlen33",
        "v4-max<plen",
        "v4-maxlen255",
        "v6-plen129",
        "v6-maxlen129",
        "v6-max<plen",
        "stayrtr-v4-96",
    ],
)
def test_bad_prefix_lengths(data):
    assert code_of(data) == 0


@pytest.mark.parametrize(
    "data",
    [
        raw_v4(plen=24, maxlen=24, addr=bytes([192, 0, 2, 1])),
        raw_v4(plen=0, maxlen=8, addr=bytes([0, 0, 0, 1])),
        raw_v4(plen=31, maxlen=32, addr=bytes([10, 0, 0, 1])),
        raw_v6(plen=32, maxlen=48, addr=bytes.fromhex("20010db8") + b"\x80" + bytes(11)),
        raw_v6(plen=127, maxlen=128, addr=bytes(15) + b"\x01"),
    ],
)
def test_host_bits_beyond_prefix_length(data):
    assert code_of(data) == 0


def test_full_length_prefixes_and_zero_prefix_are_fine():
    assert decode(raw_v4(plen=32, maxlen=32, addr=bytes([192, 0, 2, 255]))).vrp.plen == 32
    assert decode(raw_v4(plen=0, maxlen=0, addr=bytes(4))).vrp.plen == 0
    assert decode(raw_v6(plen=128, maxlen=128, addr=b"\xff" * 16)).vrp.plen == 128


def test_reserved_fields_are_ignored_on_receipt():
    data = bytearray(raw_v4())
    data[2:4] = b"\xff\xff"  # bytes 2-3 are zero for prefix PDUs
    data[11] = 0xFF  # zero byte after Max Length
    assert decode(bytes(data)) == PrefixPDU(2, True, V4)
    aspa = bytearray(raw_aspa())
    aspa[3] = 0x55  # byte 3 zero
    assert decode(bytes(aspa)) == ASPAPDU(2, True, ASPARecord(64496, (64500,)))


@pytest.mark.parametrize("version", [3, 4, 255])
def test_unsupported_version(version):
    assert code_of(hdr(version, 2, 0, 8)) == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION == 4
    assert code_of(raw_error(version, 0)) == 4


@pytest.mark.parametrize(
    "data",
    [
        raw_error(enc=b"abcd", enc_len=100),  # encapsulated PDU overruns
        raw_error(enc=b"abcd", enc_len=0xFFFFFFFF),
        raw_error(text=b"hello", text_len=6),  # text overruns
        raw_error(text=b"hello", text_len=0xFFFFFFFF),
        raw_error(text=b"hello", text_len=4),  # text shorter than the PDU
        hdr(2, 10, 0, 12) + bytes(4),  # no room for the text length
        raw_error(enc=b"abcd", text=b"hi", enc_len=5),
        # the encapsulated PDU fits, but leaves no room for the text length field
        raw_error(enc=b"abcd", enc_len=6),
        raw_error(enc=b"abcd", enc_len=8),
    ],
)
def test_error_report_inner_lengths(data):
    assert code_of(data) == 0


def test_aspa_announce_without_providers():
    assert code_of(raw_aspa(flags=1, providers=())) == ErrorCode.ASPA_PROVIDER_LIST_ERROR == 9


@pytest.mark.parametrize("providers", [(0, 64500), (64500, 0), (0, 0)])
def test_aspa_as0_in_multi_provider_list(providers):
    assert code_of(raw_aspa(providers=providers)) == 9


@pytest.mark.parametrize("providers", [(64501, 64500), (64500, 64500), (1, 3, 2), (5, 5, 6)])
def test_aspa_providers_not_strictly_increasing(providers):
    assert code_of(raw_aspa(providers=providers)) == 9


@pytest.mark.parametrize("providers", [(64500,), (64500, 64501), (0,)])
def test_aspa_withdraw_with_providers(providers):
    assert code_of(raw_aspa(flags=0, customer=64496, providers=providers)) == 9


@pytest.mark.parametrize("extra", [1, 2, 3, 5])
def test_aspa_length_not_12_plus_4n(extra):
    for flags in (0, 1):
        data = raw_aspa(flags=flags, providers=(64500,)) + bytes(extra)
        data = data[:4] + struct.pack("!I", len(data)) + data[8:]
        assert code_of(data) == 0


def test_aspa_length_below_12():
    assert code_of(hdr(2, 11, 0x0100, 8)) == 0
    assert code_of(hdr(2, 11, 0x0100, 11) + bytes(3)) == 0


# ---- StayRTR 0.5.1 draft-10 ASPA layout --------------------------------------

STAYRTR_CAPTURE = [
    "02 03 af 56 00 00 00 08",
    "02 0b 00 00 00 00 00 18 01 00 00 02 00 00 fb f0 00 00 fb f4 00 00 fb f5",
    "02 0b 00 00 00 00 00 14 01 00 00 01 00 00 fb f1 00 00 00 00",
    "02 0b 00 00 00 00 00 14 01 01 00 01 00 00 fb f0 00 00 fb f4",
    "02 0b 00 00 00 00 00 1c 01 01 00 03 00 00 fc 08 00 00 34 17 00 00 3b 41 00 00 fc 09",
    "02 07 af 56 00 00 00 18 00 00 00 00 00 00 0e 10 00 00 02 58 00 00 1c 20",
]
STAYRTR = [bytes.fromhex(s.replace(" ", "")) for s in STAYRTR_CAPTURE]
STAYRTR_ASPA = STAYRTR[1:5]
STAYRTR_ASPA_DECODED = [
    ASPAPDU(2, True, ASPARecord(64496, (64500, 64501))),
    ASPAPDU(2, True, ASPARecord(64497, (0,))),
    ASPAPDU(2, True, ASPARecord(64496, (64500,))),
    ASPAPDU(2, True, ASPARecord(64520, (13335, 15169, 64521))),
]


@pytest.mark.parametrize("data", STAYRTR_ASPA)
def test_draft10_aspa_is_diagnosed_by_default(data):
    with pytest.raises(LegacyASPALayout) as ei:
        decode(data)
    assert isinstance(ei.value, PDUError)
    assert ei.value.pdu == data


@pytest.mark.parametrize(
    ("data", "expected"), list(zip(STAYRTR_ASPA, STAYRTR_ASPA_DECODED, strict=True))
)
def test_draft10_aspa_decodes_in_compat_mode(data, expected):
    assert decode(data, aspa_draft10=True) == expected


def test_draft10_compat_does_not_change_current_layout_parsing():
    for pdu in (
        ASPAPDU(2, True, ASPARecord(64496, (64500, 64501))),
        ASPAPDU(2, False, ASPARecord(64496, ())),
        ASPAPDU(2, True, ASPARecord(1, (0,))),
    ):
        assert decode(pdu.encode(), aspa_draft10=True) == pdu


def test_draft10_withdraw_in_compat_mode():
    # flags 0, AFI IPv4, count 1, customer 64496, provider 64500 (draft-10 withdraw)
    data = hdr(2, 11, 0, 20) + bytes([0, 0, 0, 1]) + struct.pack("!II", 64496, 64500)
    with pytest.raises(LegacyASPALayout):
        decode(data)
    assert decode(data, aspa_draft10=True) == ASPAPDU(2, False, ASPARecord(64496, ()))


def test_stayrtr_capture_frames_and_decodes():
    stream = b"".join(STAYRTR)
    assert len(stream) == 8 + 24 + 20 + 20 + 28 + 24
    f = Framer()
    f.feed(stream)
    pdus = [decode(raw, aspa_draft10=True) for raw in f]
    assert pdus[0] == CacheResponse(2, 44886)
    assert pdus[1:5] == STAYRTR_ASPA_DECODED
    assert pdus[5] == EndOfData(2, 44886, 0, 3600, 600, 7200)


# ---------------------------------------------------------------------------------------------
# 3. Framer
# ---------------------------------------------------------------------------------------------


def _sample_stream() -> list[bytes]:
    return [
        CacheResponse(2, 7).encode(),
        PrefixPDU(2, True, V4).encode(),
        PrefixPDU(2, True, V6).encode(),
        RouterKeyPDU(2, True, KEY).encode(),
        ASPAPDU(2, True, ASPARecord(64496, (64500, 64501))).encode(),
        ErrorReport(2, 2, b"", "no data").encode(),
        PrefixPDU(2, False, V4).encode(),
        EndOfData(2, 7, 1, 3600, 600, 7200).encode(),
    ]


def test_framer_whole_stream():
    pdus = _sample_stream()
    f = Framer()
    f.feed(b"".join(pdus))
    assert list(f) == pdus
    assert f.pending == 0


def test_framer_one_byte_at_a_time():
    pdus = _sample_stream()
    stream = b"".join(pdus)
    f = Framer()
    got = []
    for i in range(len(stream)):
        f.feed(stream[i : i + 1])
        got.extend(f)
    assert got == pdus
    assert f.pending == 0


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=20))
def test_framer_arbitrary_split_points(cuts):
    pdus = _sample_stream()
    stream = b"".join(pdus)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    f = Framer()
    got = []
    for a, b in itertools.pairwise(points):
        f.feed(stream[a:b])
        got.extend(f)
    assert got == pdus


def test_framer_keeps_incomplete_pdu():
    data = PrefixPDU(2, True, V6).encode()
    f = Framer()
    f.feed(data[:31])
    assert list(f) == []
    assert f.pending == 31
    f.feed(data[31:])
    assert list(f) == [data]


def test_framer_consumer_may_stop_after_one_pdu():
    pdus = _sample_stream()
    f = Framer()
    f.feed(b"".join(pdus))
    it = iter(f)
    assert next(it) == pdus[0]
    it.close()
    assert list(f) == pdus[1:]


def test_take_prefixes_one_byte_at_a_time():
    pdus = [PrefixPDU(1, i % 2 == 0, V4 if i % 3 else V6).encode() for i in range(10)]
    stream = b"".join(pdus)
    f = Framer()
    batch = VRPBatch()
    taken = 0
    for i in range(len(stream)):
        f.feed(stream[i : i + 1])
        taken += f.take_prefixes(1, batch)
    assert taken == 10
    assert f.pending == 0
    ref = VRPBatch(((i % 2 == 0), V4 if i % 3 else V6) for i in range(10))
    assert list(batch) == list(ref)


@pytest.mark.parametrize(
    "stopper",
    [
        EndOfData(2, 7, 1, 3600, 600, 7200).encode(),  # not a prefix PDU
        ASPAPDU(2, True, ASPARecord(1, (2,))).encode(),
        raw_v4(addr=bytes([192, 0, 2, 1])),  # host bits
        raw_v4(plen=24, maxlen=33),  # maxlen > 32
        raw_v4(plen=25, maxlen=24, addr=bytes([192, 0, 2, 0])),  # maxlen < plen
        raw_v6(plen=48, maxlen=129),
        raw_v6(addr=b"\xff" * 16),  # host bits
        raw_v4(version=1),  # another version
        raw_v4(length=24) + bytes(4),  # wrong length
        raw_v6(length=36) + bytes(4),
        hdr(2, 5, 0, 20) + bytes(12),  # unassigned type 5
    ],
)
def test_take_prefixes_stops_at_first_non_prefix_or_invalid(stopper):
    good = [PrefixPDU(2, True, V4).encode(), PrefixPDU(2, True, V6).encode()]
    after = PrefixPDU(2, False, V4).encode()
    f = Framer()
    f.feed(b"".join(good) + stopper + after)
    batch = VRPBatch()
    assert f.take_prefixes(2, batch) == 2
    assert list(batch) == [(True, V4), (True, V6)]
    assert f.pending == len(stopper) + len(after)
    # Calling again does not skip the stopper.
    assert f.take_prefixes(2, batch) == 0
    assert len(batch) == 2
    frames = list(f)
    assert frames[0] == stopper
    assert frames[-1] == after


def test_take_prefixes_leaves_partial_pdu():
    data = PrefixPDU(2, True, V6).encode()
    f = Framer()
    f.feed(PrefixPDU(2, True, V4).encode() + data[:25])
    batch = VRPBatch()
    assert f.take_prefixes(2, batch) == 1
    assert f.pending == 25
    f.feed(data[25:])
    assert f.take_prefixes(2, batch) == 1
    assert list(batch) == [(True, V4), (True, V6)]


# ---------------------------------------------------------------------------------------------
# error code tables
# ---------------------------------------------------------------------------------------------


def test_error_code_validity_per_version():
    assert all(error_code_valid(c, 0) for c in range(8))
    assert not error_code_valid(8, 0)
    assert error_code_valid(8, 1)
    assert not any(error_code_valid(c, 1) for c in range(9, 14))
    assert all(error_code_valid(c, 2) for c in range(14))
    for v in ALL_VERSIONS:
        assert not error_code_valid(14, v)
        assert not error_code_valid(255, v)


def test_error_fatality():
    for v in ALL_VERSIONS:
        assert not error_is_fatal(ErrorCode.NO_DATA_AVAILABLE, v)
        for c in (0, 1, 3, 5, 6, 7):
            assert error_is_fatal(c, v)
    assert not error_is_fatal(ErrorCode.CACHE_RESTART, 2)
    assert error_is_fatal(ErrorCode.CACHE_SHUTDOWN, 2)
    for c in (8, 9, 10, 11):
        assert error_is_fatal(c, 2)
    # Unsupported Protocol Version: fatal in 6810/8210, non-fatal in 8210bis
    assert error_is_fatal(4, 0)
    assert error_is_fatal(4, 1)
    assert not error_is_fatal(4, 2)


def test_oversized_error_report_text_cut_at_a_character_boundary():
    text = "é" * 40_000  # 80,000 octets of UTF-8
    raw = P.ErrorReport(2, 0, b"\x02\x04\x00\x00\x00\x00\x00\x14", text).encode()
    assert len(raw) <= P.MAX_PDU_LEN
    back = P.decode(raw)
    assert isinstance(back, P.ErrorReport) and set(back.text) == {"é"}
