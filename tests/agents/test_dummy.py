from havm.agents.base import OCF, AgentResult
from havm.agents.dummy import DummyAgent


def agent(tmp_path, **params):
    return DummyAgent("d1", {"state_dir": str(tmp_path), **params})


def test_lifecycle_is_idempotent(tmp_path):
    a = agent(tmp_path)
    assert a.monitor().rc == OCF.NOT_RUNNING
    assert a.start().rc == OCF.SUCCESS
    assert a.start().rc == OCF.SUCCESS
    assert (tmp_path / "d1.state").exists()
    assert a.monitor().rc == OCF.SUCCESS
    assert a.stop().rc == OCF.SUCCESS
    assert a.stop().rc == OCF.SUCCESS
    assert a.monitor().rc == OCF.NOT_RUNNING


def test_promote_demote(tmp_path):
    a = agent(tmp_path)
    assert a.promote().rc == OCF.NOT_RUNNING
    a.start()
    assert a.promote().rc == OCF.SUCCESS
    assert a.monitor().rc == OCF.RUNNING_PROMOTED
    assert a.demote().rc == OCF.SUCCESS
    assert a.monitor().rc == OCF.SUCCESS


def test_validate_and_meta_data(tmp_path):
    assert agent(tmp_path).validate().rc == OCF.SUCCESS
    bad = agent(tmp_path, op_sleep="soon").validate()
    assert bad.rc == OCF.ERR_CONFIGURED and "op_sleep" in bad.output
    assert '<resource-agent name="dummy"' in agent(tmp_path).meta_data()


def test_progress_receives_output(tmp_path):
    lines: list[str] = []
    result = agent(tmp_path).start(progress=lines.append)
    assert lines == [f"created {tmp_path / 'd1.state'}"]
    assert result.output == lines[0] and result.duration >= 0


def test_result_and_codes():
    assert [int(c) for c in OCF] == list(range(10))
    assert OCF.NOT_RUNNING.meaning == "not running"
    r = AgentResult(OCF.ERR_INSTALLED, "a\nno qemu here", 1.5)
    assert not r.ok and str(r) == "rc=5 (not installed) in 1.500s: no qemu here"
