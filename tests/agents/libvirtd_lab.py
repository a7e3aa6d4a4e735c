"""A private libvirtd for tests: its own mount namespace (and optionally its own
network and UTS namespaces), so it touches nothing of the host's libvirt.

Its state, config and run directories are bind-mounted from a temp dir, and
/etc/passwd + /etc/group are copies with the libvirt-qemu user libvirtd insists
on (even with user="root"). The host only gains the empty mount points
/etc/libvirt, /run/libvirt, /var/{lib,cache,log}/libvirt (what the
libvirt-daemon package creates anyway). Clients reach it by socket path:
``qemu:///system?socket=<dir>/run/libvirt-sock``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

import pytest

QEMU_CONF = """\
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
"""
BINDS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
         "etc": "/etc/libvirt", "log": "/var/log/libvirt", "passwd": "/etc/passwd", "group": "/etc/group"}


def require_libvirtd() -> None:
    if os.geteuid() != 0:
        pytest.skip("a system libvirtd needs root")
    for binary in ("libvirtd", "qemu-system-x86_64", "unshare"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed (apt-get install --no-install-recommends libvirt-daemon "
                        "libvirt-daemon-driver-qemu qemu-system-x86)")


@dataclass
class Libvirtd:
    top: str
    proc: subprocess.Popen
    log: object

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.top}/run/libvirt-sock"

    def stop(self) -> None:
        """Destroy every domain, then end the daemon (by pid) and remove its directory."""
        try:
            import libvirt

            libvirt.registerErrorHandler(lambda ctx, err: None, None)
            c = libvirt.open(self.uri)
            for dom in c.listAllDomains():
                if dom.isActive():
                    dom.destroy()
            c.close()
        except Exception:  # noqa: BLE001 - the daemon may be gone already; processes are checked by tests
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.top, ignore_errors=True)


def start_libvirtd(netns: str | None = None, address: str | None = None, hostname: str | None = None) -> Libvirtd:
    """Start a private libvirtd; with ``address`` it also listens on TCP 16509 (no auth) there,
    and takes incoming migrations on that address (for peer-to-peer live migration)."""
    top = tempfile.mkdtemp(prefix="havm-lv-")  # short: a unix socket path has at most 107 bytes
    for sub in ("run", "lib", "cache", "etc", "log"):
        os.makedirs(f"{top}/{sub}")
    qemu_conf = QEMU_CONF
    conf = f'host_uuid = "{uuid.uuid4()}"\n'
    if address:
        qemu_conf += f'migration_address = "{address}"\nmigration_host = "{address}"\n'
        conf += f'listen_tls = 0\nlisten_tcp = 1\nauth_tcp = "none"\nlisten_addr = "{address}"\n'
    with open(f"{top}/etc/qemu.conf", "w") as f:
        f.write(qemu_conf)
    with open(f"{top}/etc/libvirtd.conf", "w") as f:
        f.write(conf)
    with open("/etc/passwd") as src, open(f"{top}/passwd", "w") as dst:
        dst.write(src.read() + "libvirt-qemu:x:64055:64055:Libvirt Qemu:/nonexistent:/usr/sbin/nologin\n")
    with open("/etc/group") as src, open(f"{top}/group", "w") as dst:
        dst.write(src.read() + "libvirt-qemu:x:64055:\n")
    dirs = " ".join(v for k, v in BINDS.items() if k not in ("passwd", "group"))
    steps = [f"mkdir -p {dirs}"] + [f"mount --bind {top}/{k} {v}" for k, v in BINDS.items()]
    if hostname:
        steps.append(f"hostname {hostname}")
    steps.append(f"exec libvirtd --pid-file {top}/libvirtd.pid" + (" --listen" if address else ""))
    argv = ["unshare", "-m", "--propagation", "private"] + (["-u"] if hostname else []) + [
        "sh", "-c", " && ".join(steps)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    log = open(f"{top}/libvirtd.log", "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    daemon = Libvirtd(top, proc, log)
    for _ in range(200):  # bounded: 20 s
        if os.path.exists(f"{top}/run/libvirt-sock") or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not os.path.exists(f"{top}/run/libvirt-sock"):
        with open(f"{top}/libvirtd.log") as f:
            text = f.read()[-500:]
        daemon.stop()
        pytest.skip(f"libvirtd did not start: {text}")
    return daemon


def qemu_pids(name: str) -> list[int]:
    """Pids of the qemu processes running libvirt domain ``name``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"qemu-system-x86_64") and f"guest={name},".encode() in b" ".join(argv):
                pids.append(int(entry))
    return pids
