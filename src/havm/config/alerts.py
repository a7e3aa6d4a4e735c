"""The ``alerts`` section: run a script or POST a webhook when events happen.

```yaml
alerts:
  - id: page-oncall
    kind: script                      # script: run ``path`` with the event on stdin (JSON) and in env vars
    path: /usr/local/bin/havm-alert   # existing Pacemaker alert agents work (CRM_alert_* variables)
    kinds: [node, fence, action]      # event kinds or their prefix ("node" = node.join + node.leave); default: all
    nodes: [n1, n2]                   # only events about these nodes; default: all
    resources: [vm1]                  # only events about these resources (a group's id: its members)
    timeout: 30s                      # the script's process group is killed past it
    recipient: oncall@example.com     # CRM_alert_recipient, HAVM_ALERT_RECIPIENT
    env: {SMTP_HOST: mail.example.com}
  - id: chat
    kind: webhook                     # webhook: POST the event as JSON to ``url``
    url: http://hooks.example.com/havm
    headers: {Authorization: "Bearer s3cret"}
    timeout: 5s
```

Each node runs the alerts of the events it records (docs/alerts.md says which
node records which event). Cross-references (an unknown node or resource, an
id used twice) are errors located at the exact item.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from havm.config.resources import Section, walk_primitives
from havm.config.types import Duration, Name
from havm.events.log import KINDS

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)

Problems = list[tuple[tuple[str | int, ...], str, object]]


class Alert(Section):
    id: Name
    kind: Literal["script", "webhook"]
    path: str | None = Field(None, description="script: absolute path of an executable")
    url: str | None = Field(None, description="webhook: http:// or https:// URL to POST to")
    kinds: list[str] = Field(default_factory=list, description="event kinds or prefixes; empty: every kind")
    nodes: list[Name] = Field(default_factory=list, description="only events about these nodes")
    resources: list[Name] = Field(default_factory=list, description="only events about these resources")
    timeout: Duration = Field(30.0, gt=0, le=3600, description="one delivery (Pacemaker's default: 30s)")
    recipient: str = Field("", description="passed as CRM_alert_recipient / HAVM_ALERT_RECIPIENT")
    env: dict[str, str] = Field(default_factory=dict, description="script: extra environment variables")
    headers: dict[str, str] = Field(default_factory=dict, description="webhook: extra HTTP headers")

    @model_validator(mode="after")
    def _kind_fields(self) -> Alert:
        if self.kind == "script":
            if not self.path:
                raise ValueError("a script alert needs 'path', the absolute path of an executable")
            if not self.path.startswith("/"):
                raise ValueError(f"path must be absolute, got {self.path!r}")
            if self.url is not None or self.headers:
                raise ValueError("'url' and 'headers' are for webhook alerts, this alert is a script")
            bad = [k for k in self.env if not _ENV_NAME.match(k)]
            if bad:
                raise ValueError(f"env names must be letters, digits and '_', got {', '.join(map(repr, bad))}")
        else:
            if not self.url:
                raise ValueError("a webhook alert needs 'url', such as http://hooks.example.com/havm")
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url must be http:// or https:// with a host, got {self.url!r}")
            if self.path is not None or self.env:
                raise ValueError("'path' and 'env' are for script alerts, this alert is a webhook")
            bad = [k for k in self.headers if not _HEADER.match(k)]
            bad += [k for k, v in self.headers.items() if "\n" in v or "\r" in v]
            if bad:
                raise ValueError(f"bad header name or value: {', '.join(map(repr, bad))}")
        return self


def resource_members(resources: list[Any]) -> dict[str, set[str]]:
    """Every resource id (primitive, group, clone) -> the primitives it stands for (events name primitives)."""
    members: dict[str, set[str]] = {}
    for p, group, clone in walk_primitives(resources):
        for owner in (p.id, group.group if group else None, clone.clone if clone else None):
            if owner:
                members.setdefault(owner, set()).add(p.id)
    return members


def check_alerts(alerts: list[Alert], node_names: list[str], resources: list[Any]) -> Problems:
    """Cross-field problems of the ``alerts`` section, as (location, message, input) triples."""
    problems: Problems = []
    kinds = set(KINDS)
    prefixes = {k.split(".")[0] for k in kinds}
    ids = set(resource_members(resources))
    seen: dict[str, int] = {}
    for i, a in enumerate(alerts):
        if a.id in seen:
            problems.append((("alerts", i, "id"), f"alert id {a.id!r} is already used (alerts[{seen[a.id]}])",
                             a.id))
        seen.setdefault(a.id, i)
        for j, k in enumerate(a.kinds):
            if k not in kinds and k not in prefixes:
                problems.append((("alerts", i, "kinds", j),
                                 f"unknown event kind {k!r}; kinds are {', '.join(sorted(kinds))} "
                                 f"(or a prefix: {', '.join(sorted(prefixes))})", k))
        for j, n in enumerate(a.nodes):
            if n not in node_names:
                problems.append((("alerts", i, "nodes", j), f"unknown node {n!r}", n))
        for j, r in enumerate(a.resources):
            if r not in ids:
                problems.append((("alerts", i, "resources", j), f"unknown resource {r!r}", r))
    return problems
