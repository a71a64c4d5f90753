"""The console's invoices, credit notes and billing run, without a browser: the pages show the
API's figures and change things through the API's own routes, so after each change the API
answers what the page did.

The standard case (as in test_credit_notes.py): a pack of 10 credits at 100.00 (tax 20 %,
lifetime P1M) on a monthly service for January 2027, billed on 2027-01-01: a draft of net
100.00, tax 20.00, gross 120.00 which, approved, is INV-2027-000001 granting 10 credits.
Sessions last 12 hours, so each test signs in at the frozen moment its pages are used; every
test takes the API ``client``, which resolves the routes before the clock is frozen."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime

import pytest
from freezegun import freeze_time

from licensing.web import billing
from licensing.web.billing import BillingProgress
from tests.support import over_http

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

JANUARY_1 = "2027-01-01T09:00:00Z"
BOOKED = "2027-01-10T10:00:00Z"  # when 8 of the 10 credits are used
CORRECTED = "2027-01-12T09:00:00Z"  # when the operator corrects the invoice
call = over_http.call


def january_draft(client, name: str = "Acme Ltd") -> tuple[str, str]:
    """An account whose licence bills the standard pack for January; the draft billed on Jan 1.
    Returns the account id and the draft."""
    account_id = over_http.account(client, name)
    pack_id = over_http.credit_pack(client, "10", "P1M")
    licence_id = over_http.licence(client, account_id)
    over_http.service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-01-31")
    over_http.billing_run(client, "2027-01-01", JANUARY_1)
    (draft,) = over_http.invoices(client, licence_id, JANUARY_1, status="draft")
    return account_id, draft


def january_invoice(client) -> tuple[str, dict]:
    """The standard January invoice, approved on Jan 1 (10 credits granted)."""
    account_id, draft = january_draft(client)
    return account_id, over_http.approve(client, draft["id"], JANUARY_1)


def invoice(client, invoice_id: str, moment: str = CORRECTED) -> dict:
    response = call(client, "GET", f"/api/v1/invoices/{invoice_id}", moment)
    assert response.status_code == 200, response.text
    return response.json()


def credit_notes(client, invoice_id: str) -> list[dict]:
    response = call(client, "GET", "/api/v1/credit-notes", CORRECTED, params={"invoice_id": invoice_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def credits_granted(client, account_id: str, moment: str) -> list[tuple[str, str]]:
    return [(grant["credits"], grant["remaining"]) for grant in over_http.grants(client, account_id, moment)]


def text_of(html: str) -> str:
    """The page's words, tags and spacing left out, to read figures as a person does."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# ---------------------------------------------------------------------------------------------
# The approval queue.
# ---------------------------------------------------------------------------------------------


def test_the_approval_queue_lists_the_drafts_with_the_api_figures(client, console):
    _account_id, draft = january_draft(client)
    with freeze_time(JANUARY_1):
        page = console("billing").get("/console/invoices")

    assert page.status_code == 200
    words = text_of(page.text)
    assert "Approval queue" in words
    assert f"draft {draft['id']} Acme Ltd 2027-01-01 to 2027-01-31 2027-01-01 120.00 EUR 0.00 EUR draft" in words
    assert (draft["gross"], draft["amount_due"]) == ("120.00", "0.00")  # nothing is due on a draft
    assert f'aria-label="Approve draft {draft["id"]}"' in page.text
    assert ">Approve all</button>" in page.text


def test_the_list_filters_by_status_as_the_api_does(client, console):
    january_invoice(client)
    _other, draft = january_draft(client, "Globex")
    with freeze_time(JANUARY_1):
        browser = console("billing")
        approved_page = text_of(browser.get("/console/invoices?status=approved").text)
        every_page = text_of(browser.get("/console/invoices?status=&account_id=&overdue=").text)

    assert "INV-2027-000001" in approved_page and f"draft {draft['id']}" not in approved_page
    assert "Approval queue" not in approved_page
    assert "INV-2027-000001" in every_page and f"draft {draft['id']}" in every_page


def test_approving_a_draft_from_the_queue_numbers_it_and_grants_its_credits(client, console):
    account_id, draft = january_draft(client)
    with freeze_time(JANUARY_1):
        browser = console("billing")
        response = browser.submit(f"/console/invoices/{draft['id']}/approve", {"back": "list"})
        queue = browser.get(response.headers["location"])

    assert response.status_code == 303
    assert response.headers["location"] == "/console/invoices?status=draft&done=approved"
    assert "The invoice was approved" in queue.text and "No invoice is waiting for approval." in queue.text
    approved = invoice(client, draft["id"], JANUARY_1)
    assert (approved["status"], approved["number"], approved["gross"]) == ("approved", "INV-2027-000001", "120.00")
    assert credits_granted(client, account_id, JANUARY_1) == [("10.00", "10.00")]


def test_approve_all_approves_every_draft_and_says_how_many(client, console):
    first_account, first = january_draft(client, "Acme Ltd")
    second_account, second = january_draft(client, "Globex")
    with freeze_time(JANUARY_1):
        browser = console("billing")
        response = browser.submit("/console/invoices/approve-all")
        queue = browser.get(response.headers["location"])

    assert response.status_code == 303
    assert "2 draft invoices approved." in queue.text
    assert [(invoice(client, draft["id"], JANUARY_1)["status"], invoice(client, draft["id"], JANUARY_1)["number"]) for draft in (first, second)] == [
        ("approved", "INV-2027-000001"), ("approved", "INV-2027-000002")
    ]
    assert credits_granted(client, first_account, JANUARY_1) == [("10.00", "10.00")]
    assert credits_granted(client, second_account, JANUARY_1) == [("10.00", "10.00")]


# ---------------------------------------------------------------------------------------------
# One invoice: the page, voiding, credit notes, the PDF.
# ---------------------------------------------------------------------------------------------


def test_the_invoice_page_shows_the_api_facts_lines_and_credits_granted(client, console):
    account_id, approved = january_invoice(client)
    with freeze_time(CORRECTED):
        page = console("billing").get(f"/console/invoices/{approved['id']}")

    assert page.status_code == 200
    words = text_of(page.text)
    assert "<h1>INV-2027-000001</h1>" in page.text
    assert f'href="/console/accounts/{account_id}"' in page.text
    assert "Total 120.00 EUR" in words and "Amount due 120.00 EUR" in words
    assert f"Payment reference {approved['payment_reference']}" in words
    [line] = approved["lines"]
    assert f"{line['description']} 2027-01-01 to 2027-01-31 1 100.00 20.00 % 100.00 20.00 10.00 {line['credits_valid_from']}" in words
    assert f'href="/console/invoices/{approved["id"]}.pdf"' in page.text
    assert ">Void invoice</button>" in page.text and ">Create credit note</button>" in page.text


def test_voiding_from_the_page_voids_the_invoice_and_takes_its_credits_back(client, console):
    account_id, approved = january_invoice(client)
    with freeze_time(CORRECTED):
        browser = console("billing")
        response = browser.submit(
            f"/console/invoices/{approved['id']}/void", {"void_credit_policy": "strict", "void_reason": "Billed to the wrong account"}
        )
        page = browser.get(response.headers["location"])

    assert response.status_code == 303 and response.headers["location"] == f"/console/invoices/{approved['id']}?done=voided"
    assert "The invoice was voided." in page.text
    voided = invoice(client, approved["id"])
    assert (voided["status"], voided["void_reason"]) == ("void", "Billed to the wrong account")
    assert credits_granted(client, account_id, CORRECTED) == [("10.00", "0.00")]


def test_a_strict_void_after_the_credits_were_used_is_refused_with_what_remains_and_changes_nothing(client, console):
    account_id, approved = january_invoice(client)
    over_http.consumed(client, account_id, "8", BOOKED)
    ledger_before = over_http.ledger(client, account_id, CORRECTED)
    with freeze_time(CORRECTED):
        response = console("billing").submit(f"/console/invoices/{approved['id']}/void", {"void_credit_policy": "strict", "void_reason": "x"})

    assert response.status_code == 409
    words = text_of(response.text)
    assert "credits_already_consumed" in words and "credits remaining 2.00" in words
    assert invoice(client, approved["id"])["status"] == "approved"
    assert over_http.ledger(client, account_id, CORRECTED) == ledger_before


def test_a_credit_note_is_created_from_the_invoice_page_and_approved(client, console):
    account_id, approved = january_invoice(client)
    [line] = approved["lines"]
    with freeze_time(CORRECTED):
        browser = console("billing")
        created = browser.submit(
            f"/console/invoices/{approved['id']}/credit-notes",
            {f"quantity_{line['id']}": "1", f"amount_{line['id']}": "", "note_credit_policy": "strict", "note_reason": "Sold by mistake"},
        )
        [draft] = credit_notes(client, approved["id"])
        page = browser.get(f"/console/invoices/{approved['id']}")
        approving = browser.submit(f"/console/credit-notes/{draft['id']}/approve", {"back": "invoice", "credit_policy": ""})
        note_page = browser.get(f"/console/credit-notes/{draft['id']}")

    assert created.status_code == 303
    assert created.headers["location"] == f"/console/invoices/{approved['id']}?done=note_created#credit-notes"
    assert (draft["status"], draft["credit_policy"], draft["reason"], draft["gross"]) == ("draft", "strict", "Sold by mistake", "120.00")
    assert [(item["invoice_line_id"], item["quantity"]) for item in draft["lines"]] == [(line["id"], "1")]
    assert f'aria-label="Approve credit note draft {draft["id"]}"' in page.text
    assert approving.status_code == 303
    assert approving.headers["location"] == f"/console/invoices/{approved['id']}?done=note_approved#credit-notes"
    [note] = credit_notes(client, approved["id"])
    assert (note["status"], note["number"], [item["credits_taken_back"] for item in note["lines"]]) == ("approved", "CN-2027-000001", ["10.00"])
    assert credits_granted(client, account_id, CORRECTED) == [("10.00", "0.00")]
    assert "<h1>CN-2027-000001</h1>" in note_page.text
    assert f'href="/console/credit-notes/{note["id"]}.pdf"' in note_page.text and "Approve credit note" not in note_page.text


def test_a_strict_credit_note_after_the_credits_were_used_shows_the_refusal_and_what_remains_and_writes_nothing(client, console):
    account_id, approved = january_invoice(client)
    [line] = approved["lines"]
    over_http.consumed(client, account_id, "8", BOOKED)
    with freeze_time(CORRECTED):
        browser = console("billing")
        browser.submit(
            f"/console/invoices/{approved['id']}/credit-notes",
            {f"quantity_{line['id']}": "1", "note_credit_policy": "strict", "note_reason": "Sold by mistake"},
        )
    [draft] = credit_notes(client, approved["id"])
    def state():
        return over_http.ledger(client, account_id, CORRECTED), over_http.grants(client, account_id, CORRECTED), invoice(client, approved["id"])

    before = state()

    with freeze_time(CORRECTED):
        response = browser.submit(f"/console/credit-notes/{draft['id']}/approve", {"back": "invoice", "credit_policy": ""})

    assert response.status_code == 409
    words = text_of(response.text)
    assert "<h1>INV-2027-000001</h1>" in response.text
    assert "credits_already_consumed" in words
    assert "credits remaining 2.00" in words and "credits to take back 10.00" in words
    assert state() == before
    assert credit_notes(client, approved["id"]) == [draft]


def test_the_credit_note_page_shows_a_refusal_and_approves_with_the_policy_chosen_there(client, console):
    account_id, approved = january_invoice(client)
    [line] = approved["lines"]
    over_http.consumed(client, account_id, "8", BOOKED)
    with freeze_time(CORRECTED):
        browser = console("billing")
        browser.submit(f"/console/invoices/{approved['id']}/credit-notes", {f"amount_{line['id']}": "100.00", "note_reason": "Sold by mistake"})
        [draft] = credit_notes(client, approved["id"])
        listed = text_of(browser.get("/console/credit-notes?status=draft").text)
        strict = browser.submit(f"/console/credit-notes/{draft['id']}/approve", {"credit_policy": ""})
        capped = browser.submit(f"/console/credit-notes/{draft['id']}/approve", {"credit_policy": "cap_to_remaining"})
        page = browser.get(capped.headers["location"])

    assert f"draft {draft['id']} INV-2027-000001 Acme Ltd 2027-01-12 120.00 EUR draft" in listed
    assert strict.status_code == 409
    assert f"<h1>Draft credit note {draft['id']}</h1>" in strict.text and "credits remaining 2.00" in text_of(strict.text)
    assert capped.status_code == 303 and capped.headers["location"] == f"/console/credit-notes/{draft['id']}?done=note_approved"
    assert "The credit note was approved." in page.text and "<h1>CN-2027-000001</h1>" in page.text
    [note] = credit_notes(client, approved["id"])
    assert (note["credit_policy"], [item["credits_taken_back"] for item in note["lines"]]) == ("cap_to_remaining", ["2.00"])
    assert credits_granted(client, account_id, CORRECTED) == [("10.00", "0.00")]


def test_approving_from_the_invoice_page_comes_back_to_it(client, console):
    _account_id, draft = january_draft(client)
    with freeze_time(JANUARY_1):
        browser = console("billing")
        page = browser.get(f"/console/invoices/{draft['id']}")
        response = browser.submit(f"/console/invoices/{draft['id']}/approve", {"back": "invoice"})

    assert f"<h1>Draft invoice {draft['id']}</h1>" in page.text and ">Void invoice</button>" not in page.text
    assert response.status_code == 303 and response.headers["location"] == f"/console/invoices/{draft['id']}?done=approved"
    assert invoice(client, draft["id"], JANUARY_1)["number"] == "INV-2027-000001"


def test_a_credit_note_the_api_refuses_is_shown_on_the_invoice_page_with_the_form_kept(client, console):
    _account_id, approved = january_invoice(client)
    [line] = approved["lines"]
    with freeze_time(CORRECTED):
        response = console("billing").submit(
            f"/console/invoices/{approved['id']}/credit-notes", {f"amount_{line['id']}": "lots", "note_reason": "Sold by mistake"}
        )

    assert response.status_code == 422
    assert "validation_error" in response.text and 'value="lots"' in response.text and 'value="Sold by mistake"' in response.text
    assert credit_notes(client, approved["id"]) == []


def test_the_pdf_links_answer_the_api_documents(client, console):
    _account_id, approved = january_invoice(client)
    with freeze_time(CORRECTED):
        browser = console("read")
        invoice_pdf = browser.get(f"/console/invoices/{approved['id']}.pdf")
        missing = browser.get("/console/invoices/999999.pdf")

    assert invoice_pdf.status_code == 200
    assert invoice_pdf.headers["content-type"] == "application/pdf"
    assert invoice_pdf.content.startswith(b"%PDF")
    assert 'filename="INV-2027-000001' in invoice_pdf.headers["content-disposition"]
    assert missing.status_code == 404 and "not_found" in missing.text


# ---------------------------------------------------------------------------------------------
# Roles and CSRF.
# ---------------------------------------------------------------------------------------------


def test_the_read_role_sees_no_button_and_every_change_it_posts_is_refused(app, client, console):
    account_id, approved = january_invoice(client)
    _other, draft = january_draft(client, "Globex")
    [line] = approved["lines"]
    with freeze_time(CORRECTED):
        browser = console("read")
        pages = [browser.get(path).text for path in ("/console/invoices", f"/console/invoices/{approved['id']}", "/console/billing")]
        refusals = [
            browser.submit(f"/console/invoices/{draft['id']}/approve", {"back": "list"}),
            browser.submit("/console/invoices/approve-all"),
            browser.submit(f"/console/invoices/{approved['id']}/void", {"void_credit_policy": "cap_to_remaining"}),
            browser.submit(f"/console/invoices/{approved['id']}/credit-notes", {f"quantity_{line['id']}": "1"}),
            browser.submit("/console/billing", {"as_of": "2027-01-12"}),
        ]

    for text in pages:
        assert "<button" in text  # the sign-out button only
        assert not any(label in text for label in (">Approve<", ">Approve all<", ">Void invoice<", ">Create credit note<", ">Run billing<"))
    assert [response.status_code for response in refusals] == [403] * 5
    assert all("forbidden" in response.text for response in refusals)
    assert invoice(client, draft["id"])["status"] == "draft" and invoice(client, approved["id"])["status"] == "approved"
    assert credit_notes(client, approved["id"]) == [] and credits_granted(client, account_id, CORRECTED) == [("10.00", "10.00")]
    assert billing.latest(app) is None


def test_a_post_without_the_csrf_token_is_refused_and_approves_nothing(client, console):
    _account_id, draft = january_draft(client)
    with freeze_time(JANUARY_1):
        browser = console("admin")
        without = browser.post(f"/console/invoices/{draft['id']}/approve", data={"back": "list"})
        forged = browser.post("/console/invoices/approve-all", data={"csrf_token": "forged"})

    assert (without.status_code, forged.status_code) == (403, 403)
    assert invoice(client, draft["id"], JANUARY_1)["status"] == "draft"


# ---------------------------------------------------------------------------------------------
# The billing run.
# ---------------------------------------------------------------------------------------------


def finished(app) -> BillingProgress:
    """The console's run, once its thread is done (at most 30 seconds)."""
    for _attempt in range(300):
        run = billing.latest(app)
        if run is not None and not run.running:
            return run
        time.sleep(0.1)  # freezegun leaves sleep alone; its clock stands still, so count the attempts
    raise AssertionError("the billing run did not finish in 30 seconds")


def test_a_billing_run_from_the_page_creates_the_invoices_the_api_run_would(app, client, console):
    account_id = over_http.account(client)
    pack_id = over_http.credit_pack(client, "10", "P1M")
    licence_id = over_http.licence(client, account_id)
    over_http.service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-01-31")
    with freeze_time(JANUARY_1):
        browser = console("billing")
        form = browser.get("/console/billing")
        started = browser.submit("/console/billing", {"as_of": "2027-01-01"})
        run = finished(app)
        page = browser.get("/console/billing")
        fragment = browser.get("/console/billing/progress", headers={"HX-Request": "true"})

    assert 'value="2027-01-01"' in form.text and ">Run billing</button>" in form.text and "Approve the invoices" in form.text
    assert started.status_code == 303 and started.headers["location"] == "/console/billing?done=billing_started"
    assert (run.as_of.isoformat(), run.approve, run.actor, run.error) == ("2027-01-01", False, "console:billing@console.test", None)
    words = text_of(page.text)
    assert "1 of 1 licences" in words
    assert "Invoices created 1 Invoices approved 0 Failed licences 0" in words
    assert 'href="/console/invoices?status=draft">Approval queue</a>' in page.text
    assert 'aria-label="Billing progress"' in page.text and "hx-trigger" not in page.text
    assert "<html" not in fragment.text and 'id="billing-progress"' in fragment.text
    [draft] = over_http.invoices(client, licence_id, JANUARY_1)
    assert (draft["status"], draft["period_start"], draft["gross"]) == ("draft", "2027-01-01", "120.00")
    repeat = over_http.billing_run(client, "2027-01-01", JANUARY_1)
    assert repeat == {"as_of": "2027-01-01", "invoices_created": 0, "invoices_approved": 0, "failed": []}


def test_a_billing_run_that_approves_numbers_the_invoices_and_grants_the_credits(app, client, console):
    account_id = over_http.account(client)
    pack_id = over_http.credit_pack(client, "10", "P1M")
    licence_id = over_http.licence(client, account_id)
    over_http.service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-01-31")
    with freeze_time(JANUARY_1):
        console("admin").submit("/console/billing", {"as_of": "2027-01-01", "approve": "true"})
        run = finished(app)

    assert (run.result.invoices_created, run.result.invoices_approved) == (1, 1)
    [approved] = over_http.invoices(client, licence_id, JANUARY_1)
    assert (approved["status"], approved["number"]) == ("approved", "INV-2027-000001")
    assert credits_granted(client, account_id, JANUARY_1) == [("10.00", "10.00")]


def test_while_a_run_goes_on_the_page_polls_its_progress_and_a_second_start_is_refused(app, client, console):
    going = BillingProgress(as_of=date(2027, 1, 1), approve=False, actor="console:someone", started_at=datetime(2027, 1, 1, 9, tzinfo=UTC))
    going.done, going.total = 1, 4
    app.state.console_billing_run = going
    with freeze_time(JANUARY_1):
        browser = console("billing")
        page = browser.get("/console/billing")
        fragment = browser.get("/console/billing/progress", headers={"HX-Request": "true"})
        second = browser.submit("/console/billing", {"as_of": "2027-01-01"})

    for text in (page.text, fragment.text):
        assert 'hx-get="/console/billing/progress" hx-trigger="every 1s" hx-swap="outerHTML"' in text
        assert '<progress aria-label="Billing progress" max="4" value="1">' in text
        assert "1 of 4 licences" in text_of(text)
    assert "<h1>" not in fragment.text
    assert second.status_code == 409 and "still going" in second.text
    assert billing.latest(app) is going


def test_an_invalid_as_of_date_is_refused_and_starts_nothing(app, client, console):
    with freeze_time(JANUARY_1):
        response = console("billing").submit("/console/billing", {"as_of": "2027-02-30"})

    assert response.status_code == 422 and "as_of" in response.text
    assert billing.latest(app) is None
