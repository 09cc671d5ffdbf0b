"""Downloading a URL someone else chose (import by URL, RESO feeds), safely: the server never
becomes a way into its own network (SSRF).

- http and https only, on ports 80 and 443, without credentials in the URL;
- every address the name resolves to is checked against the IANA special-purpose registries
  (loopback, private, link-local, CGNAT, multicast, reserved, documentation, benchmarking,
  IPv4-mapped/translated IPv6, 0.0.0.0 ...): one refused address refuses the URL;
- the connection goes to the address that was checked (pinned: no second lookup, so no DNS
  rebinding gap); TLS still verifies the certificate against the host name;
- redirects are followed by hand, at most three, each one checked again from the start;
- connect 5 s, each read 10 s, the whole download 30 s; the body is streamed and cut at the
  byte limit (a Content-Length over it is refused before a byte is read).

`allowed` lists networks reachable although special-purpose, on any port: FETCH_ALLOWED_NETWORKS,
for tests only (a loopback server)."""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from pipeline.errors import ImageError

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 3
USER_AGENT = "imagepipe-fetch/1 (+https://github.com/imagepipe)"

# IANA IPv4 and IPv6 Special-Purpose Address Registries, with multicast and the reserved blocks.
SPECIAL: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24",
        "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
        "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip


class FetchError(ImageError):
    code = "fetch_http_error"
    http_status = 502


class FetchRefusedAddress(FetchError):
    code = "fetch_refused_address"
    http_status = 400


class FetchTimeout(FetchError):
    code = "fetch_timeout"
    http_status = 504


class FetchTooLarge(FetchError):
    code = "fetch_too_large"
    http_status = 413


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    connect_s: float = 5.0
    read_s: float = 10.0
    total_s: float = 30.0
    max_redirects: int = MAX_REDIRECTS


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None
    url: str  # after redirects
    address: str  # the address the bytes came from


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def refusal(address: Address) -> str | None:
    """Why an address may not be fetched from, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"{address} is an IPv4-mapped address"
    for net in SPECIAL:
        if address.version == net.version and address in net:
            return f"{address} is in the special-purpose block {net}"
    if not address.is_global:
        return f"{address} is not a global address"
    return None


def check_url(url: str, allowed: tuple[Network, ...] = (), *, names_on_any_port: bool = False) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a URL we may try; FetchRefusedAddress otherwise.
    The address itself is checked once resolved. A port other than 80/443 is refused here unless
    the host is an allowed address literal, or (`names_on_any_port`, while fetching) a name whose
    addresses pick_address then checks."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefusedAddress(f"not a URL: {url[:200]!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in PORTS:
        raise FetchRefusedAddress(f"only http and https URLs are fetched, not {scheme or 'a relative URL'}")
    if not parts.hostname:
        raise FetchRefusedAddress("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise FetchRefusedAddress("URLs with credentials are not fetched")
    host = parts.hostname
    port = port or PORTS[scheme]
    literal = _literal(host)
    named_elsewhere = names_on_any_port and literal is None  # checked once resolved (pick_address)
    if port not in (80, 443) and not (literal is not None and _within(literal, allowed)) and not named_elsewhere:
        raise FetchRefusedAddress(f"only ports 80 and 443 are fetched, not {port}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path


def _literal(host: str) -> Address | None:
    """The host as an address when it is one (not a name)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _within(address: Address, nets: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in nets)


def pick_address(host: str, port: int, allowed: tuple[Network, ...], resolve: Resolver) -> str:
    """The address to connect to: every address the host resolves to must pass (one that does
    not refuses the host), and the first is used."""
    literal = _literal(host)
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from None
    if not candidates:
        raise FetchError(f"{host} has no address")
    for text in candidates:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if _within(address, allowed):
            continue
        why = refusal(address)
        if why:
            # The address stays out of the message (the client reads it: no map of internal names).
            log.info("fetch refused: %s resolves to %s", host, why)
            raise FetchRefusedAddress(f"{host} resolves to a refused address (not a public one)")
        if port not in (80, 443):
            raise FetchRefusedAddress(f"only ports 80 and 443 are fetched, not {port}")
    return candidates[0]


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a checked address, whatever the host name says."""

    def __init__(self, host: str, port: int, address: str, connect_s: float, read_s: float):
        super().__init__(host, port, timeout=connect_s)
        self._address, self._read_s = address, read_s

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), timeout=self.timeout)
        self.sock.settimeout(self._read_s)


class _PinnedTLS(_Pinned):
    _context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def fetch(
    url: str,
    limits: Limits,
    *,
    allowed: tuple[Network, ...] = (),
    resolve: Resolver = system_resolver,
    accept: str = "image/*",
) -> Fetched:
    """The body of `url`, safely (see the module's text); FetchError subclasses on refusal."""
    deadline = time.monotonic() + limits.total_s
    for _hop in range(limits.max_redirects + 1):
        scheme, host, port, path = check_url(url, allowed, names_on_any_port=True)
        address = pick_address(host, port, allowed, resolve)
        cls = _PinnedTLS if scheme == "https" else _Pinned
        conn = cls(host, port, address, min(limits.connect_s, _left(deadline)), limits.read_s)
        try:
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": accept})
                response = conn.getresponse()
            except TimeoutError:
                raise FetchTimeout(f"{host} did not answer in time") from None
            except (OSError, http.client.HTTPException) as exc:
                raise FetchError(f"could not fetch from {host}: {exc}") from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"{host} answered {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise FetchError(f"{host} answered HTTP {response.status} {response.reason}")
            data = _read(response, limits, deadline, conn.sock)
            return Fetched(data, response.getheader("Content-Type"), url, address)
        finally:
            conn.close()
    raise FetchError(f"more than {limits.max_redirects} redirects")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchTimeout("the download took longer than its time limit")
    return left


def _read(response: http.client.HTTPResponse, limits: Limits, deadline: float, sock: socket.socket | None) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchTooLarge(f"the file is {int(declared)} bytes, over the limit of {limits.max_bytes}")
    chunks, total = [], 0
    while True:
        left = _left(deadline)
        if sock is not None:
            sock.settimeout(min(limits.read_s, left))
        try:
            chunk = response.read1(64 * 1024)
        except TimeoutError:
            raise FetchTimeout("the server stopped sending") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"the download broke off: {exc}") from None
        if not chunk:
            break
        total += len(chunk)
        if total > limits.max_bytes:
            raise FetchTooLarge(f"the file is larger than the limit of {limits.max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
