"""SPEC 9 and API.md (webhooks, events): the events of the outbox delivered to a real HTTP receiver.

A receiver on 127.0.0.1 (``http.server`` in a thread) checks every request's
``Licensing-Signature`` with the secret the API handed out at registration and records what it
was sent; it can be told to answer 500. The engine's use cases cause the events (a billing run,
an approval, a consumption); ``fan_out`` and ``deliver_due`` are called as the scheduler calls
them, at explicit moments, so that retries and back-off are checked to the second:
after the n-th failure the next attempt waits 10 s x 2**(n-1) (10, 20, 40 ... 2560 s, at most an
hour), and the 10th failure gives the delivery up.

The receiver listens on 127.0.0.1, which webhooks may not reach unless the operator allows it:
every test here runs with ``LICENSING_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8`` (the guard itself
is tested in ``test_webhook_guard.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import date, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from licensing.events import Event, record_event, worker
from licensing.webhooks.models import Webhook, WebhookDelivery
from licensing.webhooks.services import (
    LOOKBACK,
    WebhookRun,
    deliver_due,
    fan_out,
    register_webhook,
    retry_delay,
    sign,
    verify,
)
from tests import factories
from tests.support.use_cases import bill, bill_and_approve, instant, use
from tests.support.webhooks import LocalServer, QuietHandler

PROBLEM = "application/problem+json"
REGISTERED = "2026-12-20T09:00:00Z"


# ---------------------------------------------------------------------------------------------
# The receiver
# ---------------------------------------------------------------------------------------------


class Receiver(LocalServer):
    """An HTTP endpoint on 127.0.0.1 that accepts a delivery only when its signature is valid for
    the secret of the path it was sent to (one path per webhook)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> secret
        self.status = 200
        self.delay = 0.0  # seconds to wait before answering
        self.clock = None  # the instant the signature's timestamp must be close to
        self.accepted: list[dict] = []  # {"path", "body", "headers", "event"} of 2xx answers
        self.requests: list[dict] = []  # every request, whatever the answer
        self.lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                time.sleep(receiver.delay)
                secret = receiver.secrets.get(self.path)
                signature = headers.get("licensing-signature", "")
                valid = (
                    secret is not None
                    and verify(secret, signature, body, now=receiver.clock)
                    and signature == by_the_book(secret, signature.partition(",")[0].removeprefix("t="), body)
                )
                status = receiver.status if valid else 400
                record = {"path": self.path, "body": body, "headers": headers, "valid": valid, "status": status}
                with receiver.lock:
                    receiver.requests.append(record)
                    if 200 <= status < 300:
                        receiver.accepted.append(record | {"event": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self, path: str = "/hooks") -> list[dict]:
        return [record["event"] for record in self.accepted if record["path"] == path]


def by_the_book(secret: str, timestamp: str, body: bytes) -> str:
    """The header API.md describes, computed here without the engine's code."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.fixture(autouse=True)
def local_receivers_allowed(set_operator_setting):
    """The receivers of these tests listen on 127.0.0.1; no sender outlives its test."""
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")
    yield
    assert worker.wait(timeout=30)


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def api(client):
    """The billing client, with every route resolved before a test freezes the clock."""
    assert client.get("/api/v1/no-such-resource").status_code == 404
    return client


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def register(api, receiver: Receiver, events: list[str], path: str = "/hooks", moment: str = REGISTERED) -> dict:
    with freeze_time(moment):
        response = api.post("/api/v1/webhooks", json={"url": receiver.url(path), "events": events})
    assert response.status_code == 201, response.text
    webhook = response.json()
    receiver.secrets[path] = webhook["secret"]
    return webhook


def deliver(database, receiver: Receiver, moment, **options) -> WebhookRun:
    """One scheduler tick at ``moment``: fan out, then deliver what is due."""
    receiver.clock = moment
    fan_out(database, now=moment)
    return deliver_due(database, now=moment, **options)


def a_monthly_pack_licence(database):
    account = factories.account(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    factories.service(database, licence.id, pack.id, schedule="monthly", from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    return account, licence


def events_after(database, event_id: int) -> list[Event]:
    with database.read() as session:
        return list(session.exec(select(Event).where(Event.id > event_id).order_by(Event.id)).all())


def deliveries(database) -> list[WebhookDelivery]:
    with database.read() as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.event_id, WebhookDelivery.webhook_id)).all())


def as_sent(event: Event) -> dict:
    """The body a delivery of ``event`` must carry."""
    return {"id": str(event.id), "type": event.type, "created_at": event.created_at.isoformat(), "data": json.loads(event.data)}


def newest_event_id(database) -> int:
    with database.read() as session:
        return max(session.exec(select(Event.id)).all(), default=0)


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def test_the_signature_is_the_hex_hmac_sha256_of_timestamp_dot_body_keyed_with_the_secret():
    body = b'{"id":"7","type":"credits.consumed"}'
    expected = hmac.new(b"whsec-test", b'1800000000.{"id":"7","type":"credits.consumed"}', hashlib.sha256).hexdigest()

    assert sign("whsec-test", 1800000000, body) == expected
    assert verify("whsec-test", f"t=1800000000,v1={expected}", body, now=instant("2027-01-15 08:00"))


def test_verify_refuses_a_tampered_body_another_secret_a_stale_timestamp_and_garbage():
    body = b'{"id":"7"}'
    header = f"t=1800000000,v1={sign('s3cret', 1800000000, body)}"
    moment = instant("2027-01-15 08:00")  # 1800000000 is 2027-01-15 08:00:00 UTC

    assert verify("s3cret", header, body, now=moment)
    assert verify("s3cret", header, body, now=moment + timedelta(seconds=300))
    assert not verify("s3cret", header, b'{"id":"8"}', now=moment)
    assert not verify("other", header, body, now=moment)
    assert not verify("s3cret", header, body, now=moment + timedelta(seconds=301))
    assert not verify("s3cret", header, body, now=moment - timedelta(seconds=301))
    assert verify("s3cret", header, body, tolerance=None, now=moment + timedelta(days=30))
    # While a secret is replaced, any of several v1 may match.
    assert verify("s3cret", f"t=1800000000,v1={'0' * 64},v1={sign('s3cret', 1800000000, body)}", body, now=moment)
    for garbage in (None, "", "t=1800000000", f"v1={sign('s3cret', 1800000000, body)}", "t=abc,v1=00", "nonsense"):
        assert not verify("s3cret", garbage, body, now=moment)


def test_retries_wait_ten_seconds_then_twice_as_long_each_time_at_most_an_hour():
    assert [retry_delay(attempts).total_seconds() for attempts in range(1, 12)] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600,
    ]


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


def test_each_event_after_registration_arrives_once_signed_and_in_order(database, api, receiver):
    account, licence = a_monthly_pack_licence(database)
    # January is billed and approved before the webhook exists: its events are never sent.
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    before = newest_event_id(database)
    assert before == 3

    webhook = register(api, receiver, ["*"])
    bill_and_approve(database, licence.id, as_of=date(2027, 2, 1), now=instant("2027-02-01 00:00"))
    use(database, account.id, "3", instant("2027-02-10 10:00"))

    moment = instant("2027-02-10 12:00")
    receiver.clock = moment
    assert fan_out(database, now=moment) == 5
    run = deliver_due(database, now=moment)

    events = events_after(database, before)
    # February's approval first records that January's 10 unused credits expired on Feb 1.
    assert [event.type for event in events] == ["invoice.generated", "credits.expired", "credits.granted", "invoice.approved", "credits.consumed"]
    assert run == WebhookRun(delivered=5, retried=0, failed=0)
    assert all(record["valid"] for record in receiver.requests) and len(receiver.requests) == 5
    assert receiver.events() == [as_sent(event) for event in events]
    expired, approved, consumed = receiver.events()[1], receiver.events()[3], receiver.events()[4]
    assert (expired["data"]["credits"], expired["data"]["expired_at"]) == ("10.00", "2027-02-01T00:00:00+00:00")
    assert (approved["data"]["number"], approved["created_at"]) == ("INV-2027-000002", "2027-02-01T00:00:00+00:00")
    assert (consumed["data"]["account_id"], consumed["created_at"]) == (str(account.id), "2027-02-10T10:00:00+00:00")
    for record, event in zip(receiver.accepted, events, strict=True):
        assert record["headers"]["content-type"] == "application/json"
        assert record["headers"]["licensing-event-id"] == str(event.id)
        assert record["headers"]["licensing-event-type"] == event.type
        # Signed at the moment of sending: the run's moment, plus the little time the run took.
        signed_at = int(record["headers"]["licensing-signature"].split(",")[0].removeprefix("t="))
        assert int(moment.timestamp()) <= signed_at <= int(moment.timestamp()) + 30  # a loaded machine may take seconds
        # The signature covers the body as sent: one changed byte and it no longer verifies.
        tampered = record["body"].replace(b'"id":"', b'"id":"9', 1)
        assert not verify(webhook["secret"], record["headers"]["licensing-signature"], tampered, now=moment)
        assert not verify("another secret", record["headers"]["licensing-signature"], record["body"], now=moment)

    # Each is delivered once: later ticks send nothing again.
    assert fan_out(database, now=moment + timedelta(minutes=1)) == 0
    assert deliver_due(database, now=moment + timedelta(hours=2)) == WebhookRun()
    assert len(receiver.requests) == 5
    assert [(d.event_id, d.status, d.attempts, d.last_status_code, d.delivered_at, d.last_error) for d in deliveries(database)] == [
        (event.id, "delivered", 1, 200, moment, None) for event in events
    ]


def test_the_scheduler_job_fans_out_and_delivers(database, api, receiver):
    from licensing.scheduler import run_job

    _account, licence = a_monthly_pack_licence(database)
    register(api, receiver, ["invoice.generated", "invoice.approved"])
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    receiver.clock = instant("2027-01-01 00:00:05")

    # The job fans out and hands the sending to a background sender, which it does not wait for.
    assert run_job(database, "webhooks", instant("2027-01-01 00:00:05")) == "2 webhook deliveries queued; 2 due, sent in the background"
    assert worker.wait(database, timeout=30)
    assert [event["type"] for event in receiver.events()] == ["invoice.generated", "invoice.approved"]
    assert {(d.status, d.attempts) for d in deliveries(database)} == {("delivered", 1)}
    assert run_job(database, "webhooks", instant("2027-01-01 00:00:10")) == "0 webhook deliveries queued; none due"
    assert len(receiver.requests) == 2


def test_a_webhook_receives_only_the_types_it_asked_for(database, api, receiver):
    account, licence = a_monthly_pack_licence(database)
    consumed = register(api, receiver, ["credits.consumed"], path="/consumed")
    invoices = register(api, receiver, ["invoice.approved", "invoice.generated"], path="/invoices")
    everything = register(api, receiver, ["*"], path="/all")
    assert (consumed["events"], invoices["events"], everything["events"]) == (["credits.consumed"], ["invoice.approved", "invoice.generated"], ["*"])

    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    use(database, account.id, "2", instant("2027-01-05 10:00"))
    use(database, account.id, "1.50", instant("2027-01-06 10:00"))
    deliver(database, receiver, instant("2027-01-06 10:00"))

    events = events_after(database, 0)
    assert [event.type for event in events] == ["invoice.generated", "credits.granted", "invoice.approved", "credits.consumed", "credits.consumed"]
    assert receiver.events("/consumed") == [as_sent(events[3]), as_sent(events[4])]
    assert receiver.events("/invoices") == [as_sent(events[0]), as_sent(events[2])]
    assert receiver.events("/all") == [as_sent(event) for event in events]
    assert len(receiver.requests) == 9 and all(record["valid"] for record in receiver.requests)


def test_a_receiver_answering_500_gets_each_event_again_with_back_off_until_it_answers_200(database, api, receiver):
    _account, licence = a_monthly_pack_licence(database)
    register(api, receiver, ["*"])
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    receiver.status = 500
    start = instant("2027-01-01 00:05")

    assert deliver(database, receiver, start) == WebhookRun(delivered=0, retried=3, failed=0)
    assert [(d.status, d.attempts, d.last_status_code, d.next_attempt_at) for d in deliveries(database)] == [
        ("pending", 1, 500, start + timedelta(seconds=10))
    ] * 3
    assert {d.last_error for d in deliveries(database)} == {"HTTP 5xx"}  # the status class, no more

    # Not due before the back-off has passed.
    assert deliver(database, receiver, start + timedelta(seconds=9)) == WebhookRun()
    assert len(receiver.requests) == 3
    assert deliver(database, receiver, start + timedelta(seconds=10)) == WebhookRun(retried=3)
    assert [(d.attempts, d.next_attempt_at) for d in deliveries(database)] == [(2, start + timedelta(seconds=30))] * 3
    assert len(receiver.requests) == 6 and receiver.accepted == []

    receiver.status = 200
    assert deliver(database, receiver, start + timedelta(seconds=29)) == WebhookRun()
    assert deliver(database, receiver, start + timedelta(seconds=30)) == WebhookRun(delivered=3)
    assert deliver(database, receiver, start + timedelta(hours=5)) == WebhookRun()

    events = events_after(database, 0)
    assert receiver.events() == [as_sent(event) for event in events]  # each once, none lost
    assert len(receiver.requests) == 9
    assert [(d.status, d.attempts, d.last_status_code, d.delivered_at) for d in deliveries(database)] == [
        ("delivered", 3, 200, start + timedelta(seconds=30))
    ] * 3


def test_after_ten_failed_attempts_a_delivery_is_failed_and_the_event_log_says_so(database, api, receiver):
    register(api, receiver, ["credits.consumed"])
    account, licence = a_monthly_pack_licence(database)
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    use(database, account.id, "4", instant("2027-01-02 09:00"))
    receiver.status = 500

    moment = instant("2027-01-02 09:00")
    attempts_at = []
    for attempt in range(1, 11):
        attempts_at.append(moment)
        run = deliver(database, receiver, moment)
        assert run == (WebhookRun(retried=1) if attempt < 10 else WebhookRun(failed=1))
        # One second early, the next attempt is not due.
        (delivery,) = deliveries(database)
        if attempt < 10:
            assert delivery.next_attempt_at == moment + timedelta(seconds=10 * 2 ** (attempt - 1))
            assert deliver(database, receiver, delivery.next_attempt_at - timedelta(seconds=1)) == WebhookRun()
        moment = delivery.next_attempt_at
    # 10, 20, 40 ... 2560 seconds between the attempts: 5110 s in all.
    assert attempts_at[-1] - attempts_at[0] == timedelta(seconds=5110)
    assert len(receiver.requests) == 10

    receiver.status = 200
    assert deliver(database, receiver, instant("2027-01-03 09:00")) == WebhookRun()
    assert len(receiver.requests) == 10 and receiver.accepted == []

    response = api.get("/api/v1/events", params={"type": "credits.consumed"})
    assert response.status_code == 200, response.text
    (event,) = response.json()["items"]
    assert event["type"] == "credits.consumed" and event["data"]["credits"] in ("4", "4.00")
    webhook_id = str(delivery.webhook_id)
    assert event["deliveries"] == [
        {
            "webhook_id": webhook_id, "status": "failed", "attempts": 10, "last_error": "HTTP 5xx",
            "last_status_code": 500, "next_attempt_at": attempts_at[-1].isoformat(), "delivered_at": None,
        }
    ]


def test_a_refused_connection_is_a_failed_attempt_not_a_crash(database, api, receiver):
    with freeze_time(REGISTERED):
        response = api.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:{closed_port()}/hooks", "events": ["*"]})
    assert response.status_code == 201, response.text
    _account, _licence = a_monthly_pack_licence(database)
    bill(database, date(2027, 1, 1), instant("2027-01-01 00:00"))

    moment = instant("2027-01-01 00:01")
    assert deliver(database, receiver, moment, timeout=timedelta(seconds=2)) == WebhookRun(retried=1)
    (delivery,) = deliveries(database)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error == "unreachable"  # never the system's "Connection refused"
    assert delivery.next_attempt_at == moment + timedelta(seconds=10)


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(database, api, receiver):
    register(api, receiver, ["*"])
    _account, _licence = a_monthly_pack_licence(database)
    bill(database, date(2027, 1, 1), instant("2027-01-01 00:00"))
    receiver.delay = 1.5

    moment = instant("2027-01-01 00:01")
    assert deliver(database, receiver, moment, timeout=timedelta(milliseconds=500)) == WebhookRun(retried=1)
    (delivery,) = deliveries(database)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error == "unreachable"


def test_two_senders_at_once_deliver_each_event_once(database, api, receiver):
    account, licence = a_monthly_pack_licence(database)
    register(api, receiver, ["*"])
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    for day in range(2, 12):
        use(database, account.id, "1", instant(f"2027-01-{day:02d} 10:00"))
    moment = instant("2027-01-12 00:00")
    receiver.clock = moment
    receiver.delay = 0.02  # long enough for the two senders to overlap
    assert fan_out(database, now=moment) == 13

    runs = []
    barrier = threading.Barrier(2)

    def sender():
        barrier.wait()
        runs.append(deliver_due(database, now=moment))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    events = events_after(database, 0)
    assert len(events) == 13
    assert sorted(event["id"] for event in receiver.events()) == sorted(str(event.id) for event in events)
    assert len(receiver.requests) == 13
    assert sum(run.delivered for run in runs) == 13 and len(runs) == 2
    assert {(d.status, d.attempts) for d in deliveries(database)} == {("delivered", 1)}


def test_two_fan_outs_at_once_queue_each_delivery_once(database, api, receiver):
    account, licence = a_monthly_pack_licence(database)
    register(api, receiver, ["*"], path="/one")
    register(api, receiver, ["credits.consumed"], path="/two")
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    for day in range(2, 7):
        use(database, account.id, "1", instant(f"2027-01-{day:02d} 10:00"))
    moment = instant("2027-01-07 00:00")
    queued = []
    barrier = threading.Barrier(4)

    def fanner():
        barrier.wait()
        queued.append(fan_out(database, now=moment))

    threads = [threading.Thread(target=fanner) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # 8 events for the first webhook, the 5 consumptions for the second.
    assert sum(queued) == 13 and len(queued) == 4
    rows = deliveries(database)
    assert len(rows) == 13 and len({(row.webhook_id, row.event_id) for row in rows}) == 13


def test_an_event_committed_after_a_newer_one_is_still_delivered(database, api, receiver):
    if database.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: its events commit in id order")
    register(api, receiver, ["*"])
    moment = instant("2027-01-01 00:00")
    with database.write() as slow:
        record_event(slow, "credits.adjusted", {"note": "slow"}, at=moment)
        slow.flush()
        with database.write() as quick:
            record_event(quick, "credits.adjusted", {"note": "quick"}, at=moment)
        deliver(database, receiver, moment)
        assert [event["data"] for event in receiver.events()] == [{"note": "quick"}]
    deliver(database, receiver, moment + timedelta(seconds=5))

    assert [event["data"] for event in receiver.events()] == [{"note": "quick"}, {"note": "slow"}]
    assert int(receiver.events()[1]["id"]) < int(receiver.events()[0]["id"])


def test_fan_out_keeps_a_cursor_that_trails_the_newest_event(database, receiver):
    with database.write() as session:
        webhook, _secret = register_webhook(session, url=receiver.url(), events=["credits.expired"], now=instant("2027-01-01 00:00"))
    rows = [{"type": "credits.adjusted", "data": "{}", "created_at": instant("2027-01-01 00:00")}] * (2 * LOOKBACK + 500)
    with database.write() as session:
        from licensing.db.bulk import insert_rows

        insert_rows(session, Event.__table__, rows)
        record_event(session, "credits.expired", {"grant_id": "1"}, at=instant("2027-01-01 00:00"))
    newest = newest_event_id(database)

    assert fan_out(database, now=instant("2027-01-01 00:01")) == 1
    with database.read() as session:
        assert session.get(Webhook, webhook.id).after_event_id == newest - LOOKBACK
    # Nothing new: nothing queued, and the cursor stays.
    assert fan_out(database, now=instant("2027-01-01 00:02")) == 0
    with database.read() as session:
        assert session.get(Webhook, webhook.id).after_event_id == newest - LOOKBACK
    assert [(d.event_id, d.status) for d in deliveries(database)] == [(newest, "pending")]


def test_a_deleted_webhook_gets_nothing_more(database, api, receiver):
    _account, _licence = a_monthly_pack_licence(database)
    kept = register(api, receiver, ["invoice.generated"], path="/kept")
    removed = register(api, receiver, ["invoice.generated"], path="/removed")
    bill(database, date(2027, 1, 1), instant("2027-01-01 00:00"))
    fan_out(database, now=instant("2027-01-01 00:00"))  # queued for both

    with freeze_time("2027-01-01T00:00:30Z"):
        response = api.delete(f"/api/v1/webhooks/{removed['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": removed["id"], "url": receiver.url("/removed"), "events": ["invoice.generated"],
        "created_at": "2026-12-20T09:00:00+00:00", "deleted_at": "2027-01-01T00:00:30+00:00",
    }
    bill(database, date(2027, 2, 1), instant("2027-02-01 00:00"))
    deliver(database, receiver, instant("2027-02-01 00:00"))

    assert len(receiver.events("/kept")) == 2 and receiver.events("/removed") == []
    assert [(str(d.webhook_id), d.status, d.attempts, d.last_error) for d in deliveries(database)] == [
        (kept["id"], "delivered", 1, None), (removed["id"], "failed", 0, "webhook deleted"), (kept["id"], "delivered", 1, None),
    ]
    listed = api.get("/api/v1/webhooks").json()
    assert [webhook["id"] for webhook in listed["items"]] == [kept["id"]]
    again = api.delete(f"/api/v1/webhooks/{removed['id']}")
    assert again.status_code == 404 and again.json()["code"] == "not_found"


# ---------------------------------------------------------------------------------------------
# The HTTP contract
# ---------------------------------------------------------------------------------------------


def test_registering_answers_the_secret_once_and_listing_never_shows_it(database, api, receiver):
    with freeze_time(REGISTERED):
        response = api.post("/api/v1/webhooks", json={"url": receiver.url(), "events": ["credits.granted", "*"]})
    assert response.status_code == 201, response.text
    webhook = response.json()
    assert set(webhook) == {"id", "url", "events", "created_at", "deleted_at", "secret"}
    assert (webhook["url"], webhook["events"], webhook["created_at"], webhook["deleted_at"]) == (
        receiver.url(), ["*"], "2026-12-20T09:00:00+00:00", None,
    )
    assert len(webhook["secret"]) == 43  # 32 random bytes, base64url
    second = api.post("/api/v1/webhooks", json={"url": receiver.url("/b"), "events": ["invoice.voided", "invoice.voided", "licence.renewed"]})
    assert second.status_code == 201 and second.json()["secret"] != webhook["secret"]
    assert second.json()["events"] == ["invoice.voided", "licence.renewed"]

    first_page = api.get("/api/v1/webhooks", params={"limit": 1}).json()
    assert [item["id"] for item in first_page["items"]] == [webhook["id"]]
    assert first_page["next_cursor"] == webhook["id"]
    rest = api.get("/api/v1/webhooks", params={"limit": 1, "cursor": first_page["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == [second.json()["id"]] and rest["next_cursor"] is None
    for item in first_page["items"] + rest["items"]:
        assert "secret" not in item
        assert webhook["secret"] not in json.dumps(item)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/hooks", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "http://", "events": ["*"]}, "url"),
        ({"url": "https://exa mple.test/hooks", "events": ["*"]}, "url"),
        ({"url": "https://example.test:99999/hooks", "events": ["*"]}, "url"),
        ({"url": "https://example.test/" + "a" * 1990, "events": ["*"]}, "url"),
        ({"url": 42, "events": ["*"]}, "url"),
        ({"url": "https://example.test/hooks", "events": ["invoice.teleported"]}, "events"),
        ({"url": "https://example.test/hooks", "events": []}, "events"),
        ({"url": "https://example.test/hooks", "events": "*"}, "events"),
        ({"url": "https://example.test/hooks", "events": [None]}, "events.0"),
        ({"url": "https://example.test/hooks"}, "events"),
        ({"url": "https://example.test/hooks", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_registering_refuses_malformed_input_with_422_and_registers_nothing(database, api, body, field):
    response = api.post("/api/v1/webhooks", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in [error["field"] for error in problem["errors"]]
    with database.read() as session:
        assert session.exec(select(Webhook)).all() == []


def test_a_url_that_is_not_unicode_text_is_refused_with_422(database, api):
    body = b'{"url": "https://\\ud800.test/hooks", "events": ["*"]}'
    response = api.post("/api/v1/webhooks", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    with database.read() as session:
        assert session.exec(select(Webhook)).all() == []


def test_a_url_of_2000_characters_is_accepted_and_one_more_is_not(database, api):
    url = "https://127.0.0.1/" + "a" * (2000 - len("https://127.0.0.1/"))
    assert api.post("/api/v1/webhooks", json={"url": url, "events": ["*"]}).status_code == 201
    assert api.post("/api/v1/webhooks", json={"url": url + "a", "events": ["*"]}).status_code == 422


def test_only_billing_and_admin_keys_manage_webhooks(database, api, receiver):
    body = {"url": receiver.url(), "events": ["*"]}
    assert api.as_role("bookings").post("/api/v1/webhooks", json=body).status_code == 403
    assert api.as_role("read").post("/api/v1/webhooks", json=body).status_code == 403
    anonymous = api.as_role(None).post("/api/v1/webhooks", json=body)
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith(PROBLEM)
    with database.read() as session:
        assert session.exec(select(Webhook)).all() == []

    created = api.as_role("admin").post("/api/v1/webhooks", json=body)
    assert created.status_code == 201
    webhook_id = created.json()["id"]
    assert api.as_role("bookings").get("/api/v1/webhooks").status_code == 403
    assert api.as_role("bookings").delete(f"/api/v1/webhooks/{webhook_id}").status_code == 403
    assert api.as_role(None).delete(f"/api/v1/webhooks/{webhook_id}").status_code == 401
    with database.read() as session:
        assert session.get(Webhook, int(webhook_id)).deleted_at is None
    assert api.as_role("bookings").get("/api/v1/events").status_code == 403
    assert api.as_role(None).get("/api/v1/events").status_code == 401
    assert api.as_role("read").get("/api/v1/events").status_code == 200


@pytest.mark.parametrize("webhook_id", ["999", "abc", "-1", "1" * 30])
def test_deleting_an_unknown_webhook_is_404(database, api, webhook_id):
    response = api.delete(f"/api/v1/webhooks/{webhook_id}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "not_found"


def test_the_event_log_lists_events_oldest_first_filtered_by_type_and_since(database, api):
    account, licence = a_monthly_pack_licence(database)
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"))
    use(database, account.id, "2", instant("2027-01-05 10:00"))
    use(database, account.id, "1", instant("2027-01-06 10:00"))

    everything = api.get("/api/v1/events").json()
    assert [(item["type"], item["created_at"]) for item in everything["items"]] == [
        ("invoice.generated", "2027-01-01T00:00:00+00:00"),
        ("credits.granted", "2027-01-01T00:00:00+00:00"),
        ("invoice.approved", "2027-01-01T00:00:00+00:00"),
        ("credits.consumed", "2027-01-05T10:00:00+00:00"),
        ("credits.consumed", "2027-01-06T10:00:00+00:00"),
    ]
    assert everything["next_cursor"] is None
    assert all(item["deliveries"] == [] for item in everything["items"])
    assert everything["items"][2]["data"]["number"] == "INV-2027-000001"
    assert everything["items"][1]["data"]["grants"][0]["credits"] == "10.00"

    consumed = api.get("/api/v1/events", params={"type": "credits.consumed"}).json()["items"]
    assert [item["id"] for item in consumed] == [everything["items"][3]["id"], everything["items"][4]["id"]]
    # since is inclusive, and an offset other than Z means the same instant.
    since = api.get("/api/v1/events", params={"since": "2027-01-06T11:00:00+01:00"}).json()["items"]
    assert [item["id"] for item in since] == [everything["items"][4]["id"]]
    both = api.get("/api/v1/events", params={"since": "2027-01-05T10:00:00Z", "type": "credits.consumed"}).json()["items"]
    assert [item["id"] for item in both] == [everything["items"][3]["id"], everything["items"][4]["id"]]

    first = api.get("/api/v1/events", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == [item["id"] for item in everything["items"][:2]]
    rest = api.get("/api/v1/events", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == [item["id"] for item in everything["items"][2:4]]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2027-01-01"},
        {"since": "2027-01-01T00:00:00"},
        {"since": "1800000000"},
        {"since": "2027-13-01T00:00:00Z"},
        {"since": "2027-02-30T00:00:00Z"},
        {"since": "9999-12-31T23:59:59-23:59"},
        {"since": "yesterday"},
        {"type": "invoice.teleported"},
        {"limit": "0"},
        {"limit": "501"},
        {"cursor": "abc"},
    ],
)
def test_the_event_log_refuses_malformed_filters_with_422(database, api, params):
    response = api.get("/api/v1/events", params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "validation_error"
