"""What the parts do for each other, connected once at the root.

A part that must act when another part's change has committed reads the events outbox; the
``events`` subscription runs it right after the commit. Which subscriber follows which events
is decided here, by the entry points (the API's ``create_app``, the command line, the test
suite), so that no part imports one that depends on it: invoicing records ``invoice.approved``
and knows nothing of the mail that ``documents`` sends for it.

Without ``connect`` nothing is lost, only later: the scheduler's jobs read the outbox too.
"""

from __future__ import annotations

from licensing.documents.queue import DOCUMENT_EVENTS, queue_and_send
from licensing.events import subscribe


def connect() -> None:
    """Subscribe every part to the events it follows (again: no harm)."""
    subscribe(DOCUMENT_EVENTS, "queue approved documents", queue_and_send)


def add_pages(app) -> None:
    """The browser's pages (``web``: the console and the portal) and their assets on the API's
    application. Wired here because ``web`` calls the API's routes: the API does not import it."""
    from fastapi.staticfiles import StaticFiles

    from licensing.web import routers
    from licensing.web.render import STATIC

    app.mount(STATIC, StaticFiles(packages=[("licensing.web", "static")]), name="web-assets")
    for router in routers():
        app.include_router(router)
