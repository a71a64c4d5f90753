"""The connection a webhook delivery goes out on: to checked addresses only, within a deadline.

httpx's timeouts bound each network operation, not a request: a receiver that sends one byte
every 2 s never trips a 10 s read timeout and held a delivery 95 s. Here every operation of a
delivery (resolving the name, connecting, the TLS handshake, each write and each read) gets at
most what is left of the delivery's wall-clock deadline (``webhook_deadline_seconds``), and
none starts once it has passed: a delivery ends by its deadline (plus a few milliseconds).

The name is resolved once per connection, by ``PinnedBackend.connect_tcp``, the addresses are
checked by the guard, and the socket connects to one of those very addresses, never to the
name (no second lookup that DNS rebinding could answer differently). The request keeps the
URL's name in its ``Host`` header and the TLS handshake uses it for SNI and for the
certificate's check, so HTTPS receivers behind shared hosting work as before.

Environment proxies (``HTTP_PROXY``) are not used for webhooks: a proxy resolves names itself,
and the guard could no longer tell where a delivery goes.
"""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from urllib.parse import unquote

import httpcore
import httpx

from licensing.webhooks.guard import Network, checked_addresses


def seconds(duration: timedelta | None):
    """``duration`` in httpcore's and the socket's unit (seconds; None: no limit)."""
    return None if duration is None else duration.total_seconds()


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses the guard allows, and
    holding each operation to the current delivery's ``deadline`` (``time.monotonic_ns``, None
    between deliveries). Durations are ``timedelta`` here; httpcore's ``timeout`` arguments are
    its own (seconds), converted by ``seconds`` only where they meet it."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self.allowed = allowed
        self.deadline: int | None = None
        self._backend = httpcore.SyncBackend()

    def remaining(self, timeout, error: type[Exception]) -> timedelta | None:
        """The smaller of httpcore's ``timeout`` (seconds; None: none) and what is left of the
        deadline; ``error`` once the deadline has passed."""
        bounds = [] if timeout is None else [timedelta(seconds=timeout)]
        if self.deadline is not None:
            left = timedelta(microseconds=(self.deadline - time.monotonic_ns()) // 1000)
            if left <= timedelta(0):
                raise error("the delivery's deadline has passed")
            bounds.append(left)
        return min(bounds, default=None)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None) -> httpcore.NetworkStream:
        addresses = checked_addresses(host, port, allowed=self.allowed, timeout=self.remaining(timeout, httpcore.ConnectTimeout))
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._backend.connect_tcp(
                    str(address), port, timeout=seconds(self.remaining(timeout, httpcore.ConnectTimeout)),
                    local_address=local_address, socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return DeadlineStream(stream, self)
        raise failure or httpcore.ConnectError("no address")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover - never a webhook
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    def sleep(self, pause) -> None:
        """httpcore's pause between retries (none here: ``retries=0``), cut to the deadline."""
        time.sleep(seconds(self.remaining(pause, httpcore.PoolTimeout)))


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, backend: PinnedBackend) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout=None) -> bytes:
        return self._stream.read(max_bytes, seconds(self._backend.remaining(timeout, httpcore.ReadTimeout)))

    def write(self, buffer: bytes, timeout=None) -> None:
        self._stream.write(buffer, seconds(self._backend.remaining(timeout, httpcore.WriteTimeout)))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, seconds(self._backend.remaining(timeout, httpcore.ConnectTimeout)))
        return DeadlineStream(stream, self._backend)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class Sender:
    """POSTs deliveries, one at a time, each within ``deadline`` (each network operation within
    ``timeout`` as well); connections may be reused by the next delivery to the same receiver.
    Use as a context manager."""

    def __init__(self, *, allowed: tuple[Network, ...], deadline: timedelta, timeout: timedelta, headers: dict[str, str] | None = None) -> None:
        self.deadline = deadline
        self.timeout = min(timeout, deadline)
        self.headers = dict(headers or {})
        self.backend = PinnedBackend(allowed)
        self.pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=self.backend, retries=0, keepalive_expiry=5,
        )

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The status the receiver answered (its body is not read). Raises the guard's
        ``ForbiddenAddress`` or ``Unresolvable``, or an httpcore error (a timeout when the
        deadline passes)."""
        self.backend.deadline = time.monotonic_ns() + self.deadline // timedelta(microseconds=1) * 1000
        try:
            parsed = httpx.URL(url)
            target = httpcore.URL(scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path or b"/")
            sent = [(b"Host", parsed.netloc)]
            if parsed.userinfo:  # registered before credentials in URLs were refused
                user, _, password = parsed.userinfo.decode("ascii").partition(":")
                credentials = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
                sent.append((b"Authorization", f"Basic {credentials}".encode("ascii")))
            sent += [(name.encode(), value.encode()) for name, value in (self.headers | headers).items()]
            timeouts = dict.fromkeys(("connect", "read", "write", "pool"), seconds(self.timeout))
            with self.pool.stream("POST", target, headers=sent, content=body, extensions={"timeout": timeouts}) as response:
                return response.status
        finally:
            self.backend.deadline = None
