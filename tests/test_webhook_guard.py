"""Issue 11, API.md "Keys, limits and outages": webhooks must not reach inside nor stall the clock.

* A webhook URL whose host is, or resolves to, a loopback, private, link-local, unique-local,
  unspecified, multicast or reserved address is refused at registration (422
  ``webhook_url_forbidden``, field ``url``) unless ``LICENSING_WEBHOOK_ALLOWED_NETWORKS`` allows it,
  and checked again at each delivery, which connects only to the address it checked.
* Each delivery has a hard wall-clock deadline (``LICENSING_WEBHOOK_DEADLINE_SECONDS``), and the
  scheduler's other jobs never wait for one.
* A failed delivery records the status class (``HTTP 5xx``), ``unreachable`` or ``forbidden
  address``: never the system's words ("Connection refused") that made ``/events`` a port scanner.

Names are resolved by a stand-in for ``socket.getaddrinfo`` (numeric hosts and ``localhost``
still go to the real one, with no DNS query): no test reaches an address other than 127.0.0.1.
Refusals are checked not to open any connection at all.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from licensing.events import record_event, worker
from licensing.scheduler import run_due
from licensing.webhooks import guard
from licensing.webhooks.models import Webhook, WebhookDelivery
from licensing.webhooks.services import WebhookRun, deliver_due, fan_out
from tests.support.webhooks import LocalServer, QuietHandler

PROBLEM = "application/problem+json"
MOMENT = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PUBLIC = "203.0.114.7"  # a public address (never connected to: only names resolve to it)
WORDS = {"HTTP 3xx", "HTTP 4xx", "HTTP 5xx", "unreachable", "forbidden address"}


# ---------------------------------------------------------------------------------------------
# Fixtures: a stand-in resolver, receivers on 127.0.0.1
# ---------------------------------------------------------------------------------------------


class Resolver:
    """``socket.getaddrinfo`` for the names a test gives answers to (a list of addresses, or a
    function of the how-many-th lookup it is; no address: the name does not resolve). Other
    hosts go to the real resolver as numbers only (``localhost`` from /etc/hosts): no DNS."""

    def __init__(self, real) -> None:
        self.real = real
        self.answers: dict[str, object] = {}
        self.lookups: Counter[str] = Counter()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - getaddrinfo's names
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.lookups[name] += 1
        if name in self.answers:
            answer = self.answers[name]
            addresses = answer(self.lookups[name]) if callable(answer) else answer
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            port = int(port or 0)
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)) if ":" in address
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in addresses
            ]
        if name == "localhost":
            return self.real(host, port, family, type, proto, flags)
        return self.real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    stand_in = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stand_in)
    yield stand_in
    assert worker.wait(timeout=30)  # no sender outlives its test


@pytest.fixture
def connections(monkeypatch):
    """Every address a socket of this process connects to during the test."""
    seen = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        seen.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


class Receiver(LocalServer):
    """Answers each POST with the status its path names (``/503``), recording the requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "host": self.headers.get("Host")})
                status = int(self.path.strip("/") or "200")
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


class Trickler:
    """A receiver on 127.0.0.1 that reads the request, then answers ``200 OK`` one byte every
    ``gap`` seconds: about ``len(ANSWER) * gap`` seconds in all, each byte well within any
    per-read timeout."""

    ANSWER = b"HTTP/1.1 200 OK\r\nX-Slowly: " + b"z" * 40 + b"\r\nContent-Length: 0\r\n\r\n"

    def __init__(self, gap: float = 0.25) -> None:
        self.gap = gap
        self.stop = threading.Event()
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self.serve, daemon=True)]
        self.threads[0].start()

    @property
    def total(self) -> float:
        return len(self.ANSWER) * self.gap

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self.trickle, args=(connection,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                received += chunk
            self.requests += 1
            for index in range(len(self.ANSWER)):
                if self.stop.wait(self.gap):
                    return
                try:
                    connection.sendall(self.ANSWER[index : index + 1])
                except OSError:  # the sender gave up and closed
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def trickler():
    server = Trickler()
    yield server
    server.close()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def registered(database) -> list[Webhook]:
    with database.read() as session:
        return list(session.exec(select(Webhook)).all())


def deliveries(database) -> dict[int, WebhookDelivery]:
    with database.read() as session:
        return {delivery.webhook_id: delivery for delivery in session.exec(select(WebhookDelivery)).all()}


def register(client, url: str) -> dict:
    response = client.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 201, response.text
    return response.json()


def an_event(database, moment: datetime = MOMENT) -> None:
    with database.write() as session:
        record_event(session, "credits.adjusted", {"note": "guarded"}, at=moment)


def assert_refused_as_forbidden(response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "webhook_url_forbidden"
    assert problem["detail"] == guard.FORBIDDEN
    assert [error["field"] for error in problem["errors"]] == ["url"]


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "192.168.1.1", "172.16.0.1", "[fd00::1]", "[::1]",
        "[::ffff:127.0.0.1]", "0.0.0.0", "224.0.0.1",
        # and: shared address space, IPv6 link-local and multicast, reserved, IPv4 in NAT64 and
        # 6to4 disguise, the shorthand and decimal spellings of 127.0.0.1, a broadcast
        "100.64.0.1", "[fe80::1]", "[ff02::1]", "240.0.0.1", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::]",
        "127.1", "2130706433", "255.255.255.255",
    ],
)
def test_webhook_urls_to_loopback_private_link_local_and_unique_local_are_refused(database, client, connections, host):
    connections.clear()  # the client fixture's own warm-up is not the test's business
    response = client.post("/api/v1/webhooks", json={"url": f"http://{host}:8080/hooks", "events": ["*"]})

    assert_refused_as_forbidden(response)
    assert registered(database) == []
    assert connections == []  # refused without connecting anywhere


def test_a_name_is_refused_when_any_of_its_addresses_is_forbidden(database, client, resolver, connections):
    resolver.answers["mixed.example"] = [PUBLIC, "10.0.0.5"]
    resolver.answers["mapped.example"] = ["2001:db9::1", "::ffff:192.168.0.1"]
    resolver.answers["public.example"] = [PUBLIC, "2a00:1450:4001:80b::200e"]
    connections.clear()

    assert_refused_as_forbidden(client.post("/api/v1/webhooks", json={"url": "https://mixed.example/hooks", "events": ["*"]}))
    assert_refused_as_forbidden(client.post("/api/v1/webhooks", json={"url": "https://mapped.example/hooks", "events": ["*"]}))
    assert registered(database) == []
    created = register(client, "https://public.example/hooks")

    assert created["url"] == "https://public.example/hooks"
    assert [webhook.url for webhook in registered(database)] == ["https://public.example/hooks"]
    assert connections == []


def test_a_name_that_does_not_resolve_is_refused_in_the_same_words_as_a_forbidden_one(database, client, resolver, connections):
    resolver.answers["nowhere.example"] = []
    connections.clear()

    response = client.post("/api/v1/webhooks", json={"url": "https://nowhere.example/hooks", "events": ["*"]})

    assert_refused_as_forbidden(response)  # no oracle for which internal names exist
    assert registered(database) == []
    assert connections == []


@pytest.mark.parametrize(
    "url",
    ["https://user:secret@public.example/hooks", "https://user@public.example/hooks", "ftp://public.example/hooks", "file:///etc/passwd", "gopher://127.0.0.1:6379/_"],
)
def test_urls_with_credentials_or_another_scheme_are_refused(database, client, resolver, url):
    resolver.answers["public.example"] = [PUBLIC]

    response = client.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert [error["field"] for error in response.json()["errors"]] == ["url"]
    assert registered(database) == []


def test_an_allowed_network_lets_a_local_receiver_register(database, client, set_operator_setting, receiver):
    url = f"http://127.0.0.1:{receiver.port}/hooks"
    assert_refused_as_forbidden(client.post("/api/v1/webhooks", json={"url": url, "events": ["*"]}))

    set_operator_setting("webhook_allowed_networks", " 127.0.0.0/8 ,10.20.0.0/16")
    assert register(client, url)["url"] == url
    assert register(client, "http://10.20.3.4/hooks")["url"] == "http://10.20.3.4/hooks"
    # Only those networks: IPv6 loopback, another private network, the metadata service stay out.
    for other in ("http://[::1]/hooks", "http://10.21.0.1/hooks", "http://169.254.169.254/latest/meta-data/"):
        assert_refused_as_forbidden(client.post("/api/v1/webhooks", json={"url": other, "events": ["*"]}))
    set_operator_setting("webhook_allowed_networks", "::1/128")
    assert register(client, "http://[::1]:9/hooks")["url"] == "http://[::1]:9/hooks"
    assert len(registered(database)) == 3


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False), ("2001:4860:4860::8888", False), ("::ffff:8.8.8.8", False), ("64:ff9b::808:808", False),
        ("127.0.0.1", True), ("10.0.0.1", True), ("172.31.255.255", True), ("172.32.0.1", False), ("192.168.0.1", True),
        ("100.64.0.1", True), ("100.127.255.255", True), ("169.254.169.254", True), ("0.0.0.0", True), ("224.0.0.251", True),
        ("239.255.255.250", True), ("240.0.0.1", True), ("192.0.2.1", True), ("198.18.0.1", True),
        ("::1", True), ("::", True), ("fe80::1", True), ("fc00::1", True), ("fdff::1", True), ("ff02::1", True), ("fec0::1", True),
        ("::ffff:127.0.0.1", True), ("::ffff:10.0.0.1", True), ("::127.0.0.1", True), ("64:ff9b::a00:1", True), ("2002:a00:1::", True),
    ],
)
def test_the_guard_judges_each_address(address, forbidden):
    assert guard.is_forbidden(ipaddress.ip_address(address)) is forbidden


def test_allowed_networks_let_their_addresses_through_in_either_ip_form():
    # The settings refuse an entry that is not a network; the guard, should one reach it, allows
    # less rather than more.
    allowed = guard.allowed_networks("127.0.0.0/8, fd12::/16, nonsense, 300.1.1.1/8")

    assert [str(network) for network in allowed] == ["127.0.0.0/8", "fd12::/16"]
    assert not guard.is_forbidden(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not guard.is_forbidden(ipaddress.ip_address("::ffff:127.0.0.2"), allowed)
    assert not guard.is_forbidden(ipaddress.ip_address("fd12::5"), allowed)
    assert guard.is_forbidden(ipaddress.ip_address("::1"), allowed)
    assert guard.is_forbidden(ipaddress.ip_address("fd13::5"), allowed)


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


def test_a_name_that_rebinds_to_a_forbidden_address_after_registration_gets_nothing(database, client, resolver, receiver, connections):
    # Public when registered, 127.0.0.1 when the delivery goes out (DNS rebinding).
    resolver.answers["rebind.example"] = lambda lookup: [PUBLIC] if lookup == 1 else ["127.0.0.1"]
    webhook = register(client, f"http://rebind.example:{receiver.port}/200")
    an_event(database)
    fan_out(database, now=MOMENT)
    connections.clear()

    assert deliver_due(database, now=MOMENT) == WebhookRun(retried=1)

    delivery = deliveries(database)[int(webhook["id"])]
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("pending", 1, None, "forbidden address")
    assert receiver.requests == [] and connections == []


def test_a_delivery_connects_to_the_address_it_checked_and_sends_the_name_as_host(
    database, client, resolver, receiver, connections, set_operator_setting
):
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")
    # Two lookups answer 127.0.0.1 (registration, the delivery's check); any further one would
    # find nothing, so a delivery that resolved the name again to connect would fail.
    resolver.answers["receiver.example"] = lambda lookup: ["127.0.0.1"] if lookup <= 2 else []
    webhook = register(client, f"http://receiver.example:{receiver.port}/204")
    an_event(database)
    fan_out(database, now=MOMENT)
    connections.clear()

    assert deliver_due(database, now=MOMENT) == WebhookRun(delivered=1)

    assert resolver.lookups["receiver.example"] == 2
    assert receiver.requests == [{"path": "/204", "host": f"receiver.example:{receiver.port}"}]
    assert connections == [("127.0.0.1", receiver.port)]
    assert deliveries(database)[int(webhook["id"])].status == "delivered"


def test_a_trickling_receiver_is_cut_at_the_deadline(database, client, trickler, set_operator_setting):
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")
    set_operator_setting("webhook_deadline_seconds", "1")
    webhook = register(client, f"http://127.0.0.1:{trickler.port}/hooks")
    an_event(database)
    fan_out(database, now=MOMENT)

    started = time.monotonic()
    run = deliver_due(database, now=MOMENT)  # per-operation timeout: the default 10 s
    took = time.monotonic() - started

    assert trickler.total >= 15 and trickler.requests == 1
    assert 1 <= took < 2.5, took  # the 1 s deadline, not the trickle's 20-odd s
    assert run == WebhookRun(retried=1)
    delivery = deliveries(database)[int(webhook["id"])]
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == ("pending", 1, None, "unreachable")
    assert delivery.next_attempt_at == MOMENT + timedelta(seconds=10)


def test_delivery_errors_say_only_the_status_class_or_unreachable(database, client, resolver, receiver, set_operator_setting):
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    resolver.answers["gone.example"] = lambda lookup: ["127.0.0.1"] if lookup == 1 else []  # resolves no more
    urls = {
        "redirect": f"http://127.0.0.1:{receiver.port}/302",
        "not found": f"http://127.0.0.1:{receiver.port}/404",
        "unavailable": f"http://127.0.0.1:{receiver.port}/503",
        "refused": f"http://127.0.0.1:{closed}/hooks",
        "tls to plain http": f"https://127.0.0.1:{receiver.port}/200",
        "dns failure": f"http://gone.example:{receiver.port}/200",
    }
    ids = {name: int(register(client, url)["id"]) for name, url in urls.items()}
    an_event(database)
    fan_out(database, now=MOMENT)

    assert deliver_due(database, now=MOMENT) == WebhookRun(retried=6)

    recorded = {name: (deliveries(database)[ids[name]].last_error, deliveries(database)[ids[name]].last_status_code) for name in urls}
    assert recorded == {
        "redirect": ("HTTP 3xx", 302), "not found": ("HTTP 4xx", 404), "unavailable": ("HTTP 5xx", 503),
        "refused": ("unreachable", None), "tls to plain http": ("unreachable", None), "dns failure": ("unreachable", None),
    }
    (event,) = client.get("/api/v1/events").json()["items"]
    assert {delivery["last_error"] for delivery in event["deliveries"]} <= WORDS
    assert len(event["deliveries"]) == 6
    assert [request["path"] for request in receiver.requests if request["path"] != "/200"] == ["/302", "/404", "/503"]


def test_webhook_delivery_does_not_delay_the_mail_job(database, client, trickler, set_operator_setting):
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")
    set_operator_setting("webhook_deadline_seconds", "2")
    webhook = register(client, f"http://127.0.0.1:{trickler.port}/hooks")
    an_event(database)
    import licensing.documents.delivery  # noqa: F401 - the mail job's first import (PDF libraries) is not the point

    started = time.monotonic()
    outcomes = run_due(database, now=MOMENT, only={"webhooks", "deliveries"})
    took = time.monotonic() - started
    assert not worker.wait(database, timeout=0)  # the tick is over, the delivery is not

    assert {outcome.name: outcome.summary for outcome in outcomes} == {
        "deliveries": "0 mails sent, 0 to retry, 0 failed",
        "webhooks": "1 webhook deliveries queued; 1 due, sent in the background",
    }
    assert took < 1.5, took  # the tick did not wait for the 2 s delivery
    # While the receiver still trickles, the next tick's mail job runs at once, and the webhooks
    # job starts no second sender.
    started = time.monotonic()
    outcomes = run_due(database, now=MOMENT + timedelta(minutes=1), only={"webhooks", "deliveries"})
    assert time.monotonic() - started < 1.5
    assert [outcome.error for outcome in outcomes] == [None, None]
    assert {outcome.name for outcome in outcomes} == {"deliveries", "webhooks"}
    assert not worker.wait(database, timeout=0)  # the sender is still at work

    assert worker.wait(database, timeout=10)
    took = time.monotonic() - started
    assert took < trickler.total / 2
    assert trickler.requests == 1
    delivery = deliveries(database)[int(webhook["id"])]
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "unreachable")
