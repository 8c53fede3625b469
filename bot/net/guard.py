"""Fetching a user-supplied image URL without letting it reach the bot's own network (SSRF).

Every hop: https only, default port only, the host resolved once and every address it resolves to
checked, the request sent to a checked address (no second lookup, so no DNS rebinding), few
redirects, a byte cap and a total time cap. Refusals raise DownloadRefused with a message fit for
the user; the operator's detail goes to the log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping

import httpx

from bot.domain.errors import DownloadRefused
from bot.net.httpclient import read_capped

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 3
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"https": 443, "http": 80}

# Networks no user link may reach, beyond what ``ipaddress`` flags as private or reserved.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally, with the lenient IPv4 spellings resolvers accept
    (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``), or None for a name."""
    host = host.strip("[]").rstrip(".").lower()
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    parts = host.split(".")
    if not host or len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part[1:], 8))
            elif part.isdigit():
                numbers.append(int(part))
            else:
                return None
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address may not be fetched from, or None where it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner is not None:
                return f"{inner} (inside {address})"
        if address.scope_id:
            return "scoped IPv6 address"
    for network in _BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return f"address in {network}"
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return "non-public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        server, client = address.teredo
        return client if blocked_reason(server) is None else server
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_REFUSED = "That image link is not allowed."
_PRIVATE = "That image link points to a private or local address, which is not allowed."


class SafeFetcher:
    """Downloads user-supplied URLs under the rules in the module docstring, on the process's
    shared client: each hop is vetted here, then asked of a checked address directly (the URL
    names the address; Host and TLS's server name keep the link's host).

    ``allow_http``, ``extra_ports`` and ``trusted_endpoints`` exist for tests against local fakes
    and are off by default; production code never sets them.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_bytes: int = MAX_BYTES,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver | None = None,
        allow_http: bool = False,
        extra_ports: Iterable[int] = (),
        trusted_endpoints: Iterable[tuple[str, int]] = (),
    ) -> None:
        self._http = http
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_redirects = max_redirects
        self._resolve = resolver or system_resolver
        self._schemes = {"https", "http"} if allow_http else {"https"}
        self._ports = {_DEFAULT_PORTS[s] for s in self._schemes} | set(extra_ports)
        self._trusted = {(str(ipaddress.ip_address(a)), int(p)) for a, p in trusted_endpoints}

    async def fetch(self, url: str, *, headers: Mapping[str, str] | None = None) -> bytes:
        """The body behind ``url``, or DownloadRefused with a message for the user."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, dict(headers or {}))
        except TimeoutError:
            log.info("input image from %s: cut at the %.0f s time cap", _origin(url), self.timeout)
            raise DownloadRefused("That image took too long to download.") from None

    async def _fetch(self, url: str, headers: dict[str, str]) -> bytes:
        current = self._parse(url)
        first_origin = _origin_of(current)
        for _hop in range(self.max_redirects + 1):
            port = current.port or _DEFAULT_PORTS[current.scheme]
            addresses = await self._vet(current.host, port)
            if _origin_of(current) != first_origin:
                headers = {}  # credentials meant for one host never follow to another
            location = await self._request(current, addresses, headers)
            if isinstance(location, bytes):
                return location
            current = self._parse(str(current.join(location)))
        log.info("input image from %s: more than %d redirects", first_origin, self.max_redirects)
        raise DownloadRefused("That image link redirected too many times.")

    def _parse(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise DownloadRefused("That image link is not a valid URL.") from None
        if parsed.scheme not in self._schemes:
            raise DownloadRefused("Only https:// image links can be used.")
        if not parsed.host:
            raise DownloadRefused("That image link is not a valid URL.")
        if parsed.userinfo:
            raise DownloadRefused("Image links with a user name or password are not allowed.")
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        if port not in self._ports:
            raise DownloadRefused("That image link uses a port that is not allowed.")
        return parsed

    async def _vet(self, host: str, port: int) -> list[str]:
        """Resolve once and check every address; return them for pinning."""
        literal = parse_ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                resolved = await self._resolve(host.rstrip("."), port)
            except (OSError, UnicodeError):
                log.info("input image host %s does not resolve", host)
                raise DownloadRefused("That image link's server could not be found.") from None
            addresses = []
            for text in resolved:
                try:
                    addresses.append(ipaddress.ip_address(text))
                except ValueError:
                    raise DownloadRefused(_REFUSED) from None
            if not addresses:
                raise DownloadRefused("That image link's server could not be found.")
        for address in addresses:
            if (str(address), port) in self._trusted:
                continue
            reason = blocked_reason(address)
            if reason is not None:
                log.warning("input image host %s refused: %s is a %s", host, address, reason)
                raise DownloadRefused(_PRIVATE)
        return [str(address) for address in addresses]

    async def _request(
        self, url: httpx.URL, addresses: list[str], headers: dict[str, str]
    ) -> bytes | str:
        """The body of a 200, or the Location of a redirect, from the first vetted address that
        takes the connection."""
        host = url.raw_host.decode("ascii")
        request_headers = {
            "Host": url.netloc.decode("ascii"),
            "User-Agent": "imagine-bot (input image)",
            "Accept": "image/png, image/jpeg, image/webp;q=0.9, */*;q=0.1",
            "Accept-Encoding": "identity",
            # Never pooled: a later link must not ride a connection whose TLS was checked for
            # another host at the same address.
            "Connection": "close",
            **headers,
        }
        # TLS checks the certificate against the link's host, not the address dialled.
        extensions = {} if parse_ip_literal(host) is not None else {"sni_hostname": host}
        timeout = httpx.Timeout(
            connect=self.connect_timeout, read=self.timeout, write=self.timeout, pool=self.timeout
        )
        try:
            for index, address in enumerate(addresses):
                pinned = url.copy_with(host=address)
                try:
                    async with self._http.stream(
                        "GET",
                        pinned,
                        headers=request_headers,
                        timeout=timeout,
                        extensions=extensions,
                        follow_redirects=False,
                    ) as response:
                        return await self._answer(response, url)
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    if index == len(addresses) - 1:
                        raise
            raise AssertionError("no address to connect to")  # _vet returns at least one
        except httpx.TimeoutException:
            raise DownloadRefused("That image took too long to download.") from None
        except (httpx.TransportError, httpx.InvalidURL):
            log.info("input image from %s: connection failed", _origin_of(url), exc_info=True)
            raise DownloadRefused("That image could not be downloaded.") from None

    async def _answer(self, response: httpx.Response, url: httpx.URL) -> bytes | str:
        status = response.status_code
        if status in _REDIRECTS:
            location: str = response.headers.get("location", "")
            if not location:
                raise DownloadRefused("That image could not be downloaded.")
            return location
        if status != 200:
            log.info("input image from %s: HTTP %d", _origin_of(url), status)
            raise DownloadRefused(
                f"That image could not be downloaded (the server answered {status})."
            )
        body = await read_capped(response, self.max_bytes, raw=True)
        if body is None:
            log.info("input image from %s: over the %d byte cap", _origin_of(url), self.max_bytes)
            raise DownloadRefused(
                f"That image is larger than the {self.max_bytes / (1024 * 1024):.0f} MB limit."
            )
        return body


def _origin_of(url: httpx.URL) -> str:
    """scheme://host[:port] only: paths and queries of user links may carry signed tokens."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def _origin(url: str) -> str:
    try:
        return _origin_of(httpx.URL(url))
    except httpx.InvalidURL:
        return "an invalid URL"
