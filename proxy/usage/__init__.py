"""The org's own view of its ledger: balance and usage records (``routes``), the usage page and
its data (``page``, ``summary``), signed links to it (``links``) and query windows (``window``)."""
