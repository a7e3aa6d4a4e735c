"""The alerts section: valid alerts load; each mistake is reported at its own line."""

from __future__ import annotations

import pytest

from havm.config.load import load_config
from havm.errors import ConfigError
from tests.conftest import VALID

RESOURCES = """\
resources:
  - group: web
    resources:
      - {id: ip1, type: dummy}
      - {id: app1, type: dummy}
"""


def issues_of(path: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    return [str(i) for i in ei.value.issues]


def test_script_and_webhook_alerts_load(write_config) -> None:
    cfg = load_config(write_config(VALID + RESOURCES + """\
alerts:
  - id: page
    kind: script
    path: /usr/local/bin/page
    kinds: [node, fence, action]
    nodes: [n1]
    resources: [web]
    timeout: 5s
    recipient: ops@example.com
    env: {SMTP_HOST: mail}
  - id: chat
    kind: webhook
    url: http://127.0.0.1:9/hook
    headers: {Authorization: Bearer x}
""")).config
    page, chat = cfg.alerts
    assert (page.kind, page.timeout, page.kinds, page.resources) == ("script", 5.0, ["node", "fence", "action"],
                                                                     ["web"])
    assert chat.timeout == 30.0 and chat.headers == {"Authorization": "Bearer x"} and chat.kinds == []


def test_each_mistake_names_its_line(write_config) -> None:
    text = VALID + RESOURCES + """\
alerts:
  - id: a1
    kind: script
    path: relative/script
  - id: a2
    kind: webhook
    url: ftp://example.com/x
  - id: a3
    kind: webhook
    url: http://example.com/
    path: /bin/true
  - id: a4
    kind: pager
"""
    base = len((VALID + RESOURCES).splitlines())
    joined = "\n".join(issues_of(write_config(text)))
    assert f":{base + 2}: alerts[0]: path must be absolute" in joined
    assert f":{base + 5}: alerts[1]: url must be http:// or https://" in joined
    assert f":{base + 8}: alerts[2]: 'path' and 'env' are for script alerts" in joined
    assert f":{base + 13}: alerts[3].kind: input should be 'script' or 'webhook'" in joined


def test_references_to_unknown_kinds_nodes_resources_and_reused_ids(write_config) -> None:
    text = VALID + RESOURCES + """\
alerts:
  - id: a1
    kind: script
    path: /bin/true
    kinds: [node, nosuchkind]
    nodes: [n9]
    resources: [web, vm9]
  - id: a1
    kind: webhook
    url: http://example.com/
"""
    base = len((VALID + RESOURCES).splitlines())
    joined = "\n".join(issues_of(write_config(text)))
    assert f":{base + 5}: alerts[0].kinds[1]: unknown event kind 'nosuchkind'" in joined
    assert f":{base + 6}: alerts[0].nodes[0]: unknown node 'n9'" in joined
    assert f":{base + 7}: alerts[0].resources[1]: unknown resource 'vm9'" in joined
    assert "alerts[0].resources[0]" not in joined  # a group's id is a valid filter
    assert f":{base + 8}: alerts[1].id: alert id 'a1' is already used (alerts[0])" in joined
