"""What is checked before the gateway serves, and by ``spu config check``.

Every configuration or start-up mistake becomes a ``Problem``: what is wrong
and how to fix it, in words a newcomer can act on, so the command line prints
one or two lines instead of a traceback. ``loading`` reads the settings,
``models`` prices every model and looks for its key, ``ledger`` opens the
ledger the URL names, ``listener`` takes the port, and ``start_up`` puts the
gateway's checks together.
"""
