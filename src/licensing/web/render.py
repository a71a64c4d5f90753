"""Pages: Jinja2 templates (``templates/web``) rendered with what every page needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from licensing.api.errors import STATUS_BY_CODE
from licensing.api.schemas import credits_text
from licensing.config import get_settings
from licensing.errors import LicensingError

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["credits"] = credits_text
# The pager's links keep the page's filters, not its cursor nor the message of a change just made.
PAGER_DROPS = ("cursor", "done")
templates.env.filters["without_cursor"] = lambda params: urlencode([(name, value) for name, value in params.multi_items() if name not in PAGER_DROPS])
templates.env.filters["with_cursor"] = lambda params, cursor: urlencode(
    [(name, value) for name, value in params.multi_items() if name not in PAGER_DROPS] + [("cursor", cursor)]
)
STATIC = "/static/web"

# What a page says for a refused change: the API's code, its explanation and its fields.
SECURITY_HEADERS = {
    # Scripts, styles and images from this application only; no frames (clickjacking).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def problem_of(error: LicensingError) -> dict[str, Any]:
    """A refusal as a page shows it: what the API would answer (code, status, detail, the
    extra members such as what remains), so that the operator reads the API's reason."""
    return {
        "status": STATUS_BY_CODE.get(error.code, 409), "code": error.code, "title": error.title, "detail": error.detail,
        "extra": {name: value for name, value in error.extra.items() if name != "errors"}, "errors": error.extra.get("errors") or [],
    }


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The template rendered with the request, the operator's name, the static path and, when a
    page is not a full one (an HTMX request for a part), the same template: each template
    decides what to leave out with ``partial``."""
    context.setdefault("problem", None)
    context.setdefault("notice", None)
    response = templates.TemplateResponse(
        request, template,
        {"operator_name": get_settings().operator_name, "static": STATIC, "partial": request.headers.get("hx-request") == "true"
         and request.headers.get("hx-boosted") != "true"} | context,
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def refused(request: Request, template: str, error: LicensingError, **context: Any) -> HTMLResponse:
    """The page again with the refusal shown, under the API's status for it (422, 409, ...)."""
    problem = problem_of(error)
    return page(request, template, status_code=problem["status"], problem=problem, **context)
