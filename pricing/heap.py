"""Give freed heap pages back to the operating system after a large one-off allocation.

glibc keeps freed memory mapped for reuse, so a process's resident size stays
at its highest point after a large transient structure is freed (the parsed
cost map at start-up, an encoding's rank table while it loads). ``malloc_trim``
unmaps what is free. Other C libraries (musl, macOS) have no such call and
return memory on their own terms.
"""

import ctypes


def return_free_pages() -> None:
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)
