"""A loopback TCP relay in front of a server: slows it down like a network link,
counts what it delivers, and can die like a server that goes away.

Used by the fault matrix (a registry that vanishes in the middle of a pull) and
by the generator benchmark (a registry behind a ~100 Mbit/s link).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import List, Optional


class TcpRelay:
    """Relays 127.0.0.1:<port> to `target_port`.

    Server-to-client bytes share one bandwidth budget (`rate` bytes per second,
    as on one link, over all connections); each client-to-server chunk (a
    request) waits `latency` seconds first. Both can be changed while it runs.
    """

    def __init__(
        self, target_port: int, rate: Optional[float] = None, latency: float = 0.0
    ) -> None:
        self.target_port = target_port
        self.rate = rate
        self.latency = latency
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.bytes_down = 0
        self.dead = threading.Event()
        self.sockets: List[socket.socket] = []
        self.lock = threading.Lock()
        self._next_free = time.monotonic()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.dead.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, down: bool) -> None:
        try:
            while not self.dead.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if down and self.rate:
                    with self.lock:  # reserve this chunk's slot on the shared link
                        start = max(self._next_free, time.monotonic())
                        self._next_free = start + len(data) / self.rate
                    time.sleep(max(0.0, self._next_free - time.monotonic()))
                elif not down and self.latency:
                    time.sleep(self.latency)
                sink.sendall(data)
                if down:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def wait_for(self, nbytes: int, timeout: float) -> bool:
        """True once `nbytes` reached the clients, False at `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bytes_down >= nbytes:
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """The server is gone: every connection reset, new ones refused."""
        self.dead.set()
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:  # linger 0: close sends RST; shutdown first wakes the blocked pumps
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
