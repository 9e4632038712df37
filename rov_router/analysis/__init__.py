"""``rov-router analyze``: what ROV would do to a routing table, and what a ROA change would do.

* :mod:`.table`   reading a table: CAIDA pfx2as, ``PREFIX ASN`` lines, MRT RIB / update files,
  a running router (control socket);
* :mod:`.report`  the report: states, NIST invalid categories, covering-route search, top
  origin ASes and VRPs, ASPA per role assumption;
* :mod:`.whatif`  ROA / SLURM / ASPA changes: exactly which routes change state, revalidating
  only the routes the change covers;
* :mod:`.audit`   a ROA holder's ROAs: SEEN / UNSEEN / REDUNDANT / TOO PERMISSIVE / DISALLOWING
  and suggested minimal ROAs;
* :mod:`.output`  terminal tables, JSON, CSV and a self-contained HTML report;
* :mod:`.command` the CLI subcommand.

Everything here is pure computation on a :class:`~rov_router.rpki.store.VRPStore` the analysis
owns: a running router is only read, never changed.
"""
