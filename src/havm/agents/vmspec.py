"""A VM's definition for the QEMU agent, and the QEMU command line it implies.

``VmSpec`` is a frozen snapshot built from agent parameters (the YAML's
resource ``params``) or from a classic Xen config file (``xen_config.py``).
Both sides of a live migration must derive the *same* guest (memory, cpus,
machine, devices, MACs, kernel command line); only host-side settings
(``run_dir``, ``hostfwd`` ports, the incoming address) may differ.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from havm.errors import HavmError

MACHINES = ("microvm", "q35", "pc")
DISK_FORMATS = ("raw", "qcow2")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
UNIX_PATH_MAX = 107


class VmSpecError(HavmError):
    """A VM parameter is invalid; names the field and what was expected."""

    code = "vm-spec"
    exit_status = 3
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class DiskSpec:
    """One virtio disk. ``path`` is a file on shared storage or a block device."""

    path: str
    format: str = "raw"
    readonly: bool = False
    cache: str = "writeback"
    target: str = ""  # the name the guest config used (xvda, vdb...); informational
    # QEMU's image locking (auto|on|off). Its locks only bind processes of one
    # kernel (or storage that honours them): off models shared storage without
    # them (a SAN LUN), e.g. for a lab whose fault campaign must test havm, not QEMU.
    locking: str = "auto"


@dataclass(frozen=True)
class NicSpec:
    """One virtio NIC: a tap attached to ``bridge``, or QEMU user networking.

    ``tap`` defaults to a name derived from the VM name and index. ``user``
    networking is for single-host tests: ``hostfwd`` entries are QEMU's
    ``tcp:127.0.0.1:HOSTPORT-:GUESTPORT`` (host-side, may differ per node).
    """

    mac: str
    bridge: str | None = None
    tap: str | None = None
    user: bool = False
    hostfwd: tuple[str, ...] = ()


@dataclass(frozen=True)
class VmSpec:
    name: str
    memory_mb: int = 128
    cpus: int = 1
    machine: str = "microvm"
    cpu_model: str = "max"
    kernel: str | None = None
    initrd: str | None = None
    append: str = ""
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    # Host-side settings.
    run_dir: str = "/run/havm/qemu"
    qemu_binary: str = "qemu-system-x86_64"
    stop_timeout: float = 30.0
    migration_address: str = "0.0.0.0"
    migration_host: str | None = None  # address the source connects to; default migration_address
    migration_port: int = 0  # 0: QEMU picks a free port
    downtime_limit_ms: int = 300
    max_bandwidth: int = 1 << 30  # bytes/s
    migration_timeout: float = 120.0
    health_url: str | None = None
    extra_args: tuple[str, ...] = field(default=())

    @property
    def vm_dir(self) -> Path:
        return Path(self.run_dir) / self.name

    @property
    def qmp_socket(self) -> Path:
        return self.vm_dir / "qmp.sock"

    @property
    def observe_socket(self) -> Path:
        """A second QMP monitor for outside observers, so they never block the agent's."""
        return self.vm_dir / "observe.sock"

    @property
    def pidfile(self) -> Path:
        return self.vm_dir / "qemu.pid"

    @property
    def serial_log(self) -> Path:
        return self.vm_dir / "serial.log"

    def guest_abi(self) -> tuple[Any, ...]:
        """What must be equal on both sides of a live migration."""
        return (self.memory_mb, self.cpus, self.machine, self.cpu_model, self.append,
                tuple((d.format, d.readonly) for d in self.disks),
                tuple(n.mac for n in self.nics))


def default_mac(name: str, index: int) -> str:
    """A stable locally administered MAC (52:54:00 is QEMU's prefix) per VM and NIC."""
    digest = hashlib.sha256(f"{name}/{index}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def default_tap(name: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}/{index}".encode()).hexdigest()
    return f"hv{digest[:8]}n{index}"


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key, default)
    try:
        value = _parse_size_mb(raw) if key == "memory" else int(raw)
    except (TypeError, ValueError):
        raise VmSpecError(key, f"expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise VmSpecError(key, f"must be between {low} and {high}, got {value}")
    return value


def _parse_size_mb(raw: Any) -> int:
    """128, "128", "128M", "1G" -> MiB."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int):
        return raw
    text = str(raw).strip().upper().removesuffix("B").removesuffix("I")
    if text.endswith("G"):
        return int(float(text[:-1]) * 1024)
    if text.endswith("M"):
        return int(text[:-1])
    return int(text)


def _disk(raw: Any, index: int) -> DiskSpec:
    where = f"disks[{index}]"
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping) or not raw.get("path"):
        raise VmSpecError(where, "expected a path or a mapping with 'path'")
    path = str(raw["path"])
    fmt = str(raw.get("format") or ("qcow2" if path.endswith(".qcow2") else "raw"))
    if fmt not in DISK_FORMATS:
        raise VmSpecError(f"{where}.format", f"expected one of {', '.join(DISK_FORMATS)}, got {fmt!r}")
    cache = str(raw.get("cache", "writeback"))
    if cache not in ("writeback", "none", "writethrough", "directsync", "unsafe"):
        raise VmSpecError(f"{where}.cache", f"unknown cache mode {cache!r}")
    locking = str(raw.get("locking", "auto"))
    if locking not in ("auto", "on", "off"):
        raise VmSpecError(f"{where}.locking", f"expected auto, on or off, got {locking!r}")
    return DiskSpec(path=path, format=fmt, readonly=bool(raw.get("readonly", False)),
                    cache=cache, target=str(raw.get("target", "")), locking=locking)


def _nic(raw: Any, index: int, vm_name: str) -> NicSpec:
    where = f"nics[{index}]"
    if not isinstance(raw, Mapping):
        raise VmSpecError(where, "expected a mapping (bridge, mac, tap, user, hostfwd)")
    mac = str(raw.get("mac") or default_mac(vm_name, index)).lower()
    if not _MAC.match(mac):
        raise VmSpecError(f"{where}.mac", f"expected xx:xx:xx:xx:xx:xx, got {mac!r}")
    user = bool(raw.get("user", False))
    bridge = raw.get("bridge")
    if user and bridge:
        raise VmSpecError(where, "user networking and a bridge exclude each other")
    tap = raw.get("tap")
    if tap is not None and not _IFNAME.match(str(tap)):
        raise VmSpecError(f"{where}.tap", f"interface names have 1-15 of [A-Za-z0-9_.-], got {tap!r}")
    hostfwd = raw.get("hostfwd", ())
    if isinstance(hostfwd, str):
        hostfwd = (hostfwd,)
    if hostfwd and not user:
        raise VmSpecError(f"{where}.hostfwd", "only with user networking (user: true)")
    if not user and not bridge and tap is None:
        raise VmSpecError(where, "give a bridge (tap networking), a tap name, or user: true")
    return NicSpec(mac=mac, bridge=str(bridge) if bridge else None,
                   tap=str(tap) if tap else (None if user else default_tap(vm_name, index)),
                   user=user, hostfwd=tuple(str(h) for h in hostfwd))


def spec_from_params(params: Mapping[str, Any], default_name: str | None = None) -> VmSpec:
    """Build a VmSpec from agent parameters; raises VmSpecError naming the field.

    With ``xen_config: /etc/xen/vm1.cfg`` the guest comes from that file and
    the other parameters (run_dir, migration settings...) are applied on top.
    """
    if params.get("xen_config"):
        from havm.agents.xen_config import load_xen_config

        base = load_xen_config(str(params["xen_config"]))
        merged = {**base, **{k: v for k, v in params.items() if k != "xen_config"}}
        return spec_from_params(merged, default_name)
    name = str(params.get("name") or default_name or "")
    if not _NAME.match(name):
        raise VmSpecError("name", f"1-63 of [A-Za-z0-9_.-] starting alphanumeric, got {name!r}")
    machine = str(params.get("machine", "microvm"))
    if machine not in MACHINES:
        raise VmSpecError("machine", f"expected one of {', '.join(MACHINES)}, got {machine!r}")
    kernel = params.get("kernel")
    disks_raw = params.get("disks", ()) or ()
    if not isinstance(disks_raw, Sequence) or isinstance(disks_raw, str):
        raise VmSpecError("disks", "expected a list")
    disks = tuple(_disk(d, i) for i, d in enumerate(disks_raw))
    if not kernel and not disks:
        raise VmSpecError("kernel", "give a kernel (with initrd/append) or a bootable disk")
    if machine == "microvm" and not kernel:
        raise VmSpecError("kernel", "machine microvm has no firmware to boot a disk: give a kernel")
    nics_raw = params.get("nics", ()) or ()
    if not isinstance(nics_raw, Sequence) or isinstance(nics_raw, str):
        raise VmSpecError("nics", "expected a list")
    nics = tuple(_nic(n, i, name) for i, n in enumerate(nics_raw))
    spec = VmSpec(
        name=name,
        memory_mb=_int(params, "memory", 128, 96, 1 << 20),
        cpus=_int(params, "cpus", 1, 1, 64),
        machine=machine,
        cpu_model=str(params.get("cpu_model", "max")),
        kernel=str(kernel) if kernel else None,
        initrd=str(params["initrd"]) if params.get("initrd") else None,
        append=str(params.get("append", "")),
        disks=disks,
        nics=nics,
        run_dir=str(params.get("run_dir", "/run/havm/qemu")),
        qemu_binary=str(params.get("qemu_binary", "qemu-system-x86_64")),
        stop_timeout=float(params.get("stop_timeout", 30.0)),
        migration_address=str(params.get("migration_address", "0.0.0.0")),
        migration_host=str(params["migration_host"]) if params.get("migration_host") else None,
        migration_port=_int(params, "migration_port", 0, 0, 65535),
        downtime_limit_ms=_int(params, "downtime_limit_ms", 300, 1, 600_000),
        max_bandwidth=_int(params, "max_bandwidth", 1 << 30, 1 << 20, 1 << 40),
        migration_timeout=float(params.get("migration_timeout", 120.0)),
        health_url=str(params["health_url"]) if params.get("health_url") else None,
        extra_args=tuple(str(a) for a in params.get("extra_args", ()) or ()),
    )
    if len(str(spec.observe_socket)) > UNIX_PATH_MAX:
        raise VmSpecError("run_dir", f"QMP socket path {spec.observe_socket} is longer than "
                          f"{UNIX_PATH_MAX} bytes (a unix socket limit): use a shorter run_dir")
    return spec


def qemu_argv(spec: VmSpec, incoming: bool = False) -> list[str]:
    """The command line that starts ``spec`` (daemonized; ``incoming``: wait for migration)."""
    bus = "device" if spec.machine == "microvm" else "pci"
    argv = [
        spec.qemu_binary,
        "-name", f"guest={spec.name},debug-threads=off",
        "-accel", "tcg",
        "-machine", spec.machine,
        "-cpu", spec.cpu_model,
        "-smp", str(spec.cpus),
        "-m", str(spec.memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none",
    ]
    if spec.kernel:
        argv += ["-kernel", spec.kernel]
        if spec.initrd:
            argv += ["-initrd", spec.initrd]
        if spec.append:
            argv += ["-append", spec.append]
    for i, disk in enumerate(spec.disks):
        opts = f"file={disk.path},format={disk.format},if=none,id=disk{i},cache={disk.cache}"
        if disk.readonly:
            opts += ",readonly=on"
        if disk.locking != "auto":
            opts += f",file.locking={disk.locking}"
        argv += ["-drive", opts, "-device", f"virtio-blk-{bus},drive=disk{i}"]
        if i == 0 and not spec.kernel:
            argv[-1] += ",bootindex=0"
    for i, nic in enumerate(spec.nics):
        if nic.user:
            netdev = f"user,id=net{i}" + "".join(f",hostfwd={h}" for h in nic.hostfwd)
        else:
            netdev = f"tap,id=net{i},ifname={nic.tap},script=no,downscript=no"
        argv += ["-netdev", netdev, "-device", f"virtio-net-{bus},netdev=net{i},mac={nic.mac}"]
    argv += [
        "-chardev", f"file,id=serial0,path={spec.serial_log},append=on",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{spec.qmp_socket},server=on,wait=off",
        "-qmp", f"unix:{spec.observe_socket},server=on,wait=off",
        "-pidfile", str(spec.pidfile),
        "-daemonize",
    ]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv + list(spec.extra_args)
