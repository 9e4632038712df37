"""SLURM (RFC 8416) local exceptions, plus ASPA filters and assertions
(draft-spaghetti-sidrops-aspa-slurm): filters remove payload from the validated output, then
locally added assertions are added.

* Prefix filter (§3.3.1): a VRP matches when its prefix is equal to or more specific than the
  filter's prefix (if given) and its ASN equals the filter's ASN (if given).
* BGPsec filter (§3.3.2): by ASN and / or SKI (base64url, no padding).
* Prefix assertion (§3.4.1): a VRP; ``maxPrefixLength`` defaults to the prefix length.
* BGPsec assertion (§3.4.2): ASN, SKI and router public key (base64url).
* ASPA filter: ``customer_asid``; ASPA assertion: ``customer_asid`` + ``provider_set``
  (``customerAsid`` / ``providers`` accepted too); an assertion replaces the customer's record.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .vrp import VRP, RouterKey, VRPFileError, VRPSet, _loads, parse_asn, parse_prefix, read_bytes


@dataclass
class Slurm:
    prefix_filters: list[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network | None, int | None]
    ] = field(default_factory=list)
    bgpsec_filters: list[tuple[int | None, bytes | None]] = field(default_factory=list)
    aspa_filters: set[int] = field(default_factory=set)
    prefix_assertions: set[VRP] = field(default_factory=set)
    bgpsec_assertions: set[RouterKey] = field(default_factory=set)
    aspa_assertions: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def apply(self, data: VRPSet) -> VRPSet:
        """A new VRPSet: ``data`` filtered, then with the assertions added."""
        out = VRPSet(
            entries=data.entries,
            duplicates=data.duplicates,
            expired=data.expired,
            masked=data.masked,
            format=data.format,
            tas=data.tas,  # assertions have no trust anchor
        )
        out.vrps = {v for v in data.vrps if not self._filtered(v)}
        out.vrps |= self.prefix_assertions
        out.router_keys = {k for k in data.router_keys if not self._key_filtered(k)}
        out.router_keys |= self.bgpsec_assertions
        out.aspas = {c: p for c, p in data.aspas.items() if c not in self.aspa_filters}
        out.aspas.update(self.aspa_assertions)
        return out

    def _filtered(self, v: VRP) -> bool:
        net = None
        for fnet, fasn in self.prefix_filters:
            if fasn is not None and fasn != v.asn:
                continue
            if fnet is not None:
                if net is None:
                    net = ipaddress.ip_network((v.addr, v.plen))
                if net.version != fnet.version or not net.subnet_of(fnet):  # type: ignore[arg-type]
                    continue
            return True
        return False

    def _key_filtered(self, k: RouterKey) -> bool:
        return any(
            (fasn is None or fasn == k.asn) and (fski is None or fski == k.ski)
            for fasn, fski in self.bgpsec_filters
        )


_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _b64url(text: object) -> bytes:
    """Decode unpadded base64url (RFC 8416 §3.3.2, RFC 4648 §5) with a readable error."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise ValueError(f"{text!r} is not base64url (RFC 4648 §5: A-Z a-z 0-9 - _)")
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        raise ValueError(
            f"{text!r} is not base64url: {len(body)} characters cannot encode whole bytes"
        )
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def load_slurm(path: str | Path) -> Slurm:
    """Read a SLURM file; errors name the file, the entry and the reason."""
    p = str(path)
    try:
        doc = _loads(read_bytes(p))
    except ValueError as e:
        if isinstance(e, VRPFileError):
            raise
        raise VRPFileError(p, "", f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise VRPFileError(p, "", "top level is not an object")
    if doc.get("slurmVersion") != 1:
        raise VRPFileError(p, "slurmVersion", f"must be 1, got {doc.get('slurmVersion')!r}")
    s = Slurm()
    filters = _section(p, doc, "validationOutputFilters")
    asserts = _section(p, doc, "locallyAddedAssertions")

    def prefix_filter(e: dict) -> None:
        net = None
        if "prefix" in e:
            addr, plen = parse_prefix(e["prefix"])
            net = ipaddress.ip_network((addr, plen))
        asn = parse_asn(e["asn"]) if "asn" in e else None
        if net is None and asn is None:
            raise ValueError("a prefix filter needs 'prefix' and / or 'asn'")
        s.prefix_filters.append((net, asn))

    def bgpsec_filter(e: dict) -> None:
        asn = parse_asn(e["asn"]) if "asn" in e else None
        ski = _b64url(e["SKI"]) if "SKI" in e else None
        if asn is None and ski is None:
            raise ValueError("a BGPsec filter needs 'asn' and / or 'SKI'")
        s.bgpsec_filters.append((asn, ski))

    def aspa_filter(e: dict) -> None:
        s.aspa_filters.add(parse_asn(e.get("customer_asid", e.get("customerAsid"))))

    def prefix_assertion(e: dict) -> None:
        addr, plen = parse_prefix(e["prefix"])
        ml = e.get("maxPrefixLength", plen)
        if not isinstance(ml, int) or not plen <= ml <= len(addr) * 8:
            raise ValueError(f"maxPrefixLength {ml!r} outside {plen}..{len(addr) * 8}")
        s.prefix_assertions.add(VRP(addr, plen, ml, parse_asn(e["asn"])))

    def bgpsec_assertion(e: dict) -> None:
        ski = _b64url(e["SKI"])
        if len(ski) != 20:
            raise ValueError(f"SKI is {len(ski)} octets, expected 20")
        s.bgpsec_assertions.add(RouterKey(ski, parse_asn(e["asn"]), _b64url(e["routerPublicKey"])))

    def aspa_assertion(e: dict) -> None:
        cust = parse_asn(e.get("customer_asid", e.get("customerAsid")))
        provs = e.get("provider_set", e.get("providers"))
        if not isinstance(provs, list) or not provs:
            raise ValueError("'provider_set' must be a non-empty list")
        pset = {parse_asn(x) for x in provs}
        if len(pset) > 1:
            pset.discard(0)
        s.aspa_assertions[cust] = tuple(sorted(pset))

    _each(p, filters, "prefixFilters", prefix_filter)
    _each(p, filters, "bgpsecFilters", bgpsec_filter)
    _each(p, filters, "aspaFilters", aspa_filter)
    _each(p, asserts, "prefixAssertions", prefix_assertion)
    _each(p, asserts, "bgpsecAssertions", bgpsec_assertion)
    _each(p, asserts, "aspaAssertions", aspa_assertion)
    return s


def _section(path: str, doc: dict, name: str) -> dict:
    sec = doc.get(name)
    if not isinstance(sec, dict):
        raise VRPFileError(path, name, "missing or not an object")
    return sec


def _each(path: str, sec: dict, name: str, handle) -> None:
    """Run ``handle`` on every entry of a list; errors name the file and the entry."""
    items: Any = sec.get(name, [])
    if not isinstance(items, list):
        raise VRPFileError(path, name, "is not a list")
    for i, e in enumerate(items):
        where = f"{name}[{i}]"
        if not isinstance(e, dict):
            raise VRPFileError(path, where, "is not an object")
        try:
            handle(e)
        except KeyError as ex:
            raise VRPFileError(path, where, f"missing key {ex}") from None
        except (ValueError, TypeError, base64.binascii.Error) as ex:
            raise VRPFileError(path, where, str(ex)) from None
