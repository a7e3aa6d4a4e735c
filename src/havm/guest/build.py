"""Build havm's small test guest from Debian packages, with a cache.

The guest is an ELF ``vmlinux`` (from linux-image-amd64) plus an uncompressed
busybox-static initramfs. It boots under ``-accel tcg -machine microvm`` in ~3 s
and runs a counter with visible state (see ``rootfs/``):

* on boot it reads the counter from sector 0 of ``/dev/vda`` (zeros -> 0),
* every second it ticks, writes it back (fsync) and prints
  ``havm: boot_id=<uuid> counter=<n>`` on the serial console,
* ``busybox httpd`` on port 80 serves ``/cgi-bin/state`` (``boot_id=``/``counter=`` lines),
* ``boot_id`` is the kernel's random per-boot id, so a live migration (same
  boot_id, counter continues) is told apart from a restart (new boot_id,
  counter restored from disk),
* the ACPI power button (QMP ``system_powerdown``) powers it off cleanly.

``build_guest`` rebuilds only when an input changed (kernel, modules, busybox,
scripts, this builder's version): the inputs are hashed into a key stored
beside the outputs. Outputs are written to temporary names and renamed, so
concurrent builders never expose a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from havm.guest.cpio import CpioWriter
from havm.guest.vmlinux import GuestBuildError, extract_vmlinux, find_debian_kernel, kernel_release

# Bump when the layout of the image changes in a way the input hash cannot see.
BUILDER_VERSION = "1"

#: Modules /etc/rc.sysinit loads (dependencies are added from modules.dep).
WANTED_MODULES = (
    "virtio_mmio",  # microvm's devices
    "virtio_pci",  # q35/pc machines
    "virtio_blk",
    "virtio_net",
    "button",  # ACPI power button -> input event
    "evdev",  # /dev/input/event* for acpid
)

#: (path in the guest, script in rootfs/, mode)
SCRIPTS = (
    ("/init", "init.sh", 0o755),
    ("/etc/rc.sysinit", "rc-sysinit.sh", 0o755),
    ("/etc/rc.shutdown", "rc-shutdown.sh", 0o755),
    ("/bin/havm-ticker", "ticker.sh", 0o755),
    ("/www/cgi-bin/state", "state-cgi.sh", 0o755),
    ("/etc/acpi/PWRF/00000080", "power-button.sh", 0o755),
)

INITTAB = """\
::sysinit:/etc/rc.sysinit
::respawn:/bin/havm-ticker
::respawn:/bin/acpid -f -l /run/acpid.log -p /run/acpid.pid
::respawn:/bin/httpd -f -p 80 -h /www
::ctrlaltdel:/bin/poweroff
::shutdown:/etc/rc.shutdown
"""

GUEST_HTTP_PORT = 80
STATE_PATH = "/cgi-bin/state"


@dataclass(frozen=True)
class GuestImage:
    """A built guest: boot it with ``-kernel vmlinux -initrd initramfs``."""

    vmlinux: Path
    initramfs: Path
    kernel_release: str
    key: str


@dataclass(frozen=True)
class GuestInputs:
    """Where the builder takes its inputs from (Debian's paths by default)."""

    vmlinuz: Path
    modules_dir: Path
    busybox: Path


def default_inputs() -> GuestInputs:
    vmlinuz = find_debian_kernel()
    release = kernel_release(vmlinuz)
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise GuestBuildError("no /bin/busybox: install the Debian package busybox-static")
    return GuestInputs(vmlinuz, Path("/lib/modules") / release, busybox)


def default_guest_dir() -> Path:
    """Shared cache of the built guest: $HAVM_GUEST_DIR or /var/tmp/havm-guest."""
    return Path(os.environ.get("HAVM_GUEST_DIR", "/var/tmp/havm-guest"))


def resolve_modules(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """Module files for ``wanted`` plus their dependencies, in load order."""
    dep_file = modules_dir / "modules.dep"
    try:
        lines = dep_file.read_text().splitlines()
    except OSError as exc:
        raise GuestBuildError(f"cannot read {dep_file}: {exc.strerror}") from exc
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in lines:
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    ordered: list[str] = []

    def visit(path: str, trail: tuple[str, ...]) -> None:
        if path in ordered or path in trail:
            return
        for dep in deps.get(path, []):
            visit(dep, (*trail, path))
        ordered.append(path)

    for name in wanted:
        if name not in by_name:
            raise GuestBuildError(f"module {name} not found in {dep_file}")
        visit(by_name[name], ())
    return [modules_dir / p for p in ordered]


def _script(name: str) -> bytes:
    return resources.files("havm.guest").joinpath("rootfs", name).read_bytes()


def _applets(busybox: Path) -> list[str]:
    import subprocess

    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    return sorted(a for a in out.stdout.split() if a and "/" not in a and a != "busybox")


def _input_key(inputs: GuestInputs, modules: list[Path]) -> str:
    h = hashlib.sha256(f"havm-guest {BUILDER_VERSION}\n{INITTAB}".encode())
    for path in (inputs.vmlinuz, inputs.busybox, *modules):
        h.update(f"\n{path}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for guest_path, name, mode in SCRIPTS:
        h.update(f"\n{guest_path} {name} {mode:o}\n".encode() + _script(name))
    return h.hexdigest()[:32]


def make_initramfs(inputs: GuestInputs, modules: list[Path]) -> CpioWriter:
    cpio = CpioWriter()
    for d in ("/bin", "/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/etc/acpi",
              "/etc/acpi/PWRF", "/lib", "/lib/modules", "/www", "/www/cgi-bin", "/root"):
        cpio.directory(d, 0o1777 if d == "/tmp" else 0o755)
    for link in ("/sbin", "/usr/bin", "/usr/sbin"):
        if link == "/usr/bin":
            cpio.directory("/usr")
        cpio.symlink(link, "/bin")
    # The kernel opens /dev/console for /init before devtmpfs is mounted.
    cpio.char_device("/dev/console", 5, 1)
    cpio.file("/bin/busybox", inputs.busybox.read_bytes(), 0o755)
    for applet in _applets(inputs.busybox):
        cpio.symlink(f"/bin/{applet}", "busybox")
    names = []
    for mod in modules:
        name = mod.name.split(".ko")[0]
        names.append(name)
        cpio.file(f"/lib/modules/{name}.ko", mod.read_bytes())
    cpio.file("/etc/modules", ("\n".join(names) + "\n").encode())
    cpio.file("/etc/inittab", INITTAB.encode())
    cpio.file("/etc/hostname", b"havm-guest\n")
    for guest_path, name, mode in SCRIPTS:
        cpio.file(guest_path, _script(name), mode)
    return cpio


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_guest(out_dir: Path | str | None = None, inputs: GuestInputs | None = None) -> GuestImage:
    """Build (or reuse) the guest in ``out_dir``; returns the paths to boot."""
    out = Path(out_dir) if out_dir is not None else default_guest_dir()
    inputs = inputs or default_inputs()
    modules = resolve_modules(inputs.modules_dir, WANTED_MODULES)
    key = _input_key(inputs, modules)
    release = kernel_release(inputs.vmlinuz)
    image = GuestImage(out / "vmlinux", out / "initramfs.cpio", release, key)
    manifest = out / "guest.json"
    try:
        if (json.loads(manifest.read_text()).get("key") == key
                and image.vmlinux.exists() and image.initramfs.exists()):
            return image
    except (OSError, ValueError):
        pass
    out.mkdir(parents=True, exist_ok=True)
    vmlinux = extract_vmlinux(inputs.vmlinuz.read_bytes())
    _atomic_write(image.vmlinux, lambda f: f.write(vmlinux))
    _atomic_write(image.initramfs, make_initramfs(inputs, modules).write)
    record = {"key": key, "kernel_release": release, "vmlinuz": str(inputs.vmlinuz),
              "modules": [m.name for m in modules]}
    _atomic_write(manifest, lambda f: f.write(json.dumps(record, indent=2).encode()))
    return image
