"""A TCP proxy in front of a real server that breaks its answers on demand.

    with FaultyProxy(("127.0.0.1", 8333)) as proxy:
        client = Minio(proxy.endpoint, ...)   # requests pass through unchanged
        proxy.arm("cut", after=1_500_000)     # the next 1.5 MB from the server pass, then FIN

Once armed, the server-to-client direction of every connection forwards `after` more bytes
(counted over all connections) and then fails in one of three ways, as a network or a dying
server does:
- "cut": both sockets are closed (the client sees the answer end early);
- "reset": the client's socket is closed with SO_LINGER 0 (a TCP RST: ECONNRESET);
- "stall": nothing more is forwarded, the connection stays open (the client's read times out).

`disarm` lets new connections through again. Bytes are forwarded as they are, so signed
requests (S3 signature V4 signs the Host header the client addressed, the proxy's) stay valid.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Literal

Mode = Literal["cut", "reset", "stall"]


class FaultyProxy:
    """Forward 127.0.0.1:<ephemeral> to `upstream`; see the module docstring."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._mode: Mode | None = None
        self._budget = 0
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self.faults = 0
        """How many connections were broken so far."""
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: Mode, *, after: int) -> None:
        """Break the server's answers after `after` more bytes."""
        with self._lock:
            self._mode, self._budget = mode, after

    def disarm(self) -> None:
        """Forward everything again (connections already broken stay broken)."""
        with self._lock:
            self._mode = None

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed.set()
        _shutdown(self._listener, socket.SHUT_RDWR)  # wakes the accept
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _shutdown(sock, socket.SHUT_RDWR)
                _close(sock)

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server: forwarded as it comes."""
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(server)

    def _pump_down(self, server: socket.socket, client: socket.socket) -> None:
        """Server to client: forwarded until the armed fault strikes."""
        try:
            while data := server.recv(65536):
                with self._lock:
                    mode = self._mode
                    allowed = len(data) if mode is None else min(len(data), self._budget)
                    if mode is not None:
                        self._budget -= allowed
                if allowed:
                    client.sendall(data[:allowed])
                if mode is not None and allowed < len(data):
                    self._strike(mode, server, client)
                    return
        except OSError:
            pass
        _shutdown(client)

    def _strike(self, mode: Mode, server: socket.socket, client: socket.socket) -> None:
        with self._lock:
            self.faults += 1
        if mode == "stall":
            self._closed.wait()  # hold both sockets open, forward nothing
            return
        # A socket closed while another thread is blocked in its recv (the other pump) is
        # only released when that recv returns: shutting it down first wakes the recv.
        if mode == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            _shutdown(client, socket.SHUT_RD)  # no FIN: the close sends the RST
        else:
            _shutdown(client, socket.SHUT_RDWR)
        _close(client)
        _shutdown(server, socket.SHUT_RDWR)
        _close(server)


def _shutdown(sock: socket.socket, how: int = socket.SHUT_WR) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
