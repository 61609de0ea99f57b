"""A TCP proxy in front of the registry that can slow the pull down, then die.

Makes "the registry goes away in the middle of a pull" reproducible: a pull
of a few MB through loopback is otherwise over before anyone can stop it.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import List, Optional


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.rate: Optional[float] = None  # bytes per second towards the client; None: full
        self.bytes_down = 0
        self.dead = threading.Event()
        self.sockets: List[socket.socket] = []
        self.lock = threading.Lock()
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
                data = source.recv(16384)
                if not data:
                    break
                sink.sendall(data)
                if down:
                    self.bytes_down += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def wait_for(self, nbytes: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bytes_down >= nbytes:
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """The registry is gone: every connection reset, new ones refused."""
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
