import pytest

from havm.agents.vmspec import VmSpecError, default_mac, qemu_argv, spec_from_params

BASE = {"name": "vm1", "kernel": "/k/vmlinux", "initrd": "/k/i.cpio", "append": "console=ttyS0",
        "run_dir": "/run/h"}


def test_defaults_and_paths():
    spec = spec_from_params(BASE)
    assert (spec.memory_mb, spec.cpus, spec.machine) == (128, 1, "microvm")
    assert str(spec.qmp_socket) == "/run/h/vm1/qmp.sock"
    assert str(spec.pidfile) == "/run/h/vm1/qemu.pid"


def test_name_defaults_to_resource_id_and_memory_units():
    spec = spec_from_params({**BASE, "name": None, "memory": "1G"}, default_name="rsc")
    assert spec.name == "rsc" and spec.memory_mb == 1024


def test_argv_microvm_with_disk_and_tap():
    spec = spec_from_params({**BASE, "disks": ["/srv/vm1.qcow2", {"path": "/dev/drbd1",
                                                                    "readonly": True}],
                             "nics": [{"bridge": "br0", "mac": "52:54:00:00:00:01"}]})
    argv = qemu_argv(spec)
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    assert "-accel tcg -machine microvm -cpu max" in joined
    assert "file=/srv/vm1.qcow2,format=qcow2,if=none,id=disk0,cache=writeback" in joined
    assert "file=/dev/drbd1,format=raw,if=none,id=disk1,cache=writeback,readonly=on" in joined
    assert "virtio-blk-device,drive=disk1" in joined
    assert f"tap,id=net0,ifname={spec.nics[0].tap},script=no,downscript=no" in joined
    assert "virtio-net-device,netdev=net0,mac=52:54:00:00:00:01" in joined
    assert "-daemonize" in argv and "-incoming" not in argv
    assert argv[-2:] != ["-incoming", "defer"]
    assert qemu_argv(spec, incoming=True)[-2:] == ["-incoming", "defer"]


def test_q35_uses_pci_devices_and_disk_boot():
    spec = spec_from_params({"name": "h", "machine": "q35", "disks": ["/srv/h.img"]})
    joined = " ".join(qemu_argv(spec))
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in joined
    assert "-kernel" not in joined


def test_same_vm_gets_same_mac_on_every_node():
    a = spec_from_params({**BASE, "nics": [{"bridge": "br0"}], "run_dir": "/a"})
    b = spec_from_params({**BASE, "nics": [{"bridge": "br0"}], "run_dir": "/b"})
    assert a.nics[0].mac == b.nics[0].mac == default_mac("vm1", 0)
    assert a.guest_abi() == b.guest_abi()
    assert len(a.nics[0].tap or "") <= 15


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"machine": "virt"}, "machine"),
        ({"memory": 64}, "memory"),
        ({"memory": "many"}, "memory"),
        ({"cpus": 0}, "cpus"),
        ({"kernel": None}, "kernel"),
        ({"disks": [{"path": "/x", "format": "vmdk"}]}, "disks[0].format"),
        ({"nics": [{"mac": "zz"}]}, "nics[0].mac"),
        ({"nics": [{}]}, "nics[0]"),
        ({"nics": [{"user": True, "bridge": "br0"}]}, "nics[0]"),
        ({"nics": [{"bridge": "br0", "hostfwd": "tcp::1-:80"}]}, "nics[0].hostfwd"),
        ({"nics": [{"tap": "a-much-too-long-name"}]}, "nics[0].tap"),
        ({"run_dir": "/" + "d" * 120}, "run_dir"),
    ],
)
def test_errors_name_the_field(params, field):
    with pytest.raises(VmSpecError) as info:
        spec_from_params({**BASE, **params})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_disk_locking_off_is_passed_to_qemu_and_checked():
    spec = spec_from_params({**BASE, "disks": [{"path": "/srv/vm1.qcow2", "locking": "off"}]})
    assert ",file.locking=off" in " ".join(qemu_argv(spec))
    assert "locking" not in " ".join(qemu_argv(spec_from_params({**BASE, "disks": ["/srv/vm1.qcow2"]})))
    with pytest.raises(VmSpecError, match=r"disks\[0\].locking"):
        spec_from_params({**BASE, "disks": [{"path": "/srv/vm1.qcow2", "locking": "maybe"}]})
