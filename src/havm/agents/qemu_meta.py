"""OCF meta-data of the ``qemu`` agent (parameters as ``spec_from_params`` reads them)."""

_PARAMS = (
    ("name", "string", "", "VM name (default: the resource id)"),
    ("memory", "string", "128", "Memory in MiB, or with a unit: 512M, 1G"),
    ("cpus", "integer", "1", "Virtual CPUs"),
    ("machine", "string", "microvm", "QEMU machine: microvm, q35, pc"),
    ("kernel", "string", "", "Kernel to boot directly (ELF vmlinux for microvm)"),
    ("initrd", "string", "", "Initramfs"),
    ("append", "string", "", "Kernel command line"),
    ("disks", "list", "", "Disks on shared storage: path, format (raw|qcow2), readonly, cache, "
                          "locking (auto|on|off)"),
    ("nics", "list", "", "NICs: bridge, mac, tap, or user: true with hostfwd"),
    ("xen_config", "string", "", "Read the VM from a classic xm/xl config file"),
    ("run_dir", "string", "/run/havm/qemu", "Per-node directory of pidfile, QMP socket, serial log"),
    ("stop_timeout", "integer", "30", "Seconds to wait for an ACPI powerdown before quitting"),
    ("migration_address", "string", "0.0.0.0", "Address the incoming QEMU listens on"),
    ("migration_host", "string", "", "Address the source connects to (default migration_address)"),
    ("migration_port", "integer", "0", "Incoming port (0: any free port)"),
    ("downtime_limit_ms", "integer", "300", "QEMU downtime-limit for live migration"),
    ("max_bandwidth", "integer", "1073741824", "QEMU max-bandwidth in bytes/s"),
    ("migration_timeout", "integer", "120", "Cancel a migration not done after this many seconds"),
    ("health_url", "string", "", "HTTP URL the guest must answer for monitor to succeed"),
)


def _param(name: str, kind: str, default: str, desc: str) -> str:
    return (f'    <parameter name="{name}"><content type="{kind}" default="{default}"/>\n'
            f'      <shortdesc lang="en">{desc}</shortdesc></parameter>\n')


META_DATA = (
    '<?xml version="1.0"?>\n<resource-agent name="qemu" version="1.0">\n  <version>1.0</version>\n'
    '  <shortdesc lang="en">A QEMU virtual machine driven over QMP</shortdesc>\n'
    '  <longdesc lang="en">Starts QEMU daemonized with a QMP socket, stops it with an ACPI '
    'powerdown then quit then SIGKILL, monitors process and run state, and live-migrates '
    'over TCP in phases that always leave one running copy.</longdesc>\n  <parameters>\n'
    + "".join(_param(*p) for p in _PARAMS)
    + "  </parameters>\n  <actions>\n"
    + "".join(f'    <action name="{a}" timeout="{t}s"/>\n' for a, t in (
        ("start", 60), ("stop", 60), ("monitor", 20), ("migrate_to", 180),
        ("migrate_from", 60), ("meta-data", 5), ("validate-all", 20)))
    + "  </actions>\n</resource-agent>\n"
)
