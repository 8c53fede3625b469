"""Scenarios 26-27: user-supplied image URLs never reach the bot's own network, and downloads are
cut at a byte cap and a time cap. A sink on 127.0.0.1 proves no connection was made."""

from __future__ import annotations

import asyncio
import datetime
import io
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image

from bot.domain.errors import DownloadRefused
from bot.net.guard import SafeFetcher
from bot.net.httpclient import open_http_client
from tests.fakes.rawhttp import RawServer, endless, huge_length, respond, trickle

PRIVATE = "That image link points to a private or local address, which is not allowed."
# httpx's URL parser already rejects some spellings (leading-zero octets) as invalid.
INVALID = "That image link is not a valid URL."


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 255)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The bot's own client: the guard runs on the process's shared client."""
    async with open_http_client() as client:
        yield client


@pytest.fixture
async def sink() -> AsyncIterator[RawServer]:
    server = await RawServer(respond("200 OK", _png(), {"Content-Type": "image/png"})).start()
    yield server
    await server.aclose()


class FakeDNS:
    """Names a test controls; each lookup is recorded."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self._answers.get(host)
        if not answers:
            raise OSError("no such host")
        return answers[min(len(self.lookups), len(answers)) - 1]


def only_address_check(
    http: httpx.AsyncClient, sink: RawServer, dns: FakeDNS | None = None
) -> SafeFetcher:
    """Scheme and port rules relaxed for the sink, so the address check alone must refuse."""
    return SafeFetcher(http, allow_http=True, extra_ports={sink.port}, resolver=dns)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "0x7f.1",
        "017700000001",
        "127.0.0.1.",
        "0.0.0.0",
        "0",
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",  # IPv4-compatible
        "[2002:7f00:1::]",  # 6to4 of loopback
        "[::]",
        "localhost",
    ],
)
async def test_s26_loopback_spellings_are_refused(
    sink: RawServer, host: str, http: httpx.AsyncClient
) -> None:
    fetcher = only_address_check(http, sink)
    with pytest.raises(DownloadRefused) as caught:
        await fetcher.fetch(f"http://{host}:{sink.port}/cat.png")
    assert str(caught.value) in (PRIVATE, INVALID)
    assert sink.connections == 0


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "192.0.0.8",
        "198.18.0.1",
        "224.0.0.1",  # multicast
        "255.255.255.255",
        "240.0.0.1",
        "[fd00::1]",  # unique local
        "[fc00::1]",
        "[fe80::1]",  # link-local
        "[ff02::1]",
        "[::ffff:10.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[2002:a00:1::]",  # 6to4 of 10.0.0.1
        "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo whose client is 10.0.0.1
        "[fe80::1%25eth0]",  # with a zone
        "0xa9fea9fe",  # 169.254.169.254 in hex
        "2852039166",  # and in decimal
    ],
)
async def test_s26_private_and_special_addresses_are_refused(
    sink: RawServer, host: str, http: httpx.AsyncClient
) -> None:
    fetcher = only_address_check(http, sink)
    with pytest.raises(DownloadRefused) as caught:
        await fetcher.fetch(f"http://{host}:{sink.port}/cat.png")
    assert str(caught.value) == PRIVATE
    assert sink.connections == 0


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["93.184.215.14", "127.0.0.1"],  # one bad address among good ones is enough
        ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::1"],
        ["::ffff:127.0.0.1"],
    ],
)
async def test_s26_names_resolving_to_private_addresses_are_refused(
    sink: RawServer, answers: list[str], http: httpx.AsyncClient
) -> None:
    dns = FakeDNS({"images.example": [answers]})
    fetcher = only_address_check(http, sink, dns)
    with pytest.raises(DownloadRefused) as caught:
        await fetcher.fetch(f"http://images.example:{sink.port}/cat.png")
    assert str(caught.value) == PRIVATE
    assert sink.connections == 0
    assert dns.lookups == ["images.example"]


@pytest.mark.parametrize(
    "url",
    [
        "http://{sink}/cat.png",  # plain http
        "ftp://{sink}/cat.png",
        "file:///etc/passwd",
        "gopher://{sink}/",
        "data:image/png;base64,iVBORw0KGgo=",
        "//{sink}/cat.png",
        "https:///cat.png",
        "not a url",
    ],
)
async def test_s26_other_schemes_are_refused(
    sink: RawServer, url: str, http: httpx.AsyncClient
) -> None:
    fetcher = SafeFetcher(
        http, extra_ports={sink.port}, trusted_endpoints={("127.0.0.1", sink.port)}
    )
    with pytest.raises(DownloadRefused):
        await fetcher.fetch(url.format(sink=f"127.0.0.1:{sink.port}"))
    assert sink.connections == 0


async def test_s26_other_ports_are_refused(sink: RawServer, http: httpx.AsyncClient) -> None:
    # The address is trusted here, so only the port rule can refuse.
    fetcher = SafeFetcher(http, allow_http=True, trusted_endpoints={("127.0.0.1", sink.port)})
    with pytest.raises(DownloadRefused) as caught:
        await fetcher.fetch(f"http://127.0.0.1:{sink.port}/cat.png")
    assert str(caught.value) == "That image link uses a port that is not allowed."
    assert sink.connections == 0


async def test_s26_credentials_in_the_link_are_refused(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    fetcher = SafeFetcher(
        http, allow_http=True, extra_ports={sink.port}, trusted_endpoints={("127.0.0.1", sink.port)}
    )
    with pytest.raises(DownloadRefused):
        await fetcher.fetch(f"http://user:pw@127.0.0.1:{sink.port}/cat.png")
    assert sink.connections == 0


async def test_s26_the_default_fetcher_refuses_a_local_fake(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(DownloadRefused):
        await SafeFetcher(http).fetch(f"http://127.0.0.1:{sink.port}/cat.png")
    with pytest.raises(DownloadRefused):
        await SafeFetcher(http).fetch(f"https://127.0.0.1:{sink.port}/cat.png")
    assert sink.connections == 0


async def test_s26_a_trusted_local_fake_is_downloaded(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    fetcher = SafeFetcher(
        http, allow_http=True, extra_ports={sink.port}, trusted_endpoints={("127.0.0.1", sink.port)}
    )
    assert await fetcher.fetch(f"http://127.0.0.1:{sink.port}/cat.png") == _png()
    assert sink.connections == 1


# Redirects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{sink}/cat.png",
        "http://2130706433:{sink}/cat.png",
        "http://[::ffff:127.0.0.1]:{sink}/cat.png",
        "http://inside.example:{sink}/cat.png",
        "http://localhost:{sink}/cat.png",
        "ftp://127.0.0.1:{sink}/cat.png",
        "http://127.0.0.1:{sink}@127.0.0.1:{sink}/",
    ],
)
async def test_s26_redirects_to_refused_places_are_refused(
    sink: RawServer, target: str, http: httpx.AsyncClient
) -> None:
    location = target.format(sink=sink.port)
    redirector = await RawServer(respond("302 Found", headers={"Location": location})).start()
    try:
        dns = FakeDNS({"inside.example": [["10.0.0.7"]]})
        fetcher = SafeFetcher(
            http,
            allow_http=True,
            extra_ports={sink.port, redirector.port},
            trusted_endpoints={("127.0.0.1", redirector.port)},
            resolver=dns,
        )
        with pytest.raises(DownloadRefused):
            await fetcher.fetch(f"http://127.0.0.1:{redirector.port}/start")
        assert redirector.connections == 1
        assert sink.connections == 0
    finally:
        await redirector.aclose()


async def test_s26_a_good_redirect_is_followed_and_headers_stay_home(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    redirector = await RawServer(
        respond("301 Moved", headers={"Location": f"http://images.example:{sink.port}/cat.png"})
    ).start()
    try:
        dns = FakeDNS({"images.example": [["127.0.0.1"]]})
        fetcher = SafeFetcher(
            http,
            allow_http=True,
            extra_ports={sink.port, redirector.port},
            trusted_endpoints={("127.0.0.1", redirector.port), ("127.0.0.1", sink.port)},
            resolver=dns,
        )
        data = await fetcher.fetch(
            f"http://127.0.0.1:{redirector.port}/start", headers={"Authorization": "Bearer xoxb-1"}
        )
        assert data == _png()
        assert b"authorization" in redirector.requests[0].lower()  # names are case-insensitive
        assert b"authorization" not in sink.requests[0].lower()
    finally:
        await redirector.aclose()


async def test_s26_redirect_loops_stop_after_a_few_hops(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    redirector = await RawServer(respond("302 Found", headers={"Location": "/again"})).start()
    try:
        fetcher = SafeFetcher(
            http,
            allow_http=True,
            extra_ports={redirector.port},
            trusted_endpoints={("127.0.0.1", redirector.port)},
            max_redirects=3,
        )
        with pytest.raises(DownloadRefused) as caught:
            await fetcher.fetch(f"http://127.0.0.1:{redirector.port}/start")
        assert "redirected too many times" in str(caught.value)
        assert len(redirector.requests) == 4
    finally:
        await redirector.aclose()


async def test_s26_the_host_is_resolved_once_and_the_connection_pinned(
    sink: RawServer, http: httpx.AsyncClient
) -> None:
    # A rebinding name: the first answer passes the check, any later one points inside.
    dns = FakeDNS({"rebind.example": [["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]]})
    fetcher = SafeFetcher(
        http,
        allow_http=True,
        extra_ports={sink.port},
        trusted_endpoints={("127.0.0.1", sink.port)},
        resolver=dns,
    )
    assert await fetcher.fetch(f"http://rebind.example:{sink.port}/cat.png") == _png()
    assert dns.lookups == ["rebind.example"]
    assert sink.connections == 1


async def test_s26_an_error_status_is_a_clear_refusal(http: httpx.AsyncClient) -> None:
    server = await RawServer(respond("404 Not Found", b"nope")).start()
    try:
        fetcher = SafeFetcher(
            http,
            allow_http=True,
            extra_ports={server.port},
            trusted_endpoints={("127.0.0.1", server.port)},
        )
        with pytest.raises(DownloadRefused) as caught:
            await fetcher.fetch(f"http://127.0.0.1:{server.port}/missing.png")
        assert str(caught.value) == "That image could not be downloaded (the server answered 404)."
    finally:
        await server.aclose()


# Scenario 27: byte and time caps -----------------------------------------------------------------


async def _fetch_from(http: httpx.AsyncClient, server: RawServer, **options: object) -> bytes:
    fetcher = SafeFetcher(
        http,
        allow_http=True,
        extra_ports={server.port},
        trusted_endpoints={("127.0.0.1", server.port)},
        **options,  # type: ignore[arg-type]
    )
    return await fetcher.fetch(f"http://127.0.0.1:{server.port}/img.png")


async def test_s27_a_huge_content_length_is_refused_at_once(http: httpx.AsyncClient) -> None:
    server = await RawServer(huge_length(50 * 1024**3)).start()
    try:
        with pytest.raises(DownloadRefused) as caught:
            # The time cap is far away: only the declared length can end this.
            await _fetch_from(http, server, max_bytes=1024 * 1024, timeout=60.0)
        assert str(caught.value) == "That image is larger than the 1 MB limit."
    finally:
        await server.aclose()


async def test_s27_an_endless_stream_is_cut_at_the_byte_cap(http: httpx.AsyncClient) -> None:
    server = await RawServer(endless).start()
    try:
        with pytest.raises(DownloadRefused) as caught:
            await _fetch_from(http, server, max_bytes=2 * 1024 * 1024, timeout=60.0)
        assert str(caught.value) == "That image is larger than the 2 MB limit."
    finally:
        await server.aclose()


async def test_s27_a_trickle_is_cut_at_the_time_cap(http: httpx.AsyncClient) -> None:
    # A byte every 50 ms never trips a per-read timeout; only the total cap can end it.
    server = await RawServer(trickle(0.05)).start()
    try:
        with pytest.raises(DownloadRefused) as caught:
            await _fetch_from(http, server, timeout=0.5)
        assert str(caught.value) == "That image took too long to download."
        assert server.connections == 1
    finally:
        await server.aclose()


# TLS: the guard asks the vetted address, and the certificate is still checked for the link's host.


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize(("served_as", "ok"), [("images.example", True), ("other.example", False)])
async def test_s26_https_links_are_checked_against_the_links_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served_as: str, ok: bool
) -> None:
    cert_file, key_file = _certificate(tmp_path, served_as)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # httpx's trust_env: the one CA trusted
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    hello: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: hello.append(name)  # type: ignore[assignment,misc,return-value]
    png = _png()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hosts.append(head)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(png)
        )
        writer.write(png)
        await writer.drain()
        writer.close()

    hosts: list[bytes] = []
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    dns = FakeDNS({"images.example": [["127.0.0.1"]]})
    async with server, open_http_client() as http:
        fetcher = SafeFetcher(
            http, extra_ports={port}, trusted_endpoints={("127.0.0.1", port)}, resolver=dns
        )
        url = f"https://images.example:{port}/cat.png"
        if ok:
            assert await fetcher.fetch(url) == png
            assert hosts[0].lower().count(f"host: images.example:{port}".encode()) == 1
        else:
            with pytest.raises(DownloadRefused):
                await fetcher.fetch(url)
            assert hosts == []  # the handshake failed: nothing was asked
    assert hello[:1] == ["images.example"]
