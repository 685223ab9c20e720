"""The operator's HTTP API under ``/admin``: ``routes``, their request and response bodies
(``schemas``), and who may call them (``auth``). The operations it shares with the ``spu``
command line are ``proxy.org_admin``."""
