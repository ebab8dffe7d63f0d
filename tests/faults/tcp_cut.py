"""A TCP relay on 127.0.0.1 that the fault harness can cut: the worker processes reach
PostgreSQL through it, so "PostgreSQL unreachable for 10 s" is a real network failure for
them (open connections reset, new ones refused) while the server itself, shared with the
rest of the suite, runs on."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TcpCut:
    """Relays every connection to ``target``; :meth:`cut` drops them all and refuses new
    ones (they are accepted and reset at once) until :meth:`restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tcp-cut", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refuse = self._cut
            if refuse:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._forget(end)

    def _forget(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            ends = list(self._open)
        for end in ends:
            _reset(end)
            self._forget(end)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()
        self._thread.join(timeout=5)


def _reset(end: socket.socket) -> None:
    """Drop the connection at once (SO_LINGER 0: no lingering data), as a vanished peer or a
    firewall would. shutdown() before close(): a close() alone leaves the connection open
    while a pump thread still waits in recv() on it, and PostgreSQL then keeps that session
    idle in its transaction, holding its locks."""
    with contextlib.suppress(OSError):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        end.close()


@contextmanager
def tcp_cut(target_host: str, target_port: int) -> Iterator[TcpCut]:
    relay = TcpCut(target_host, target_port)
    try:
        yield relay
    finally:
        relay.close()
