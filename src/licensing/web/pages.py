"""What every page route shares: the route class that turns refusals into pages, and the
routers' construction."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from licensing.errors import LicensingError, ValidationFailed
from licensing.web.render import page, refused
from licensing.web.sessions import CsrfRefused, SignInRequired


class PageRoute(APIRoute):
    """A page: a refusal (``LicensingError``) is shown on an error page with the API's code and
    status; no session redirects to the sign-in page; a POST without the CSRF token is 403."""

    def get_route_handler(self) -> Callable:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInRequired as missing:
                if request.headers.get("hx-request") == "true":
                    return Response(status_code=204, headers={"HX-Redirect": missing.to})
                return RedirectResponse(missing.to, status_code=303)
            except CsrfRefused:
                return page(
                    request, "error.html", status_code=403, title="Form expired",
                    message="This form's security token is missing or out of date, so nothing was done. Reload the page and try again.",
                )
            except RequestValidationError as error:
                fields = ", ".join(sorted({".".join(str(part) for part in item.get("loc", ())[1:]) for item in error.errors()})) or "the request"
                return refused(request, "error.html", ValidationFailed(f"invalid {fields}"), title="Invalid input")
            except LicensingError as error:
                return refused(request, "error.html", error, title=error.title)

        return handler


def page_router(prefix: str) -> APIRouter:
    return APIRouter(prefix=prefix, route_class=PageRoute, include_in_schema=False)


def see_other(url: str) -> RedirectResponse:
    """After a change: the page to show (Post/Redirect/Get, so that reloading repeats nothing)."""
    return RedirectResponse(url, status_code=303)
