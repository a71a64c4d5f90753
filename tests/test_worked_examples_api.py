"""SPEC 10, worked examples 1-5, through the HTTP API (API.md), with freezegun driving the clock.

Every call runs at a frozen moment, so that "now" is the moment the example speaks of: billing
runs, approvals and consumptions happen then, and reads settle due expiries as of then.
Expected values are worked out by hand from SPEC.md, in the default operator zone (UTC).
"""

from __future__ import annotations

from tests.support.over_http import (
    account,
    approve,
    bill_and_approve,
    billing_run,
    business_unit,
    call,
    consume,
    consumed,
    created,
    credit_pack,
    credits_at,
    grants,
    invoices,
    ledger,
    licence,
    monthly_pack_licence,
    refused,
    routes_resolved_before_the_clock_is_frozen,  # noqa: F401 - the autouse fixture
    service,
    snapshot,
)

# ---------------------------------------------------------------------------------------------
# Example 1: 10 credits a month for 12 months (lifetime P1M)
# ---------------------------------------------------------------------------------------------

MONTHS = [
    ("2027-01-01", "2027-01-31"), ("2027-02-01", "2027-02-28"), ("2027-03-01", "2027-03-31"), ("2027-04-01", "2027-04-30"),
    ("2027-05-01", "2027-05-31"), ("2027-06-01", "2027-06-30"), ("2027-07-01", "2027-07-31"), ("2027-08-01", "2027-08-31"),
    ("2027-09-01", "2027-09-30"), ("2027-10-01", "2027-10-31"), ("2027-11-01", "2027-11-30"), ("2027-12-01", "2027-12-31"),
]
MIDNIGHTS = [f"{start}T00:00:00+00:00" for start, _ in MONTHS] + ["2028-01-01T00:00:00+00:00"]


def test_example_1_ten_credits_a_month_for_twelve_months(client):
    account_id, licence_id = monthly_pack_licence(client, "P1M")

    numbers = []
    for start, _end in MONTHS:
        approved = bill_and_approve(client, licence_id, as_of=start, moment=f"{start}T00:00:00Z")
        numbers.append(approved["number"])
        assert approved["status"] == "approved"
    assert billing_run(client, "2027-12-31", "2027-12-31T12:00:00Z") == {
        "as_of": "2027-12-31",
        "invoices_created": 0,
        "invoices_approved": 0,
        "failed": [],
    }

    assert numbers == [f"INV-2027-{n:06d}" for n in range(1, 13)]
    billed = invoices(client, licence_id, "2027-12-31T12:00:00Z")
    assert [(invoice["period_start"], invoice["period_end"], invoice["status"]) for invoice in billed] == [
        (start, end, "approved") for start, end in MONTHS
    ]
    assert [[(line["period_start"], line["period_end"], line["credits"]) for line in invoice["lines"]] for invoice in billed] == [
        [(start, end, "10.00")] for start, end in MONTHS
    ]

    granted = grants(client, account_id, "2027-12-31T12:00:00Z")
    assert [(grant["credits"], grant["business_unit_id"], grant["valid_from"], grant["expires_at"]) for grant in granted] == [
        ("10.00", None, MIDNIGHTS[month], MIDNIGHTS[month + 1]) for month in range(12)
    ]
    assert [invoice["lines"][0]["grant_id"] for invoice in billed] == [grant["id"] for grant in granted]
    # Nothing was used: January to November's credits were gone when the next month began.
    assert [(grant["remaining"], grant["expired"]) for grant in granted] == [("0.00", "10.00")] * 11 + [("10.00", "0.00")]
    expiries = ledger(client, account_id, "2027-12-31T12:00:00Z", kind="expire")
    assert [(entry["grant_id"], entry["credits"], entry["occurred_at"]) for entry in expiries] == [
        (granted[month]["id"], "-10.00", MIDNIGHTS[month + 1]) for month in range(11)
    ]


def test_example_1_january_credits_can_be_used_until_the_last_minute_of_january(client):
    account_id, licence_id = monthly_pack_licence(client, "P1M")
    bill_and_approve(client, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    # February's invoice is approved ahead of its period: its credits are pending until Feb 1.
    bill_and_approve(client, licence_id, "2027-02-01", "2027-01-25T09:00:00Z")
    january, _february = grants(client, account_id, "2027-01-25T09:00:00Z")

    response = consume(client, account_id, "10", "2027-01-31T23:59:00Z")

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["credits"], body["occurred_at"]) == ("10.00", "2027-01-31T23:59:00+00:00")
    assert body["draws"] == [{"grant_id": january["id"], "credits": "10.00"}]
    assert refused(client, account_id, "1", "2027-01-31T23:59:00Z") == {"credits_requested": "1.00", "credits_available": "0.00"}


def test_example_1_january_credits_are_gone_on_february_1(client):
    account_id, licence_id = monthly_pack_licence(client, "P1M")
    bill_and_approve(client, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    bill_and_approve(client, licence_id, "2027-02-01", "2027-01-25T09:00:00Z")
    january, february = grants(client, account_id, "2027-01-25T09:00:00Z")
    before = snapshot(client, account_id, "2027-01-31T23:59:00Z")

    # At 00:00 on Feb 1, before anything has recorded January's expiry, only February's 10 remain.
    refusal = refused(client, account_id, "11", "2027-02-01T00:00:00Z")

    assert refusal == {"credits_requested": "11.00", "credits_available": "10.00"}
    assert snapshot(client, account_id, "2027-01-31T23:59:00Z") == before

    summary = credits_at(client, account_id, "2027-02-01T00:00:00Z")
    assert {name: summary[name] for name in ("granted", "remaining", "used", "removed", "debt")} == {
        "granted": "10.00", "remaining": "10.00", "used": "0.00", "removed": "0.00", "debt": "0.00"
    }
    assert summary["expiring"] == [{"credits": "10.00", "expires_at": "2027-03-01T00:00:00+00:00"}]
    assert summary["pending"] == []

    expiries = ledger(client, account_id, "2027-02-01T00:00:00Z", kind="expire")
    assert [(entry["grant_id"], entry["credits"], entry["balance_after"], entry["occurred_at"]) for entry in expiries] == [
        (january["id"], "-10.00", "10.00", "2027-02-01T00:00:00+00:00")
    ]
    assert [(grant["id"], grant["remaining"]) for grant in grants(client, account_id, "2027-02-01T00:00:00Z")] == [
        (january["id"], "0.00"), (february["id"], "10.00")
    ]


# ---------------------------------------------------------------------------------------------
# Example 2: rolling one extra month (lifetime P2M)
# ---------------------------------------------------------------------------------------------


def test_example_2_rolling_one_extra_month(client):
    account_id, licence_id = monthly_pack_licence(client, "P2M")
    bill_and_approve(client, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    bill_and_approve(client, licence_id, "2027-02-01", "2027-02-01T00:00:00Z")
    january, february = grants(client, account_id, "2027-02-10T10:00:00Z")
    assert (january["valid_from"], january["expires_at"]) == ("2027-01-01T00:00:00+00:00", "2027-03-01T00:00:00+00:00")
    assert (february["valid_from"], february["expires_at"]) == ("2027-02-01T00:00:00+00:00", "2027-04-01T00:00:00+00:00")
    summary = credits_at(client, account_id, "2027-02-10T10:00:00Z")
    assert (summary["granted"], summary["remaining"]) == ("20.00", "20.00")
    assert summary["expiring"] == [{"credits": "10.00", "expires_at": "2027-03-01T00:00:00+00:00"}]

    # January's credits expire sooner, so they are drawn first.
    draws = consumed(client, account_id, "15", "2027-02-10T10:00:00Z")

    assert draws == [{"grant_id": january["id"], "credits": "10.00"}, {"grant_id": february["id"], "credits": "5.00"}]
    entries = ledger(client, account_id, "2027-02-10T10:00:00Z", kind="consume")
    assert [(entry["grant_id"], entry["credits"], entry["balance_after"], entry["occurred_at"]) for entry in entries] == [
        (january["id"], "-10.00", "10.00", "2027-02-10T10:00:00+00:00"),
        (february["id"], "-5.00", "5.00", "2027-02-10T10:00:00+00:00"),
    ]


def test_example_2_january_credits_are_gone_on_march_1(client):
    account_id, licence_id = monthly_pack_licence(client, "P2M")
    bill_and_approve(client, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    bill_and_approve(client, licence_id, "2027-02-01", "2027-02-01T00:00:00Z")
    january, _february = grants(client, account_id, "2027-02-10T10:00:00Z")
    assert consumed(client, account_id, "5", "2027-02-10T10:00:00Z") == [{"grant_id": january["id"], "credits": "5.00"}]
    # March's invoice is approved ahead of its period.
    bill_and_approve(client, licence_id, "2027-03-01", "2027-02-25T09:00:00Z")
    summary = credits_at(client, account_id, "2027-02-28T23:59:00Z")
    assert (summary["granted"], summary["remaining"], summary["used"]) == ("20.00", "15.00", "5.00")
    assert [(item["credits"], item["valid_from"]) for item in summary["pending"]] == [("10.00", "2027-03-01T00:00:00+00:00")]
    before = snapshot(client, account_id, "2027-02-28T23:59:00Z")

    # At 00:00 on Mar 1 January's 5 unused credits are gone: February's 10 and March's 10 remain.
    assert refused(client, account_id, "21", "2027-03-01T00:00:00Z") == {"credits_requested": "21.00", "credits_available": "20.00"}

    assert snapshot(client, account_id, "2027-02-28T23:59:00Z") == before
    summary = credits_at(client, account_id, "2027-03-01T00:00:00Z")
    assert (summary["granted"], summary["remaining"], summary["used"]) == ("20.00", "20.00", "0.00")
    expiries = ledger(client, account_id, "2027-03-01T00:00:00Z", kind="expire")
    assert [(entry["grant_id"], entry["credits"], entry["occurred_at"]) for entry in expiries] == [
        (january["id"], "-5.00", "2027-03-01T00:00:00+00:00")
    ]


# ---------------------------------------------------------------------------------------------
# Example 3: a one-off allowance of 10,000 credits (lifetime P12M)
# ---------------------------------------------------------------------------------------------


def test_example_3_one_off_allowance(client):
    account_id = account(client)
    pack_id = credit_pack(client, "10000", "P12M", price="5000.00")
    licence_id = licence(client, account_id)
    service(client, licence_id, pack_id, "one_off", "2027-03-15")

    # January and February have no billable line, so no invoice; March carries the one-off.
    assert billing_run(client, "2027-03-15", "2027-03-15T09:00:00Z") == {
        "as_of": "2027-03-15",
        "invoices_created": 1,
        "invoices_approved": 0,
        "failed": [],
    }
    (draft,) = invoices(client, licence_id, "2027-03-15T09:00:00Z")
    approved = approve(client, draft["id"], "2027-03-15T10:00:00Z")

    assert (approved["number"], approved["period_start"], approved["period_end"]) == ("INV-2027-000001", "2027-03-01", "2027-03-31")
    (line,) = approved["lines"]
    assert (line["period_start"], line["period_end"], line["credits"]) == ("2027-03-15", "2027-03-15", "10000.00")
    (grant,) = grants(client, account_id, "2027-03-15T10:00:00Z")
    # Valid from the approval moment, later than 00:00 of the from-date; expires at 00:00 a year on.
    assert (grant["id"], grant["credits"], grant["remaining"], grant["valid_from"], grant["expires_at"]) == (
        line["grant_id"], "10000.00", "10000.00", "2027-03-15T10:00:00+00:00", "2028-03-15T00:00:00+00:00"
    )
    last_minute = credits_at(client, account_id, "2028-03-14T23:59:00Z")
    assert (last_minute["granted"], last_minute["remaining"]) == ("10000.00", "10000.00")
    assert last_minute["expiring"] == [{"credits": "10000.00", "expires_at": "2028-03-15T00:00:00+00:00"}]
    assert refused(client, account_id, "1", "2028-03-15T00:00:00Z") == {"credits_requested": "1.00", "credits_available": "0.00"}


# ---------------------------------------------------------------------------------------------
# Example 4: weekly credits (5 credits, lifetime P1W) from Monday 2027-02-01
# ---------------------------------------------------------------------------------------------


def test_example_4_weekly_credits_from_monday_february_1(client):
    account_id = account(client)
    pack_id = credit_pack(client, "5", "P1W", price="25.00")
    licence_id = licence(client, account_id)
    service(client, licence_id, pack_id, "weekly", "2027-02-01", "2027-12-31")

    approved = bill_and_approve(client, licence_id, "2027-02-01", "2027-02-01T00:00:00Z")

    assert (approved["period_start"], approved["period_end"], approved["net"]) == ("2027-02-01", "2027-02-28", "100.00")
    assert [(line["period_start"], line["period_end"], line["credits"], line["net"]) for line in approved["lines"]] == [
        ("2027-02-01", "2027-02-07", "5.00", "25.00"),
        ("2027-02-08", "2027-02-14", "5.00", "25.00"),
        ("2027-02-15", "2027-02-21", "5.00", "25.00"),
        ("2027-02-22", "2027-02-28", "5.00", "25.00"),
    ]
    weekly = grants(client, account_id, "2027-02-01T00:00:00Z")
    assert [(grant["credits"], grant["valid_from"], grant["expires_at"]) for grant in weekly] == [
        ("5.00", "2027-02-01T00:00:00+00:00", "2027-02-08T00:00:00+00:00"),
        ("5.00", "2027-02-08T00:00:00+00:00", "2027-02-15T00:00:00+00:00"),
        ("5.00", "2027-02-15T00:00:00+00:00", "2027-02-22T00:00:00+00:00"),
        ("5.00", "2027-02-22T00:00:00+00:00", "2027-03-01T00:00:00+00:00"),
    ]
    assert [line["grant_id"] for line in approved["lines"]] == [grant["id"] for grant in weekly]

    # On Wednesday Feb 10 only the second week's credits are usable.
    assert refused(client, account_id, "6", "2027-02-10T12:00:00Z") == {"credits_requested": "6.00", "credits_available": "5.00"}
    assert consumed(client, account_id, "5", "2027-02-10T12:00:00Z") == [{"grant_id": weekly[1]["id"], "credits": "5.00"}]


# ---------------------------------------------------------------------------------------------
# Example 5: business units (Cardiology and Neurology)
# ---------------------------------------------------------------------------------------------


def test_example_5_cardiology_cannot_use_neurology_credits(client):
    account_id = account(client, "St Mary's Hospital")
    cardiology = business_unit(client, account_id, "Cardiology")
    neurology = business_unit(client, account_id, "Neurology")
    pack_id = credit_pack(client, "10", "P1M")
    small_pack_id = credit_pack(client, "4", "P1M", price="40.00")
    licence_id = licence(client, account_id)
    service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-12-31", business_unit_id=cardiology)  # 10
    service(client, licence_id, pack_id, "monthly", "2027-01-01", "2027-12-31", business_unit_id=neurology, quantity="3")  # 30
    service(client, licence_id, small_pack_id, "monthly", "2027-01-01", "2027-12-31")  # 4 unrestricted
    bill_and_approve(client, licence_id, "2027-01-01", "2027-01-01T00:00:00Z")
    moment = "2027-01-15T10:00:00Z"
    cardiology_grant, neurology_grant, unrestricted_grant = grants(client, account_id, moment)
    assert [(grant["business_unit_id"], grant["credits"]) for grant in (cardiology_grant, neurology_grant, unrestricted_grant)] == [
        (cardiology, "10.00"), (neurology, "30.00"), (None, "4.00")
    ]
    before = snapshot(client, account_id, moment)

    # Cardiology may use its own 10 and the 4 unrestricted credits: 14, never Neurology's 30.
    assert refused(client, account_id, "15", moment, business_unit_id=cardiology) == {
        "credits_requested": "15.00", "credits_available": "14.00"
    }
    assert snapshot(client, account_id, moment) == before
    # Without a unit, only the 4 unrestricted credits.
    assert refused(client, account_id, "5", moment) == {"credits_requested": "5.00", "credits_available": "4.00"}
    assert snapshot(client, account_id, moment) == before

    assert consumed(client, account_id, "3", moment) == [{"grant_id": unrestricted_grant["id"], "credits": "3.00"}]
    assert consumed(client, account_id, "11", moment, business_unit_id=cardiology) == [
        {"grant_id": cardiology_grant["id"], "credits": "10.00"}, {"grant_id": unrestricted_grant["id"], "credits": "1.00"}
    ]

    assert [(grant["remaining"], grant["used"]) for grant in grants(client, account_id, moment)] == [
        ("0.00", "10.00"), ("30.00", "0.00"), ("0.00", "4.00")
    ]
    summary = credits_at(client, account_id, moment)
    assert [(unit["business_unit_id"], unit["name"], unit["granted"], unit["remaining"], unit["used"]) for unit in summary["business_units"]] == [
        (cardiology, "Cardiology", "10.00", "0.00", "10.00"), (neurology, "Neurology", "30.00", "30.00", "0.00")
    ]
    unrestricted = summary["unrestricted"]
    assert (unrestricted["granted"], unrestricted["remaining"], unrestricted["used"]) == ("4.00", "0.00", "4.00")
    assert (summary["granted"], summary["remaining"], summary["used"]) == ("44.00", "30.00", "14.00")


# ---------------------------------------------------------------------------------------------
# Example 6: over-allocation corrected by a credit note
# ---------------------------------------------------------------------------------------------


def test_example_6_credit_note_for_half_of_a_full_month_granted_to_a_late_start(client):
    account_id = account(client)
    pack_id = credit_pack(client, "10", "P1M", price="100.00")
    licence_id = licence(client, account_id, start="2027-01-16")
    service(client, licence_id, pack_id, "monthly", "2027-01-16", "2027-12-31")

    invoice = bill_and_approve(client, licence_id, "2027-01-16", "2027-01-16T00:00:00Z")
    [line] = invoice["lines"]
    assert (line["period_start"], line["period_end"], line["credits"], line["net"]) == ("2027-01-16", "2027-01-31", "10.00", "100.00")

    moment = "2027-01-18T09:00:00Z"
    body = {"invoice_id": invoice["id"], "lines": [{"invoice_line_id": line["id"], "quantity": "0.5"}], "reason": "over-allocation"}
    note = created(client, "/api/v1/credit-notes", body, moment)
    assert (note["status"], note["number"], note["net"], note["tax"], note["gross"]) == ("draft", None, "50.00", "10.00", "60.00")
    assert note["lines"][0]["credits_taken_back"] is None

    response = call(client, "POST", f"/api/v1/credit-notes/{note['id']}/approve", moment)
    assert response.status_code == 200, response.text
    note = response.json()
    assert (note["status"], note["number"], note["invoice_number"]) == ("approved", "CN-2027-000001", invoice["number"])
    assert note["lines"][0]["credits_taken_back"] == "5.00"

    [grant] = grants(client, account_id, moment)
    assert (grant["credits"], grant["remaining"], grant["removed"]) == ("10.00", "5.00", "5.00")
    summary = credits_at(client, account_id, moment)
    assert (summary["granted"], summary["remaining"], summary["removed"]) == ("10.00", "5.00", "5.00")
    last = ledger(client, account_id, moment)[-1]
    assert (last["kind"], last["credits"], last["balance_after"], last["source"]) == (
        "credit_note_reversal", "-5.00", "5.00", {"type": "credit_note", "id": note["id"]}
    )
    response = call(client, "GET", "/api/v1/reports/liability", moment, params={"as_of": moment})
    assert response.status_code == 200, response.text
    [eur] = response.json()["currencies"]
    assert (eur["currency"], eur["credits"], eur["value"]) == ("EUR", "5.00", "50.00")
