"""Python's cycle collector around a bounded piece of heavy work (a leaf: imports nothing of the
engine).

A billing batch or a PDF page makes tens of thousands of objects, most of them freed by their
reference counts as soon as they are used. Left running, the collector wakes every 700 new
objects and walks those still alive again and again; once enough survive, it walks every object
the process holds (the engine's modules, its tables' metadata: some 140,000), which was a sixth
of a billing run and of a one-page render (issue 17). ``paused`` stops it for the work and runs it
once after, on what the work left, so cycles the work made (a session's objects, a page's boxes)
are freed before the next piece begins and memory stays as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, then one collection of the young objects. A collector
    the caller had turned off stays off (and nothing is collected); nested blocks collect once,
    at the end of the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
    gc.collect(0)
