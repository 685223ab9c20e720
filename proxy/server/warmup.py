"""Start-up: return the memory parsing left behind, then freeze the heap.

No tokenizer is loaded here. A call is held for its prompt's cheap bound
(``pricing.prompts``), so an encoding is needed only for an exact count: a
refusal's figures, a reply whose provider reported no usage, a translated
``count_tokens``, the demo model's own usage. Each encoding is loaded on its
first such count (about half a second, in the worker thread that counts;
the demo model counts on the event loop), so a gateway whose calls are
affordable and reported never holds the ~40 MB of o200k_base or the ~25 MB
of cl100k_base, and is ready sooner. An encoding that goes a sweep interval
without a count is dropped again (``Gateway._sweep_forever``).

The parsed cost map is not needed once the registry has priced every
configured model. It is released, and glibc is asked to return the freed
pages (``malloc_trim``), so that the gateway's resident size is what it keeps,
not what it once parsed. That is done once per process: a later start (tests
start many apps in one process) has nothing to release.

Large request bodies are then kept off ``mmap``: glibc serves an allocation
above its (adaptive) threshold with fresh pages and gives them back when it
is freed, and trims its heap's free top above twice that threshold. A
512 KB prompt is copied and parsed into several such blocks, so each large
call faulted in about 700 fresh pages (~3 MB), about half its CPU time in
the kernel. The mmap threshold is fixed at 32 MiB (the adaptive one's own
ceiling), so blocks up to that size come from the heap and go back to it, and
the trim threshold at 16 MiB: at most that much free heap top stays mapped,
for the next large call to reuse (8 MiB was too little: a 512 KB call then
faulted its pages in again). A trim keeps the top pad, 8 MiB: with the
default (128 KiB), once an encoding had been loaded every trim took the heap
top down to it, and each 512 KB call faulted about 740 pages in again (2.7 ms
of CPU per call instead of 1.2); 4 MiB still faulted about 260, 8 MiB about 1,
and 16 MiB kept 8 MB more resident for nothing.

Then ``gc.freeze()`` moves everything alive (the app, the routes, the
settings) out of the collector's reach: a full collection that traversed them
took 50-120 ms, every few seconds under load, and was the gateway's slowest
percentile. The youngest generation is then collected every 10,000 new
objects rather than Python's 700. A metered call makes hundreds of them
(coroutines, dicts, records), nearly all freed by reference counting as it
ends, yet at 700 some 9,500 plain calls at 32 connections ran 1,320
collections (one every seven calls), each traversing the objects of every call
in flight; at 10,000, 17. callgrind, plain chat at 8 connections: 1,873,243
and 1,870,267 instructions a call at 700, 1,841,732 at 10,000, 1,841,664 at
50,000.
"""

import ctypes
import gc

from pricing import load_cost_map
from pricing.heap import return_free_pages

_released = False

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameters (malloc.h)."""
LARGEST_HEAP_BLOCK_BYTES = 32 * 1024 * 1024
KEPT_FREE_HEAP_BYTES = 16 * 1024 * 1024
TOP_PAD_BYTES = 8 * 1024 * 1024
YOUNG_COLLECTION_OBJECTS = 10_000
"""New objects (less those freed) between two collections of the youngest generation."""


def release_free_memory() -> None:
    """Collect garbage, then return free heap pages to the OS where the C library can."""
    gc.collect()
    return_free_pages()


def reuse_large_blocks() -> None:
    """Serve large blocks from the heap and keep some of it free for them (glibc only)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK_BYTES)
        mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_HEAP_BYTES)
        mallopt(_M_TOP_PAD, TOP_PAD_BYTES)


def warm_up() -> None:
    global _released
    if not _released:
        _released = True
        load_cost_map.cache_clear()
        release_free_memory()
        reuse_large_blocks()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS)
