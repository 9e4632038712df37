"""rov-router: a simulated BGP router with RPKI route origin validation."""

__version__ = "0.1.0"
