"""The member portal: a member signs in with a single-use link mailed to their address and reads
their own account (credits, what expires, bookings, the ledger, invoices and credit notes, what
is due and how to pay). Every figure is the API's, asked as a read caller limited to that one
account (``caller_of``), so the API's own scoping answers 404 for anything of another account.
Nothing here changes the account: the only POSTs sign in and out."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from starlette.background import BackgroundTask

from licensing import clock
from licensing.api.routers import accounts as accounts_api
from licensing.api.routers import credit_notes as credit_notes_api
from licensing.api.routers import invoices as invoices_api
from licensing.config import Settings, get_settings
from licensing.db.unit_of_work import run
from licensing.documents.delivery import MAIL_POLICY, MailSettings, send_mail
from licensing.documents.pdf import environment, package_templates, templates_dir
from licensing.errors import NotFound, ValidationFailed
from licensing.web.calls import call
from licensing.web.pages import page_router, see_other
from licensing.web.render import page, refused
from licensing.web.sessions import (
    PORTAL_COOKIE,
    Form,
    PortalVisitor,
    caller_of,
    check_form_token,
    database_of,
    form_token,
    remember_form_token,
    set_cookie,
    signed_out,
)
from licensing.web.users import LINK_TIME, Link, new_links, redeem_link

log = logging.getLogger("licensing.portal")

router = page_router("/portal")

PAGE_SIZE = 20
LINK_MINUTES = int(LINK_TIME.total_seconds() // 60)
# What the sign-in page says after a request for a link: the same whether or not the address
# is known, so that the page tells nobody which addresses have an account.
NOTICES = {
    "sent": f"If this address belongs to an account, a sign-in link is on its way. It is valid for {LINK_MINUTES} minutes.",
}
# The ledger's kinds as a member reads them.
LEDGER_KINDS = {
    "grant": "Credits granted", "consume": "Booking", "consume_reversal": "Booking cancelled", "expire": "Expired",
    "rollover_cut": "Not carried over", "credit_note_reversal": "Taken back by a credit note", "adjust_add": "Added",
    "adjust_deduct": "Deducted", "transfer_out": "Moved out", "transfer_in": "Moved in", "hold": "Reserved",
    "hold_release": "Reservation released", "debt": "Overdrawn", "debt_settlement": "Overdraft settled",
}


# -- signing in ---------------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(request: Request, done: str | None = None):
    return _sign_in_form(request, notice=NOTICES.get(done or ""))


def _sign_in_form(request: Request, *, email: str = "", notice: str | None = None, error: ValidationFailed | None = None):
    token = form_token(request)
    context = {"title": "Sign in", "form_token": token, "email": email, "notice": notice}
    response = refused(request, "portal/sign-in.html", error, **context) if error else page(request, "portal/sign-in.html", **context)
    remember_form_token(response, token, "/portal")
    return response


@router.post("/sign-in")
def ask_for_link(request: Request, form: Form):
    """New links for every account that knows the address, mailed once the response has gone
    (so that a known address takes no longer to answer than an unknown one)."""
    check_form_token(request, form)
    email = str(form.get("email", ""))[:1000]
    try:
        links = run(database_of(request), lambda session: new_links(session, email=email, at=clock.now()))
    except ValidationFailed as error:
        return _sign_in_form(request, email=email[:320], error=error)
    response = see_other("/portal/sign-in?done=sent")
    if links:
        response.background = BackgroundTask(mail_links, links, get_settings())
    return response


def mail_links(links: list[Link], settings: Settings) -> None:
    """Mail each link through the documents' mail path (SMTP, or the outbox folder). A mail that
    fails is logged: the page has already said the same as for an unknown address."""
    mail = MailSettings.of(settings)
    for link in links:
        try:
            message = sign_in_mail(link, mail=mail, settings=settings, now=clock.now())
            send_mail(message, mail=mail, recipient=link.email, stem=f"account-{link.account_id}", kind="sign-in")
        except Exception:  # noqa: BLE001 - one failed mail must not stop the others
            log.exception("the sign-in link for account %s could not be mailed", link.account_id)


def sign_in_mail(link: Link, *, mail: MailSettings, settings: Settings, now: datetime) -> EmailMessage:
    """The mail with the sign-in link: text and HTML bodies from ``mail/sign-in.txt`` and ``.html``."""
    context = {
        "operator_name": settings.operator_name, "account_name": link.account_name, "minutes": LINK_MINUTES,
        "url": f"{settings.public_url.rstrip('/')}/portal/sign-in/{link.token}",
    }
    env = _mail_environment(settings)
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = f"Sign in to {' '.join(settings.operator_name.split())}"
    message["From"] = mail.sender
    message["To"] = Address(addr_spec=link.email)
    message["Date"] = format_datetime(now)
    domain = parseaddr(mail.sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<sign-in.{uuid.uuid4().hex}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(env.overlay(autoescape=False).get_template("mail/sign-in.txt").render(**context))
    message.add_alternative(env.get_template("mail/sign-in.html").render(**context), subtype="html")
    return message


def _mail_environment(settings: Settings) -> jinja2.Environment:
    """The mail templates' environment: the operator's templates folder, then the package's
    (an operator's folder made before the portal has no sign-in mail)."""
    env = environment(templates_dir(settings))
    env.loader = jinja2.ChoiceLoader([env.loader, jinja2.FileSystemLoader(package_templates())])
    return env


@router.get("/sign-in/{token}")
def link_page(request: Request, token: str):
    """Only a button: a mail scanner that fetches the link must not use it up."""
    form = form_token(request)
    response = page(request, "portal/continue.html", title="Sign in", form_token=form, token=token)
    remember_form_token(response, form, "/portal")
    return response


@router.post("/sign-in/{token}")
def use_link(request: Request, token: str, form: Form):
    check_form_token(request, form)
    started = run(database_of(request), lambda session: redeem_link(session, token[:200], at=clock.now()))
    if started is None:
        return page(request, "portal/link-expired.html", status_code=410, title="Sign-in link expired")
    session_token, _browser = started
    response = see_other("/portal")
    set_cookie(response, PORTAL_COOKIE, session_token, path="/portal")
    return response


@router.post("/logout")
def logout(request: Request, visitor: PortalVisitor):
    return signed_out(request, visitor, cookie=PORTAL_COOKIE, path="/portal", then="/portal/sign-in")


# -- the account --------------------------------------------------------------------------------


@router.get("")
def account_page(
    request: Request, visitor: PortalVisitor, invoices_cursor: str | None = None, credit_notes_cursor: str | None = None,
    bookings_cursor: str | None = None, ledger_cursor: str | None = None,
):
    caller, database = caller_of(visitor), database_of(request)
    account_id = str(visitor.account_id)
    account = call(accounts_api.get_account, caller, database, account_id=account_id)
    credits = call(accounts_api.get_credits, caller, database, account_id=account_id)
    invoices = call(invoices_api.list_invoices, caller, database, account_id=account_id, limit=PAGE_SIZE, cursor=invoices_cursor)
    notes = call(credit_notes_api.list_credit_notes, caller, database, account_id=account_id, limit=PAGE_SIZE, cursor=credit_notes_cursor)
    # Approved invoices are those with something still due (paid in full, an invoice is "paid").
    due = call(invoices_api.list_invoices, caller, database, account_id=account_id, status="approved", limit=100)
    bookings = call(accounts_api.list_ledger, caller, database, account_id=account_id, kind="consume", limit=PAGE_SIZE, cursor=bookings_cursor)
    ledger = call(accounts_api.list_ledger, caller, database, account_id=account_id, limit=PAGE_SIZE, cursor=ledger_cursor)
    settings = get_settings()
    return page(
        request, "portal/account.html", visitor=visitor, title=account["name"], account=account, credits=credits,
        # Drafts are the operator's work in progress, not yet the member's documents.
        invoices=[item for item in invoices["items"] if item["status"] != "draft"],
        notes=[item for item in notes["items"] if item["status"] != "draft"],
        due=due, bookings=bookings, ledger=ledger, kinds=LEDGER_KINDS,
        units={unit["business_unit_id"]: unit["name"] for unit in credits["business_units"]},
        pages={
            "invoices": _pages(request, "invoices_cursor", invoices["next_cursor"], "h-documents"),
            "credit_notes": _pages(request, "credit_notes_cursor", notes["next_cursor"], "h-documents"),
            "bookings": _pages(request, "bookings_cursor", bookings["next_cursor"], "h-bookings"),
            "ledger": _pages(request, "ledger_cursor", ledger["next_cursor"], "h-ledger"),
        },
        iban=settings.operator_iban, bic=settings.operator_bic, operator_email=settings.operator_email, local=_local(settings),
    )


def _pages(request: Request, name: str, next_cursor: str | None, anchor: str) -> dict[str, str | None]:
    """The first-page and next-page links of one of the page's lists (each has a cursor of its
    own; the others' are kept)."""
    others = [(key, value) for key, value in request.query_params.multi_items() if key != name]
    return {
        "first": f"/portal?{urlencode(others)}#{anchor}" if request.query_params.get(name) else None,
        "next": f"/portal?{urlencode([*others, (name, next_cursor)])}#{anchor}" if next_cursor else None,
    }


def _local(settings: Settings):
    """An instant of the API (RFC 3339) as the operator's local date and time, for reading."""

    def local(text: str | None) -> str:
        if not text:
            return ""
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return moment.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")

    return local


# -- documents ----------------------------------------------------------------------------------


@router.get("/invoices/{invoice_id}.pdf")
def invoice_pdf(request: Request, invoice_id: str, visitor: PortalVisitor):
    caller, database = caller_of(visitor), database_of(request)
    if call(invoices_api.get_invoice, caller, database, invoice_id=invoice_id)["status"] == "draft":
        raise NotFound(f"invoice {invoice_id} does not exist")
    return call(invoices_api.invoice_pdf, caller, database, invoice_id=invoice_id)


@router.get("/credit-notes/{note_id}.pdf")
def credit_note_pdf(request: Request, note_id: str, visitor: PortalVisitor):
    caller, database = caller_of(visitor), database_of(request)
    if call(credit_notes_api.get_credit_note, caller, database, note_id=note_id)["status"] == "draft":
        raise NotFound(f"credit note {note_id} does not exist")
    return call(credit_notes_api.credit_note_pdf, caller, database, note_id=note_id)
