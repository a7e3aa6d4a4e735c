"""Read a classic Xen ``xm``/``xl`` domain config file into QEMU agent parameters.

Old setups keep one file per VM (``/etc/xen/vm1.cfg``)::

    name = "vm1"
    memory = 512
    vcpus = 2
    kernel = "/boot/vmlinuz-guest"
    ramdisk = "/boot/initrd-guest"
    root = "/dev/xvda1 ro"
    extra = "console=hvc0"
    disk = ['file:/srv/vm1.img,xvda,w', 'phy:/dev/drbd1,xvdb,w']
    vif = ['mac=00:16:3e:00:00:01, bridge=xenbr0']

Both syntaxes are Python-compatible literals, so the file is parsed with
``ast`` and only literal assignments are accepted (nothing is executed).
Every problem is reported with file, line and key. Keys that make no sense
under QEMU (``on_crash``, ``vnc``, ``uuid``...) are ignored and listed in
``XenConfig.ignored``. Xen's ``xvdX``/``hdX``/``sdX`` names become virtio
``vdX`` in ``root=``: disks are attached in the order listed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from havm.errors import ConfigError, ConfigIssue

_KNOWN = {"name", "memory", "vcpus", "kernel", "ramdisk", "extra", "root", "cmdline",
          "disk", "vif", "builder", "type"}
_TARGET_PREFIXES = (  # (prefix, format)
    ("tap2:tapdisk:aio:", "raw"), ("tap:tapdisk:aio:", "raw"), ("tap:aio:", "raw"),
    ("tap:qcow2:", "qcow2"), ("tap2:tapdisk:qcow2:", "qcow2"), ("qcow2:", "qcow2"),
    ("file:", "raw"), ("phy:", "raw"), ("aio:", "raw"), ("raw:", "raw"),
)
_UNSUPPORTED_PREFIXES = ("tap:vhd:", "vhd:", "tap:qcow:", "iscsi:", "drbd:", "nbd:")
_DISK_KEYS = {"target", "format", "vdev", "access", "devtype", "script", "backendtype"}
_VIF_KEYS = {"mac", "bridge", "ip", "vifname", "model", "type", "script", "backend", "rate"}


@dataclass(frozen=True)
class XenConfig:
    params: dict[str, Any]
    ignored: tuple[str, ...] = field(default=())


def _issue(path: str, line: int | None, key: str, message: str) -> ConfigIssue:
    return ConfigIssue(file=path, line=line, field=key, message=message)


def _xvd_to_vd(text: str) -> str:
    for old in ("/dev/xvd", "/dev/hd", "/dev/sd"):
        text = text.replace(old, "/dev/vd")
    return text


def parse_disk(spec: str) -> dict[str, Any]:
    """One ``disk`` entry -> {path, format, readonly, target}; raises ValueError."""
    parts = [p.strip() for p in spec.split(",")]
    values: dict[str, str] = {}
    if any("=" in p for p in parts):
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep:
                values.setdefault("target", part)  # xl: a bare last item is the target
                continue
            if key.strip() not in _DISK_KEYS:
                raise ValueError(f"unknown disk key {key.strip()!r} in {spec!r}")
            values[key.strip()] = value.strip()
    elif len(parts) == 3:
        values = dict(zip(("target", "vdev", "access"), parts, strict=True))
    elif len(parts) == 4:
        values = dict(zip(("target", "format", "vdev", "access"), parts, strict=True))
    else:
        raise ValueError(f"expected 'target,vdev,access' (e.g. 'file:/srv/vm.img,xvda,w'), got {spec!r}")
    target = values.get("target", "")
    fmt = values.get("format", "")
    for prefix in _UNSUPPORTED_PREFIXES:
        if target.startswith(prefix):
            raise ValueError(f"disk type {prefix!r} is not supported by the QEMU agent: {spec!r}")
    for prefix, implied in _TARGET_PREFIXES:
        if target.startswith(prefix):
            target, fmt = target[len(prefix):], fmt or implied
            break
    if not target.startswith("/"):
        raise ValueError(f"disk target must be an absolute path, got {target!r} in {spec!r}")
    fmt = fmt or ("qcow2" if target.endswith(".qcow2") else "raw")
    if fmt not in ("raw", "qcow2"):
        raise ValueError(f"disk format {fmt!r} not supported (raw, qcow2): {spec!r}")
    vdev = values.get("vdev", "")
    cdrom = vdev.endswith(":cdrom") or values.get("devtype") == "cdrom"
    access = values.get("access", "w").lower()
    if access not in ("w", "rw", "w!", "r", "ro"):
        raise ValueError(f"disk access must be w, rw, w!, r or ro, got {access!r} in {spec!r}")
    return {"path": target, "format": fmt, "readonly": cdrom or access in ("r", "ro"),
            "target": vdev.removesuffix(":cdrom")}


def parse_vif(spec: str) -> dict[str, Any]:
    """One ``vif`` entry -> {mac, bridge, tap}; raises ValueError."""
    values: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value items, got {part!r} in {spec!r}")
        if key.strip() not in _VIF_KEYS:
            raise ValueError(f"unknown vif key {key.strip()!r} in {spec!r}")
        values[key.strip()] = value.strip()
    nic: dict[str, Any] = {"bridge": values.get("bridge", "xenbr0")}
    if "mac" in values:
        nic["mac"] = values["mac"].lower()
    if "vifname" in values:
        nic["tap"] = values["vifname"]
    return nic


def parse_xen_config(text: str, path: str = "<xen config>") -> XenConfig:
    """Parse the file's text; raises ConfigError with every issue found."""
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise ConfigError([_issue(path, exc.lineno, "", f"syntax error: {exc.msg}")]) from None
    issues: list[ConfigIssue] = []
    values: dict[str, tuple[Any, int]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            issues.append(_issue(path, node.lineno, "", "expected 'key = value'"))
            continue
        key = node.targets[0].id
        try:
            values[key] = (ast.literal_eval(node.value), node.lineno)
        except (ValueError, SyntaxError):
            issues.append(_issue(path, node.lineno, key,
                                 "only literal values (strings, numbers, lists) are supported"))
    params: dict[str, Any] = {}

    def get(key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in values:
            return None
        value, line = values[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            issues.append(_issue(path, line, key, f"expected {what}, got {value!r}"))
            return None
        return value

    name = get("name", str, "a string")
    if name is None and "name" not in values:
        issues.append(_issue(path, None, "name", "required"))
    params["name"] = name
    memory = get("memory", int, "an integer (MiB)")
    if memory is not None:
        params["memory"] = memory
    vcpus = get("vcpus", int, "an integer")
    if vcpus is not None:
        params["cpus"] = vcpus
    builder = get("builder", str, "a string") or get("type", str, "a string") or "pv"
    params["machine"] = "q35" if builder == "hvm" else "microvm"
    kernel = get("kernel", str, "a path")
    if kernel:
        params["kernel"] = kernel
    ramdisk = get("ramdisk", str, "a path")
    if ramdisk:
        params["initrd"] = ramdisk
    cmdline = get("cmdline", str, "a string")
    root = get("root", str, "a string")
    extra = get("extra", str, "a string")
    if cmdline is not None:
        params["append"] = _xvd_to_vd(cmdline)
    else:
        args = ([f"root={_xvd_to_vd(root)}"] if root else []) + ([extra] if extra else [])
        params["append"] = " ".join(args)
    for key, parser, out in (("disk", parse_disk, "disks"), ("vif", parse_vif, "nics")):
        entries = get(key, list, "a list of strings")
        if entries is None:
            continue
        line = values[key][1]
        parsed = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, str):
                issues.append(_issue(path, line, f"{key}[{i}]", f"expected a string, got {entry!r}"))
                continue
            try:
                parsed.append(parser(entry))
            except ValueError as exc:
                issues.append(_issue(path, line, f"{key}[{i}]", str(exc)))
        params[out] = parsed
    if params["machine"] == "microvm" and "kernel" not in params and not issues:
        issues.append(_issue(path, None, "kernel",
                             "a PV guest needs a kernel (pygrub/bootloader is not supported)"))
    if issues:
        raise ConfigError(issues)
    return XenConfig(params=params, ignored=tuple(sorted(k for k in values if k not in _KNOWN)))


def load_xen_config(path: str | Path) -> dict[str, Any]:
    """Read ``path`` and return QEMU agent parameters; raises ConfigError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([_issue(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_xen_config(text, str(path)).params
