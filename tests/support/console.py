"""Browser-less clients of the console and the portal (httpx through the ASGI app): sign in
as a console user of a role, read the CSRF token from the page, post forms with it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from licensing import clock
from licensing.db.unit_of_work import run
from licensing.web.users import create_user

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PageClient(TestClient):
    """A TestClient on https (the session cookies are Secure) that does not follow redirects."""

    def csrf(self, path: str = "/console") -> str:
        """The CSRF token of the session, read from a page as a browser would."""
        response = self.get(path)
        found = CSRF.search(response.text)
        assert found, f"{path} has no CSRF token ({response.status_code}):\n{response.text[:2000]}"
        return found.group(1)

    def submit(self, path: str, data: dict | None = None, *, page: str | None = None, **kwargs):
        """POST a form to ``path`` with the CSRF token of ``page`` (default: the console's dashboard)."""
        token = self.csrf(page or ("/portal" if path.startswith("/portal") else "/console"))
        return self.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def page_client(app) -> PageClient:
    """A client of the pages. FastAPI builds a router's routes on the first request that reaches
    it: one request per page router is made here, before a test freezes the clock (freezegun
    swaps ``datetime`` for its own class, which FastAPI cannot build a route parameter of)."""
    from licensing.web import routers

    client = PageClient(app, base_url="https://testserver", follow_redirects=False)
    if not getattr(app.state, "pages_built", False):
        for router in routers():
            paths = [route.path for route in router.routes if "GET" in getattr(route, "methods", ()) and "{" not in route.path]
            if paths:
                PageClient(app, base_url="https://testserver", follow_redirects=False).get(paths[0])
        app.state.pages_built = True
    return client


def add_user(database, email: str, role: str, password: str = PASSWORD):
    return run(database, lambda session: create_user(session, email=email, role=role, password=password, at=clock.now()))


def signed_in(app, database, role: str = "admin", email: str | None = None) -> PageClient:
    """A client signed in to the console as a new user of ``role``."""
    email = email or f"{role}@console.test"
    add_user(database, email, role)
    client = page_client(app)
    login = client.get("/console/login")
    token = CSRF.search(login.text).group(1)
    response = client.post("/console/login", data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/console"})
    assert response.status_code == 303, response.text
    return client
