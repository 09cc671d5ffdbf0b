"""The SSRF-safe fetcher (services/infra/fetch.py) against real sockets: every special-purpose
address class refused (literal, by DNS, after a redirect), the connection pinned to the address
checked, ports, schemes, redirects, timeouts and the byte limit. The photo server listens on
127.0.0.2, reachable only with the tests' allow-list."""

from __future__ import annotations

import time

import pytest

from services.infra import fetch
from tests.conftest import corpus
from tests.support.photoserver import PhotoServer

PHOTO = "nikon-p6000_small_640x480.jpg"
ALLOWED = fetch.networks(["127.0.0.2/32"])
LIMITS = fetch.Limits(max_bytes=5 * 1024 * 1024)


@pytest.fixture(scope="module")
def server():
    s = PhotoServer("127.0.0.2")
    yield s
    s.close()


@pytest.fixture(scope="module")
def loopback():
    """A server on 127.0.0.1: it must never be reached."""
    s = PhotoServer("127.0.0.1")
    yield s
    s.close()


REFUSED = [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "198.18.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "192.0.0.8", "192.88.99.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:8.8.8.8", "64:ff9b::7f00:1", "2001:db8::1", "2002:7f00:1::1", "2001::1", "100::1",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_every_special_purpose_address_is_refused(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(fetch.FetchRefusedAddress) as refused:
        fetch.fetch(f"http://{host}/photo.jpg", LIMITS)
    assert refused.value.code == "fetch_refused_address"


def test_public_addresses_pass_the_check():
    for address in ("93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "151.101.1.69"):
        import ipaddress

        assert fetch.refusal(ipaddress.ip_address(address)) is None, address


@pytest.mark.parametrize(
    "answers", [["10.0.0.5"], ["93.184.215.14", "192.168.0.7"], ["::1"], ["169.254.169.254"], ["::ffff:192.168.0.1"]]
)
def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(answers):
    asked = []

    def resolve(host, port):
        asked.append(host)
        return answers

    with pytest.raises(fetch.FetchRefusedAddress, match="resolves to a refused address"):
        fetch.fetch("https://photos.example.com/front.jpg", LIMITS, resolve=resolve)
    assert asked == ["photos.example.com"]


def test_localhost_by_name_is_refused():
    with pytest.raises(fetch.FetchRefusedAddress):
        fetch.fetch("http://localhost/x.jpg", LIMITS)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/a.jpg", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://user:pw@example.com/a.jpg", "credentials"),
        ("http://93.184.215.14:8080/a.jpg", "ports 80 and 443"),
        ("https://93.184.215.14:22/a.jpg", "ports 80 and 443"),
        ("http:///a.jpg", "no host"),
    ],
)
def test_schemes_ports_and_credentials_are_refused(url, says):
    with pytest.raises(fetch.FetchRefusedAddress, match=says):
        fetch.fetch(url, LIMITS)


def test_a_name_on_another_port_is_refused_once_resolved():
    with pytest.raises(fetch.FetchRefusedAddress, match="ports 80 and 443"):
        fetch.fetch("http://photos.example.com:8443/a.jpg", LIMITS, resolve=lambda h, p: ["93.184.215.14"])


def test_the_allow_listed_loopback_server_serves_the_photo(server):
    got = fetch.fetch(f"{server.base}/photos/{PHOTO}", LIMITS, allowed=ALLOWED)
    assert got.data == corpus("photos", PHOTO).read_bytes() and got.address == "127.0.0.2"
    with pytest.raises(fetch.FetchRefusedAddress):  # without the allow-list: refused
        fetch.fetch(f"{server.base}/photos/{PHOTO}", LIMITS)


def test_a_redirect_to_loopback_is_refused_and_never_followed(server, loopback):
    seen = len(loopback.requests)
    target = f"{loopback.base}/photos/{PHOTO}"
    with pytest.raises(fetch.FetchRefusedAddress):
        fetch.fetch(f"{server.base}/redirect?to={target}", LIMITS, allowed=ALLOWED)
    with pytest.raises(fetch.FetchRefusedAddress):  # the metadata service, by a redirect
        fetch.fetch(f"{server.base}/redirect?to=http://169.254.169.254/latest/meta-data/", LIMITS, allowed=ALLOWED)
    assert len(loopback.requests) == seen


def test_redirects_are_followed_up_to_three(server):
    photo = f"{server.base}/photos/{PHOTO}"
    got = fetch.fetch(f"{server.base}/redirect?to={photo}&hops=3", LIMITS, allowed=ALLOWED)
    assert got.data == corpus("photos", PHOTO).read_bytes() and got.url == photo
    with pytest.raises(fetch.FetchError, match="more than 3 redirects") as error:
        fetch.fetch(f"{server.base}/redirect?to={photo}&hops=4", LIMITS, allowed=ALLOWED)
    assert error.value.code == "fetch_http_error"


def test_the_connection_goes_to_the_address_checked(server, loopback):
    """DNS rebinding: the name answers an allowed address when checked and loopback afterwards;
    the fetcher resolves once and connects to what it checked."""
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    calls = []

    def rebinding(host, port):
        calls.append(host)
        return next(answers)

    seen = len(loopback.requests)
    port = server.base.rsplit(":", 1)[1]
    got = fetch.fetch(f"http://rebind.test:{port}/photos/{PHOTO}", LIMITS, allowed=ALLOWED, resolve=rebinding)
    assert got.address == "127.0.0.2" and calls == ["rebind.test"] and len(loopback.requests) == seen


def test_http_errors_timeouts_and_the_byte_limit(server):
    with pytest.raises(fetch.FetchError, match="HTTP 404") as error:
        fetch.fetch(f"{server.base}/status/404", LIMITS, allowed=ALLOWED)
    assert error.value.code == "fetch_http_error"

    with pytest.raises(fetch.FetchTooLarge) as error:  # refused on its Content-Length, nothing read
        fetch.fetch(f"{server.base}/huge", LIMITS, allowed=ALLOWED)
    assert error.value.code == "fetch_too_large"
    with pytest.raises(fetch.FetchTooLarge):  # no length: cut at the limit while streaming
        fetch.fetch(f"{server.base}/endless", fetch.Limits(max_bytes=1_000_000), allowed=ALLOWED)

    started = time.monotonic()
    with pytest.raises(fetch.FetchTimeout) as error:  # a read that waits too long
        fetch.fetch(f"{server.base}/slow?s=3", fetch.Limits(max_bytes=10**6, read_s=0.5), allowed=ALLOWED)
    assert error.value.code == "fetch_timeout" and time.monotonic() - started < 2.5
    started = time.monotonic()
    with pytest.raises(fetch.FetchTimeout):  # every read is quick, the whole is too long
        fetch.fetch(f"{server.base}/drip", fetch.Limits(max_bytes=10**6, read_s=1, total_s=1.0), allowed=ALLOWED)
    assert time.monotonic() - started < 2.5


def test_default_limits_are_the_issue_s():
    limits = fetch.Limits(max_bytes=1)
    assert (limits.connect_s, limits.read_s, limits.total_s, limits.max_redirects) == (5, 10, 30, 3)
