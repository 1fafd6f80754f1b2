"""Bytes on the wire: one HTTP/1.1 exchange over a raw socket, counted as sent and received.

Counts the status line, every header and the body exactly as they cross the socket (after
compression), which is what a browser's polling costs the network.
"""

from __future__ import annotations

import gzip
import re
import socket
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import brotli

try:
    from compression import zstd  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # Python < 3.14
    from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]

# What Chromium sends on a fetch of a page or an htmx request (besides cookies and htmx headers).
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
}


@dataclass
class Exchange:
    """One request and its response, with their sizes on the wire."""

    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    received: int
    head: str = ""
    header_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The body decoded from its Content-Encoding."""
        return decode(self.body, self.headers.get("content-encoding", "")).decode("utf-8", "replace")


def decode(body: bytes, encoding: str) -> bytes:
    """Undo gzip, Brotli or zstd."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        return bytes(brotli.decompress(body))
    if encoding == "zstd":
        return bytes(zstd.decompress(body))
    return body


def _request_bytes(url: str, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target or '/'} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_exact(sock: socket.socket, buffer: bytearray, size: int) -> None:
    while len(buffer) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the end of the response")
        buffer += chunk


def _read_head(sock: socket.socket, buffer: bytearray) -> int:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the headers ended")
        buffer += chunk
    return buffer.index(b"\r\n\r\n") + 4


def _dechunk(sock: socket.socket, buffer: bytearray, start: int) -> tuple[bytes, int]:
    """The body of a chunked response from `start`, and where the response ends."""
    body = bytearray()
    position = start
    while True:
        while b"\r\n" not in buffer[position:]:
            _read_exact(sock, buffer, len(buffer) + 1)
        line_end = buffer.index(b"\r\n", position)
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        _read_exact(sock, buffer, position + size + 2)
        body += buffer[position : position + size]
        position += size + 2
        if size == 0:
            return bytes(body), position


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 15.0) -> Exchange:
    """GET `url` over a new connection and count every byte each way."""
    request = _request_bytes(url, headers or {})
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(request)
        buffer = bytearray()
        head_end = _read_head(sock, buffer)
        head = bytes(buffer[:head_end]).decode("latin-1")
        status_line, *header_lines = head.rstrip("\r\n").split("\r\n")
        status = int(status_line.split()[1])
        found: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()
            sizes[name.strip()] = sizes.get(name.strip(), 0) + len(line) + 2
        if status in (204, 304) or 100 <= status < 200:
            body, end = b"", head_end
        elif found.get("transfer-encoding", "").lower() == "chunked":
            body, end = _dechunk(sock, buffer, head_end)
        else:
            length = int(found.get("content-length", "0"))
            _read_exact(sock, buffer, head_end + length)
            body, end = bytes(buffer[head_end : head_end + length]), head_end + length
    return Exchange(status, found, body, len(request), end, head, sizes)


class _Assets(HTMLParser):
    """The URLs a browser fetches to show a page: stylesheets, scripts, icons, sprites, htmx loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.fragments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("href") and (found.get("rel") or "") in ("stylesheet", "icon"):
            self.urls.append(str(found["href"]))
        elif tag in ("script", "img") and found.get("src"):
            self.urls.append(str(found["src"]))
        elif tag == "use" and found.get("href"):
            self.urls.append(str(found["href"]).split("#")[0])
        if found.get("hx-get") and "load" in (found.get("hx-trigger") or ""):
            self.fragments.append(str(found["hx-get"]))


def page_assets(html: str) -> tuple[list[str], list[str]]:
    """The distinct subresources of a page, and the fragments its cards load at once."""
    parser = _Assets()
    parser.feed(html)
    urls = [u for u in dict.fromkeys(parser.urls) if u and not re.match(r"^(data:|https?://)", u)]
    return urls, list(dict.fromkeys(parser.fragments))


def first_load(base: str, headers: dict[str, str]) -> list[tuple[str, Exchange]]:
    """A first visit with an empty browser cache: the page, each subresource once, each card's first load."""
    page = fetch(base + "/", {**headers, "Accept": "text/html"})
    urls, fragments = page_assets(page.text)
    exchanges = [("/", page)]
    for url in urls:
        exchanges.append((url, fetch(urljoin(base + "/", url), headers)))
    hx = {**headers, "HX-Request": "true", "HX-Current-URL": base + "/"}
    for url in fragments:
        exchanges.append((url, fetch(urljoin(base + "/", url), hx)))
    return exchanges
