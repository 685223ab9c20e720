"""One SQL ledger, two dialects: the operations SQLite and PostgreSQL share.

Every operation is written once, as a routine (``routine``) that yields its
statements and is sent back their rows; a backend supplies the transaction
around it and a runner for its driver. The SQL is written once too, in the
subset both dialects agree on (``?N`` placeholders, ``ON CONFLICT DO NOTHING``,
``RETURNING``), spelled as SQLite takes it; ``dialect`` derives PostgreSQL's text.
"""
