"""havm token create/list/revoke on the file named by the config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from havm.api.tokens import TokenFile
from havm.cli.main import main
from tests.api.fake import FakeDaemon


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = FakeDaemon(tmp_path)
    cfg = ["--config", d.config_file]
    assert main([*cfg, "token", "create", "ops", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("havm_")
    path = str(tmp_path / "tokens")  # daemon.api.tokens_file defaults to 'tokens' beside the config
    assert os.stat(path).st_mode & 0o777 == 0o600
    live = TokenFile(path)
    assert live.lookup(token) is not None and live.lookup(token).role == "admin"  # type: ignore[union-attr]
    assert main([*cfg, "token", "create", "ops", "--role", "read"]) == 2  # names are unique
    capsys.readouterr()
    assert main([*cfg, "token", "list", "--json"]) == 0
    assert [(t["name"], t["role"]) for t in json.loads(capsys.readouterr().out)] == [("ops", "admin")]
    assert main([*cfg, "token", "revoke", "ops"]) == 0
    assert live.lookup(token) is None  # the daemon's view follows the file
    assert main([*cfg, "token", "revoke", "ops"]) == 7
    assert main([*cfg, "token", "create", "bad name", "--role", "read"]) == 2
