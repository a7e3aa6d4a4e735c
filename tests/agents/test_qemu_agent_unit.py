"""QemuAgent behaviour that needs no running QEMU (nothing is started here)."""

import xml.etree.ElementTree as ET

from havm.agents.base import OCF
from havm.agents.qemu import QemuAgent


def agent(tmp_path, **params):
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\x7fELF")
    base = {"kernel": str(kernel), "run_dir": str(tmp_path / "run"), "qemu_binary": "true"}
    return QemuAgent("vm1", {**base, **params})


def test_bad_params_are_err_configured_for_every_action(tmp_path):
    a = QemuAgent("vm1", {"memory": "lots", "kernel": "/k"})
    for result in (a.validate(), a.start(), a.stop(), a.monitor(), a.migrate_check("n2")):
        assert result.rc == OCF.ERR_CONFIGURED
        assert "memory: expected an integer" in result.output


def test_bad_xen_config_is_err_configured(tmp_path):
    cfg = tmp_path / "vm1.cfg"
    cfg.write_text('name = "vm1"\nmemory = "x"\nkernel = "/k"\n')
    result = QemuAgent("vm1", {"xen_config": str(cfg)}).validate()
    assert result.rc == OCF.ERR_CONFIGURED and f"{cfg}:2: memory:" in result.output


def test_missing_files_are_err_installed(tmp_path):
    assert agent(tmp_path).validate().rc == OCF.SUCCESS
    missing = agent(tmp_path, disks=[str(tmp_path / "nope.qcow2")]).validate()
    assert missing.rc == OCF.ERR_INSTALLED and "nope.qcow2 does not exist" in missing.output
    nobin = agent(tmp_path, qemu_binary="no-such-qemu").start()
    assert nobin.rc == OCF.ERR_INSTALLED
    nobridge = agent(tmp_path, nics=[{"bridge": "nosuchbr0"}]).validate()
    assert nobridge.rc == OCF.ERR_INSTALLED and "bridge nosuchbr0" in nobridge.output


def test_nothing_running_means_not_running_and_stop_succeeds(tmp_path):
    a = agent(tmp_path)
    assert a.monitor().rc == OCF.NOT_RUNNING
    assert a.stop().rc == OCF.SUCCESS
    assert a.stop().data["how"] == "already-stopped"
    assert a.migrate_check("n2").rc == OCF.NOT_RUNNING
    assert a.migrate_recover().rc == OCF.NOT_RUNNING
    assert a.migrate_abort().rc == OCF.SUCCESS


def test_stale_pidfile_means_failed(tmp_path):
    a = agent(tmp_path)
    a.spec.vm_dir.mkdir(parents=True)
    a.spec.pidfile.write_text("999999\n")
    assert a.monitor().rc == OCF.ERR_GENERIC
    assert a.stop().rc == OCF.SUCCESS and not a.spec.pidfile.exists()
    assert a.monitor().rc == OCF.NOT_RUNNING


def test_prepare_needs_a_reachable_address(tmp_path):
    result = agent(tmp_path).migrate_prepare("n1")
    assert result.rc == OCF.ERR_CONFIGURED and "migration_host" in result.output


def test_migrate_to_needs_a_uri(tmp_path):
    assert agent(tmp_path).migrate_to("n2", {}).rc == OCF.ERR_ARGS


def test_meta_data_is_ocf_xml(tmp_path):
    root = ET.fromstring(agent(tmp_path).meta_data())
    assert root.get("name") == "qemu"
    names = {p.get("name") for p in root.iter("parameter")}
    assert {"memory", "disks", "xen_config", "downtime_limit_ms"} <= names
