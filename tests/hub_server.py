"""A local stand-in for the Hugging Face hub: a real HTTP server on 127.0.0.1 in a background thread.

It serves files in the hub layout ``/<repo id>/resolve/main/<file>`` and answers like the hub does:

* JSON and text files come straight back (200) with a git-style ETag (40 hex digits, not a SHA-256);
* other files are "LFS" files: a 302 redirect to ``/cdn/...`` whose headers carry the file's SHA-256
  (``X-Linked-Etag``) and size (``X-Linked-Size``); the CDN answer has a different ETag;
* ``Range: bytes=N-`` gets a 206 (or 416 past the end); an unknown file gets a 404.

It also plays the faults of an unlucky network: an HTML page (a captive portal), a server that trickles
bytes, a connection reset before any answer, and redirects elsewhere (to the portal, or in a loop).

Faults for tests are plain attributes, set before or between requests (see :class:`HubServer`).
Every request is logged, so a test can count how often the network was touched.

Use it for any test that needs a model "from the hub"::

    with HubServer() as hub:
        hub.add_dir("microsoft/deberta-base", tiny_model_dir)   # config.json, pytorch_model.bin, ...
        for key, value in hub.environ(tmp_path / "cache").items():
            monkeypatch.setenv(key, value)                     # or pass env= to a subprocess
        model = deberta.DeBERTa(pre_trained="base")
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/main/(?P<file>[^/?]+)")
_CDN = re.compile(r"/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>[^/?]+)")
_RANGE = re.compile(r"bytes=(\d+)-")
_SEND_BYTES = 16 * 1024
PORTAL_PAGE = b"<!DOCTYPE html><html><head><title>Wi-Fi login</title></head><body>Accept the terms</body></html>\n"


@dataclass(frozen=True)
class Hit:
    """One request the server saw: ``kind`` is ``resolve`` (the hub URL) or ``cdn`` (after a redirect)."""

    method: str
    kind: str
    repo: str
    filename: str
    range: str | None


@dataclass
class HubServer:
    """The hub on ``self.url``; a context manager that starts and stops the server thread.

    Fault injection (all keyed by file name, consumed as used):

    * ``drop_after[file] = n``: the next body of that file stops after ``n`` bytes and the connection
      closes, although the headers promised the whole length;
    * ``statuses[file] = [503, ...]``: answer these statuses before serving the file;
    * ``ignore_range``: answer every Range request with the whole file (200);
    * ``misaligned_range``: answer a Range request from one byte earlier than asked (a broken proxy);
    * ``advertised_sha256[file]``, ``advertised_size[file]``: publish wrong values;
    * ``seconds_per_chunk``: sleep between 16 KiB chunks, so a download takes a while;
    * ``html[file] = n``: the next ``n`` requests get a captive portal's page (200, ``text/html``);
    * ``trickle[file] = n``: the next ``n`` bodies come ``trickle_bytes`` bytes every ``trickle_seconds``;
    * ``reset[file] = n``: the next ``n`` requests are answered by a TCP reset, before any header;
    * ``redirect[file] = location``: every request is redirected there (``/portal``: the portal's page;
      the file's own URL: a redirect loop).

    ``redirect_lfs = False`` serves LFS files directly, with their SHA-256 as the ETag, like a plain
    mirror.
    """

    drop_after: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    ignore_range: bool = False
    misaligned_range: bool = False
    advertised_sha256: dict[str, str] = field(default_factory=dict)
    advertised_size: dict[str, int] = field(default_factory=dict)
    seconds_per_chunk: float = 0.0
    html: dict[str, int] = field(default_factory=dict)
    trickle: dict[str, int] = field(default_factory=dict)
    trickle_bytes: int = 16
    trickle_seconds: float = 0.05
    reset: dict[str, int] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    redirect_lfs: bool = True
    hits: list[Hit] = field(default_factory=list)
    _files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL to use as ``DEBERTA_MODEL_HUB``."""
        assert self._server is not None, "the server runs only inside `with HubServer() as hub:`"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_file(self, repo: str, filename: str, data: bytes) -> None:
        """Serve ``data`` as ``<repo>/resolve/main/<filename>`` (repo like ``microsoft/deberta-base``)."""
        self._files[repo, filename] = data

    def add_dir(self, repo: str, directory: Path) -> None:
        """Serve every file directly inside ``directory`` under ``repo``."""
        for path in sorted(Path(directory).iterdir()):
            if path.is_file():
                self.add_file(repo, path.name, path.read_bytes())

    def count(self, filename: str, *, method: str = "GET", kind: str = "resolve") -> int:
        """How many requests of this method and kind asked for ``filename``."""
        with self._lock:
            return sum(h.filename == filename and h.method == method and h.kind == kind for h in self.hits)

    def environ(self, cache: Path) -> dict[str, str]:
        """Environment that points DeBERTa at this hub, a given cache and online mode, with fast retries."""
        return {
            "DEBERTA_MODEL_HUB": self.url,
            "DEBERTA_CACHE": str(cache),
            "DEBERTA_OFFLINE": "0",
            "HF_HUB_OFFLINE": "0",
            "DEBERTA_DOWNLOAD_BACKOFF": "0.01",
        }

    def __enter__(self) -> HubServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown() quick: it waits for the serving loop to notice.
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="hub-server", daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _log(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def _take_status(self, filename: str) -> int | None:
        with self._lock:
            pending = self.statuses.get(filename)
            return pending.pop(0) if pending else None

    def _take_drop(self, filename: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(filename, None)

    def _take(self, faults: dict[str, int], filename: str) -> bool:
        """Consume one use of a counted fault of ``filename``; True when it applies to this request."""
        with self._lock:
            left = faults.get(filename, 0)
            if left > 0:
                faults[filename] = left - 1
            return left > 0


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one :class:`HubServer` (http.server instantiates it per request)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # like the hub: keep-alive, so a dropped body is a real short read

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default per-request stderr line."""

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            if self.path == "/portal":
                self._send_page(PORTAL_PAGE, "text/html; charset=utf-8", body=body)
                return
            resolve, cdn = _RESOLVE.fullmatch(self.path), _CDN.fullmatch(self.path)
            match = resolve or cdn
            if match is None:
                self.send_error(404)
                return
            repo, filename = match["repo"], match["file"]
            kind = "resolve" if resolve else "cdn"
            hub._log(Hit(self.command, kind, repo, filename, self.headers.get("Range")))
            if hub._take(hub.reset, filename):
                # SO_LINGER with a zero timeout: close() sends a TCP reset instead of a clean end.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if filename in hub.redirect:
                self.send_response(302)
                self.send_header("Location", hub.redirect[filename])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if hub._take(hub.html, filename):
                self._send_page(PORTAL_PAGE, "text/html; charset=utf-8", body=body)
                return
            data = hub._files.get((repo, filename))
            if data is None:
                self.send_error(404, "Entry not found")
                return
            status = hub._take_status(filename)
            if status is not None:
                self.send_error(status)
                return
            sha256 = hub.advertised_sha256.get(filename, hashlib.sha256(data).hexdigest())
            size = hub.advertised_size.get(filename, len(data))
            is_lfs = not filename.endswith((".json", ".txt"))
            if resolve and is_lfs and hub.redirect_lfs:
                self.send_response(302)
                self.send_header("Location", f"/cdn/{repo}/{filename}")
                self.send_header("X-Linked-Etag", f'"{sha256}"')
                self.send_header("X-Linked-Size", str(size))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if cdn:
                etag = "cdn-etag"
            elif is_lfs:
                etag = sha256
            else:
                etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            self._send(filename, data, etag, body=body)

        def _send_page(self, page: bytes, content_type: str, *, body: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            if body:
                self.wfile.write(page)

        def _send(self, filename: str, data: bytes, etag: str, *, body: bool) -> None:
            wanted = _RANGE.fullmatch(self.headers.get("Range") or "")
            start = int(wanted[1]) - hub.misaligned_range if wanted and not hub.ignore_range else 0
            if start >= len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Accept-Ranges", "bytes")
            content_type = "text/plain; charset=utf-8" if filename.endswith((".json", ".txt")) else \
                "application/octet-stream"
            self.send_header("Content-Type", content_type)
            self.end_headers()
            if not body:
                return
            drop = hub._take_drop(filename)
            end = len(data) if drop is None else min(len(data), start + drop)
            trickle = hub._take(hub.trickle, filename)
            piece, pause = (hub.trickle_bytes, hub.trickle_seconds) if trickle else (_SEND_BYTES, hub.seconds_per_chunk)
            try:
                for offset in range(start, end, piece):
                    self.wfile.write(data[offset:min(end, offset + piece)])
                    self.wfile.flush()
                    time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. on a trickle): nothing to report
                return
            if drop is not None:
                self.close_connection = True  # hang up with the promised length unsent

    return Handler

