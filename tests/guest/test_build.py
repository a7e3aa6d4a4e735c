import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from havm.guest.build import GuestInputs, build_guest, resolve_modules
from havm.guest.cmdline import guest_append
from havm.guest.cpio import CpioWriter
from havm.guest.state import parse_serial_states, parse_state
from havm.guest.vmlinux import GuestBuildError, extract_vmlinux

FAKE_ELF = b"\x7fELF" + bytes(range(256)) * 40


def fake_bzimage(payload: bytes = FAKE_ELF) -> bytes:
    # setup code, a decoy magic that does not decompress, then the real payload
    return b"MZ" + b"\0" * 500 + b"\xfd7zXZ\x00garbage" + lzma.compress(payload) + b"\0" * 64


def test_extract_finds_the_payload_past_decoys():
    assert extract_vmlinux(fake_bzimage()) == FAKE_ELF
    assert extract_vmlinux(FAKE_ELF) == FAKE_ELF


def test_extract_rejects_non_elf_payloads():
    with pytest.raises(GuestBuildError, match="no xz/lzma/gzip payload"):
        extract_vmlinux(fake_bzimage(b"not an elf"))


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_cpio_archive_is_readable_by_gnu_cpio(tmp_path):
    w = CpioWriter()
    w.directory("/etc")
    w.file("/etc/hello", b"hi\n", 0o644)
    w.symlink("/sbin", "/bin")
    w.char_device("/console", 5, 1)
    archive = tmp_path / "a.cpio"
    with archive.open("wb") as f:
        w.write(f)
    listing = subprocess.run(["cpio", "-itv"], stdin=archive.open("rb"), capture_output=True,
                             text=True, check=True).stdout
    assert "etc/hello" in listing and "sbin -> /bin" in listing and "5,   1" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "etc/hello"], cwd=out, stdin=archive.open("rb"),
                   capture_output=True, check=True)
    assert (out / "etc" / "hello").read_bytes() == b"hi\n"


def fake_modules(root: Path) -> Path:
    mods = root / "lib/modules/9.9.9-amd64"
    for rel in ("kernel/a/virtio.ko", "kernel/a/virtio_ring.ko", "kernel/a/virtio_mmio.ko",
                "kernel/a/virtio_pci.ko", "kernel/b/virtio_blk.ko", "kernel/c/failover.ko",
                "kernel/c/virtio_net.ko", "kernel/d/button.ko", "kernel/d/evdev.ko"):
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(rel.encode())
    (mods / "modules.dep").write_text(
        "kernel/a/virtio.ko:\nkernel/a/virtio_ring.ko:\n"
        "kernel/a/virtio_mmio.ko: kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"
        "kernel/a/virtio_pci.ko: kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"
        "kernel/b/virtio_blk.ko: kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"
        "kernel/c/failover.ko:\n"
        "kernel/c/virtio_net.ko: kernel/c/failover.ko kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"
        "kernel/d/button.ko:\nkernel/d/evdev.ko:\n")
    return mods


def test_modules_come_in_dependency_order(tmp_path):
    mods = fake_modules(tmp_path)
    names = [p.name for p in resolve_modules(mods, ("virtio_net", "virtio_blk"))]
    assert names == ["failover.ko", "virtio.ko", "virtio_ring.ko", "virtio_net.ko", "virtio_blk.ko"]
    with pytest.raises(GuestBuildError, match="module nosuch not found"):
        resolve_modules(mods, ("nosuch",))


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static not installed")
def test_build_is_cached_until_an_input_changes(tmp_path):
    kernel = tmp_path / "vmlinuz-9.9.9-amd64"
    kernel.write_bytes(fake_bzimage())
    inputs = GuestInputs(kernel, fake_modules(tmp_path), Path("/bin/busybox"))
    out = tmp_path / "out"
    first = build_guest(out, inputs)
    assert first.vmlinux.read_bytes() == FAKE_ELF
    assert first.kernel_release == "9.9.9-amd64"
    cpio = first.initramfs.read_bytes()
    assert cpio.startswith(b"070701") and b"havm-ticker" in cpio and b"virtio_net" in cpio
    stamp = first.initramfs.stat().st_mtime_ns
    again = build_guest(out, inputs)
    assert again == first and first.initramfs.stat().st_mtime_ns == stamp
    kernel.write_bytes(fake_bzimage(FAKE_ELF + b"v2"))
    third = build_guest(out, inputs)
    assert third.key != first.key and third.vmlinux.read_bytes() == FAKE_ELF + b"v2"


def test_append_and_state_parsing():
    line = guest_append(ip="10.77.0.50/24", gw="10.77.0.1", hostname="vm1", khz=2_000_000)
    assert "lpj=8000000 tsc_early_khz=2000000" in line
    assert "havm.ip=10.77.0.50/24 havm.gw=10.77.0.1 havm.hostname=vm1" in line
    with pytest.raises(ValueError, match="CIDR"):
        guest_append(ip="10.77.0.50")
    bid = "3120125f-3b3c-4974-8a43-e90e917289b5"
    assert parse_state(f"boot_id={bid}\ncounter=7\n").counter == 7
    states = parse_serial_states(f"noise\nhavm: up boot_id={bid} counter=3 ip=none\n"
                                 f"havm: boot_id={bid} counter=4\n")
    assert [s.counter for s in states] == [3, 4]
    with pytest.raises(ValueError):
        parse_state("hello")
