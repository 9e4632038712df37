"""Secure RTR transports (RFC 8210 §9, 8210bis §9) beside plain TCP, for the router's client and
for the embedded cache.

* :mod:`.options`: what the config and the command line describe (no I/O, no ssl import);
* :mod:`.tls`: TLS contexts and the identity checks of both ends, the client's TLS connect;
* :mod:`.ssh`: the ``rpki-rtr`` SSH subsystem (asyncssh, imported on first SSH use only: it
  takes longer to import than the whole CLI), client connect and the server session classes;
* :mod:`.connect`: :func:`~.connect.open_connection`, the client's one entry point;
* :mod:`.listen`: the embedded cache's TLS and SSH listeners.

* **TLS** (port 324): the router presents a client certificate and checks the cache's
  certificate against a CA and the cache's name (DNS-ID, or iPAddress for an IP literal; no
  CN-ID, no wildcards; TLS 1.2+).  The cache requires a client certificate from its CA and
  checks the connection's source address against the certificate's subjectAltName iPAddress
  entries (§9.2).
* **SSH** (asyncssh, no ``ssh`` subprocess): the ``rpki-rtr`` subsystem on a session channel,
  public-key and/or password authentication, the cache's host key checked against a
  known_hosts file.  The cache side serves the same subsystem.

Whatever the transport, the RTR code sees an object with the asyncio transport calls it uses
(``write``, ``close``, ``abort``, ``is_closing``, ``pause_reading``/``resume_reading``,
``get_extra_info``, write-buffer calls), and a protocol with ``connection_made``,
``data_received``, ``connection_lost`` (and ``pause_writing``/``resume_writing``).

This package file imports nothing, so ``config`` can import :mod:`.options` alone.
"""
