"""Scrape a real havmd's GET /metrics (over TCP with a token, or its unix socket) and read samples."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from havm.daemon.client import _UnixHTTPConnection


@dataclass
class Scrape:
    at: float
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        """The one sample of ``name`` whose labels include ``labels`` (None: absent)."""
        want = set(labels.items())
        hits = [v for (n, lb), v in self.samples.items() if n == name and want <= lb]
        assert len(hits) <= 1, (name, labels, hits)
        return hits[0] if hits else None


def scrape(host: str | None = None, port: int = 7694, token: str | None = None, sock: str | None = None,
           timeout: float = 3.0) -> Scrape:
    """One scrape; raises OSError when nothing answers and AssertionError on a non-200."""
    conn: http.client.HTTPConnection = _UnixHTTPConnection(sock, timeout) if sock else http.client.HTTPConnection(
        host or "", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        body = r.read().decode()
    finally:
        conn.close()
    assert r.status == 200, (r.status, body[:300])
    assert r.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
    out = Scrape(time.time())
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out.samples[(s.name, frozenset(s.labels.items()))] = s.value
    return out
