"""The random part of the ids the gateway mints per request, drawn without a system call.

These ids must be unique, not secret: knowing one grants nothing (a stored
response is served only to the org that owns it, and a request id is only a
name for a call). ``secrets`` and ``uuid4`` read ``os.urandom``, whose system
call releases the GIL: on the event loop's thread, once per request, that
handed the GIL to the ledger's writer thread and waited to get it back. At 32
connections those hand-offs were close to half of the gateway's context
switches (6.1 per plain call before, 3.4 after). ``random``'s generator is
seeded from the OS at start, and CPython seeds it afresh in a forked child, so
no two workers draw the same ids.
"""

import random


def random_hex(digits: int) -> str:
    """``digits`` random lowercase hex digits."""
    return f"{random.getrandbits(4 * digits):0{digits}x}"
