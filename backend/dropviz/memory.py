"""Keeping the server's freed memory from staying resident.

Frames and deltas of large networks are arrays of megabytes. glibc's malloc
raises its mmap threshold after such a block is freed, so later blocks of that
size come from the heap, and the heap keeps their pages after they are freed.
Clients that connect, stall and get dropped leave megabytes resident that
way. `malloc_trim(0)` hands free heap pages back; it exists only in glibc, and
elsewhere these functions do nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util

# mallopt's parameter numbers, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _load_glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        library.malloc_trim.argtypes = [ctypes.c_size_t]
        library.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        return None  # not glibc: musl, macOS and Windows have neither function
    return library


_glibc = _load_glibc()


def configure_malloc(arenas: int, mmap_threshold_bytes: int) -> None:
    """Tune glibc's malloc for a server of large, short-lived arrays.

    Call it before threads start. By default each thread that allocates may
    get an arena of its own, up to eight per core, and freed megabytes in one
    arena serve no other. Blocks above `mmap_threshold_bytes` (frames,
    deltas, send buffers) are mapped and unmapped on their own, so freeing
    them returns their pages at once. A fixed threshold also stops glibc from
    raising it after each large free.
    """
    if _glibc is not None:
        _glibc.mallopt(_M_ARENA_MAX, arenas)
        _glibc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold_bytes)


def release_free_memory() -> None:
    """Return the allocator's free pages to the operating system, where glibc can."""
    if _glibc is not None:
        _glibc.malloc_trim(0)


async def release_free_memory_every(seconds: float) -> None:
    """Run `release_free_memory` on a worker thread every `seconds`, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(release_free_memory)
