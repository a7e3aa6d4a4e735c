import pytest

from havm.agents.vmspec import spec_from_params
from havm.agents.xen_config import load_xen_config, parse_disk, parse_vif, parse_xen_config
from havm.errors import ConfigError

CLASSIC = """\
# A Xen 3 era domU
name = "web1"
memory = 512
vcpus = 2
kernel = "/boot/vmlinuz-guest"
ramdisk = "/boot/initrd-guest"
root = "/dev/xvda1 ro"
extra = "console=hvc0 xencons=tty"
disk = ['file:/srv/xen/web1.img,xvda,w', 'phy:/dev/drbd1,xvdb,w']
vif = ['mac=00:16:3E:00:00:01, bridge=xenbr0']
on_crash = 'restart'
"""


def test_classic_file_maps_every_field():
    cfg = parse_xen_config(CLASSIC, "web1.cfg")
    p = cfg.params
    assert p["name"] == "web1"
    assert p["memory"] == 512
    assert p["cpus"] == 2
    assert p["machine"] == "microvm"
    assert p["kernel"] == "/boot/vmlinuz-guest"
    assert p["initrd"] == "/boot/initrd-guest"
    assert p["append"] == "root=/dev/vda1 ro console=hvc0 xencons=tty"
    assert p["disks"] == [
        {"path": "/srv/xen/web1.img", "format": "raw", "readonly": False, "target": "xvda"},
        {"path": "/dev/drbd1", "format": "raw", "readonly": False, "target": "xvdb"},
    ]
    assert p["nics"] == [{"bridge": "xenbr0", "mac": "00:16:3e:00:00:01"}]
    assert cfg.ignored == ("on_crash",)


def test_result_builds_a_vm_spec(tmp_path):
    path = tmp_path / "web1.cfg"
    path.write_text(CLASSIC)
    spec = spec_from_params({"xen_config": str(path), "run_dir": "/run/x"})
    assert spec.name == "web1" and spec.memory_mb == 512 and spec.cpus == 2
    assert [d.path for d in spec.disks] == ["/srv/xen/web1.img", "/dev/drbd1"]
    assert spec.nics[0].bridge == "xenbr0" and spec.nics[0].mac == "00:16:3e:00:00:01"
    assert spec.run_dir == "/run/x"


def test_load_reads_file(tmp_path):
    path = tmp_path / "a.cfg"
    path.write_text('name = "a"\nkernel = "/k"\n')
    assert load_xen_config(path)["name"] == "a"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("tap:aio:/srv/a.img,xvda,w", {"path": "/srv/a.img", "format": "raw", "readonly": False}),
        ("tap:qcow2:/srv/a.qcow2,xvda,r", {"path": "/srv/a.qcow2", "format": "qcow2", "readonly": True}),
        ("file:/iso/x.iso,hdc:cdrom,r", {"path": "/iso/x.iso", "format": "raw", "readonly": True}),
        ("/srv/b.qcow2,qcow2,xvdb,rw", {"path": "/srv/b.qcow2", "format": "qcow2", "readonly": False}),
        ("format=raw, vdev=xvda, access=rw, target=/dev/vg/vm",
         {"path": "/dev/vg/vm", "format": "raw", "readonly": False}),
    ],
)
def test_disk_forms(entry, expected):
    got = parse_disk(entry)
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("file:/a.img,xvda", "expected 'target,vdev,access'"),
        ("tap:vhd:/a.vhd,xvda,w", "not supported"),
        ("file:relative.img,xvda,w", "absolute path"),
        ("file:/a.img,xvda,x", "access must be"),
        ("bogus=1, target=/a", "unknown disk key 'bogus'"),
    ],
)
def test_disk_errors(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_disk(entry)


def test_vif_defaults_and_vifname():
    assert parse_vif("") == {"bridge": "xenbr0"}
    assert parse_vif("mac=00:16:3e:aa:bb:cc,bridge=br1,vifname=web1.0") == {
        "bridge": "br1", "mac": "00:16:3e:aa:bb:cc", "tap": "web1.0"}
    with pytest.raises(ValueError, match="unknown vif key 'colour'"):
        parse_vif("colour=blue")


def test_cmdline_overrides_root_and_extra_and_hvm_is_q35():
    cfg = parse_xen_config('name="h"\nbuilder="hvm"\ncmdline="root=/dev/xvda2"\nroot="x"\n'
                           "disk=['phy:/dev/sdb,hda,w']\n")
    assert cfg.params["append"] == "root=/dev/vda2"
    assert cfg.params["machine"] == "q35"


def issues_of(text):
    with pytest.raises(ConfigError) as info:
        parse_xen_config(text, "vm.cfg")
    return [(i.line, i.field, i.message) for i in info.value.issues]


def test_errors_name_file_line_and_key():
    issues = issues_of('name = "v"\nkernel = "/k"\nmemory = "lots"\nvcpus = 2\n'
                       "disk = ['file:/a,xvda']\n")
    assert issues == [
        (3, "memory", "expected an integer (MiB), got 'lots'"),
        (5, "disk[0]", "expected 'target,vdev,access' (e.g. 'file:/srv/vm.img,xvda,w'), "
                       "got 'file:/a,xvda'"),
    ]
    with pytest.raises(ConfigError, match=r"^vm.cfg:3: memory:"):
        parse_xen_config('name = "v"\nkernel = "/k"\nmemory = "lots"\n', "vm.cfg")


def test_expressions_are_not_executed():
    assert issues_of('name = "v"\nkernel = "/k"\nmemory = 256 * 2\n') == [
        (3, "memory", "only literal values (strings, numbers, lists) are supported")]
    assert issues_of('import os\nname="v"\nkernel="/k"\n')[0][:2] == (1, "")


def test_missing_name_and_kernel_and_syntax_error():
    assert issues_of("memory = 128\n") == [(None, "name", "required")]
    assert issues_of('name="v"\n') == [
        (None, "kernel", "a PV guest needs a kernel (pygrub/bootloader is not supported)")]
    assert issues_of('name = "v\n')[0][0] == 1


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_xen_config(tmp_path / "missing.cfg")
