"""A TCP relay between the browser and a node's API: the network in between.

``Relay`` listens on 127.0.0.1 (a free port) and copies bytes both ways to the
node's API address. With ``netns`` it opens each upstream socket *inside* that
network namespace (``havm.lab.guestnet.socket_in_netns``): a namespace
lab's API addresses (10.213.x.y) exist only inside the lab's namespaces, the
browser runs in the test's. ``cut()`` is a network failure between browser and
node (every connection reset, new ones refused) until ``restore()``.
Long-lived connections (the event stream) are fine; ``close()`` ends them all.
"""

from __future__ import annotations

import socket
import threading

from havm.lab.guestnet import socket_in_netns
from havm.lab.netns import NETNS_DIR


class Relay:
    def __init__(self, address: str, port: int, netns: str | None = None) -> None:
        self.netns, self.target = netns, (address, port)
        self.broken = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.broken:
            client.close()
            return
        try:
            upstream = socket_in_netns(f"{NETNS_DIR}/{self.netns}") if self.netns else socket.socket()
            upstream.settimeout(5)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except OSError:
            client.close()  # the browser sees a refused/reset connection, as with a dead node
            return
        with self._lock:
            if self._closed:
                client.close()
                upstream.close()
                return
            self._open.update((client, upstream))
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                for s in (src, dst):
                    if s in self._open:
                        self._open.discard(s)
                        s.close()

    def cut(self) -> None:
        """The network between browser and node fails: reset every connection, refuse new ones."""
        self.broken = True
        self._reset_all()

    def restore(self) -> None:
        self.broken = False

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self._reset_all()

    def _reset_all(self) -> None:
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._open.clear()
