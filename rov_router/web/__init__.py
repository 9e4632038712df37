"""The web view: a read-only page of the topology, announcements, verdicts and RPKI data.

It reads only :mod:`rov_router.status` (never the app); see :mod:`.server`.
"""
