"""The router configuration the interop tests run: AS65000 on 127.0.0.1 with an upstream
(127.0.0.2, AS65001) and a downstream (127.0.0.9, AS65009), plus what each test varies.

Every argument is text put into the file as is, so a result can still be a ``str.format``
template (``port="{port}"``)."""

from __future__ import annotations

from collections.abc import Iterable


def router_toml(
    *,
    port: object = None,
    exabgp_socket: object = None,
    control: object = None,
    up_asn: object = 65001,
    up: Iterable[str] = (),
    down_asn: object = 65009,
    down_port: object = None,
    down: Iterable[str] = (),
    extra: str = "",
    rpki: Iterable[str] = (),
    policy: Iterable[str] = (),
) -> str:
    """``port``: the router's own BGP port (managed ExaBGP listening on 127.0.0.1);
    ``exabgp_socket``: an external ExaBGP bridge's socket instead; ``control``: the control
    socket; ``up`` / ``down``: extra lines of the upstream / downstream neighbor; ``extra``:
    text after the two neighbors; ``rpki``: the lines of the one ``[[rpki]]`` source;
    ``policy``: lines of a ``[policy]`` table."""
    out = ["", "[router]", "asn = 65000", 'router_id = "127.0.0.1"']
    if port is not None:
        out += ['listen = "127.0.0.1"', f"port = {port}"]
    if exabgp_socket is not None:
        out += ["", "[exabgp]", 'mode = "external"', f'socket = "{exabgp_socket}"']
    if control is not None:
        out += ["", "[control]", f'socket = "{control}"']
    out += ["", "[[neighbor]]", 'address = "127.0.0.2"', f"asn = {up_asn}", 'role = "upstream"']
    out += list(up)
    out += ["", "[[neighbor]]", 'address = "127.0.0.9"', f"asn = {down_asn}", 'role = "downstream"']
    if down_port is not None:
        out.append(f"port = {down_port}")
    out += list(down)
    text = "\n".join(out) + "\n" + extra
    text += "\n[[rpki]]\n" + "".join(f"{x}\n" for x in rpki)
    policy = list(policy)
    if policy:
        text += "\n[policy]\n" + "".join(f"{x}\n" for x in policy)
    return text
