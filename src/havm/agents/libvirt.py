"""``libvirt``: a VM run by libvirt (KVM, QEMU, Xen) through libvirt-python.

Parameters:

* ``uri`` (default ``qemu:///system``): the local libvirt connection;
* ``xml`` (domain XML text) or ``config`` (path of a domain XML file, e.g. on
  shared storage): the definition, (re)defined on every start while the
  domain is stopped; without either the domain must already be defined here;
* ``domain``: the domain name (default: ``<name>`` of the XML, else the
  resource id);
* ``shutdown_timeout`` (default 60): seconds stop waits for an ACPI shutdown
  before it destroys (powers off) the domain;
* ``migrate_dest_uri`` (default ``qemu+tcp://{host}/system``): how the source's
  libvirtd reaches the target's, ``{host}`` being the target's
  ``migration_host`` (node-local parameter) or its node name.

Every start sets autostart off: only the cluster decides where a domain runs,
and a libvirtd restart must never start a second copy.

Migration phases (base class order): ``migrate_check`` on the source only
reads; ``migrate_prepare`` on the target refuses if the domain already runs
there and returns the destination URI; ``migrate_to`` calls migrateToURI3 with
LIVE | PEER2PEER | PERSIST_DEST: libvirt itself moves the guest and, on
success, shuts the source copy off (a source monitor then reports NOT_RUNNING;
the following stop is a no-op), on failure resumes it and removes the target's
copy; ``migrate_from`` on the target confirms it runs; ``migrate_abort``
destroys a copy on the target; ``migrate_recover`` resumes or restarts the
source copy. Drivers without migration (the test driver) make migrate_to
return ERR_UNIMPLEMENTED, with the guest still running on the source.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress

DEFAULT_URI = "qemu:///system"
DEFAULT_DEST_URI = "qemu+tcp://{host}/system"

# virDomainState values (libvirt ABI; fixed)
STATE_NAMES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
               6: "crashed", 7: "pmsuspended"}
PAUSED_MIGRATION = 2  # VIR_DOMAIN_PAUSED_MIGRATION
PAUSED_USER = 1
PAUSED_SAVE = 3

_META = """<?xml version="1.0"?>
<resource-agent name="libvirt" version="1.0">
  <version>1.0</version>
  <shortdesc lang="en">A libvirt domain (KVM, QEMU, Xen)</shortdesc>
  <longdesc lang="en">Defines, starts, shuts down (ACPI, then destroy) and watches a libvirt domain,
and live-migrates it peer to peer.</longdesc>
  <parameters>
    <parameter name="uri"><content type="string" default="qemu:///system"/>
      <shortdesc lang="en">libvirt connection URI</shortdesc></parameter>
    <parameter name="xml"><content type="string"/>
      <shortdesc lang="en">Domain XML</shortdesc></parameter>
    <parameter name="config"><content type="string"/>
      <shortdesc lang="en">Path of a domain XML file</shortdesc></parameter>
    <parameter name="domain" unique="1"><content type="string"/>
      <shortdesc lang="en">Domain name (default: the XML's name)</shortdesc></parameter>
    <parameter name="shutdown_timeout"><content type="integer" default="60"/>
      <shortdesc lang="en">Seconds to wait for a graceful shutdown before destroy</shortdesc></parameter>
    <parameter name="migrate_dest_uri"><content type="string" default="qemu+tcp://{host}/system"/>
      <shortdesc lang="en">Destination libvirt URI template for live migration</shortdesc></parameter>
    <parameter name="migration_host"><content type="string"/>
      <shortdesc lang="en">This node's address as a migration target</shortdesc></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="90s"/>
    <action name="stop" timeout="90s"/>
    <action name="monitor" timeout="30s" interval="10s"/>
    <action name="migrate_to" timeout="600s"/>
    <action name="migrate_from" timeout="60s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="20s"/>
  </actions>
</resource-agent>
"""


class LvError(Exception):
    def __init__(self, rc: OCF, message: str) -> None:
        super().__init__(message)
        self.rc = rc


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as e:
        raise LvError(OCF.ERR_INSTALLED, f"libvirt-python is not installed: {e}") from None
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors come back as exceptions
    return libvirt


def xml_name(xml: str, where: str) -> str:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise LvError(OCF.ERR_CONFIGURED, f"{where} is not valid XML: {e}") from None
    name = (root.findtext("name") or "").strip()
    if root.tag != "domain" or not name:
        raise LvError(OCF.ERR_CONFIGURED, f"{where} must be a <domain> with a <name>")
    return name


class LibvirtAgent(Agent):
    kind = "libvirt"

    def meta_data(self) -> str:
        return _META

    # -- parameters --
    @property
    def uri(self) -> str:
        return str(self.params.get("uri") or DEFAULT_URI)

    def definition(self) -> str | None:
        """The domain XML from ``xml`` or ``config`` (None when neither is given)."""
        if self.params.get("xml") and self.params.get("config"):
            raise LvError(OCF.ERR_CONFIGURED, "give either parameter 'xml' or 'config', not both")
        if self.params.get("xml"):
            return str(self.params["xml"])
        if self.params.get("config"):
            path = str(self.params["config"])
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                raise LvError(OCF.ERR_INSTALLED, f"parameter 'config': {path} does not exist on this node") from None
            except OSError as e:
                raise LvError(OCF.ERR_INSTALLED, f"parameter 'config': cannot read {path}: {e.strerror}") from None
        return None

    def name(self) -> str:
        xml = self.definition()
        given = str(self.params.get("domain") or "").strip()
        if xml is not None:
            in_xml = xml_name(xml, "parameter 'xml'" if self.params.get("xml") else f"{self.params['config']}")
            if given and given != in_xml:
                raise LvError(OCF.ERR_CONFIGURED, f"parameter 'domain' ({given}) differs from the "
                              f"XML's <name> ({in_xml})")
            return in_xml
        return given or self.resource_id

    def shutdown_timeout(self) -> float:
        try:
            value = float(self.params.get("shutdown_timeout", 60))
        except (TypeError, ValueError):
            value = -1
        if not 0 <= value <= 86400:
            raise LvError(OCF.ERR_CONFIGURED, "parameter 'shutdown_timeout' must be 0..86400 seconds, got "
                          f"{self.params.get('shutdown_timeout')!r}")
        return value

    # -- libvirt --
    @contextmanager
    def connect(self) -> Iterator[Any]:
        libvirt = _libvirt()
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise LvError(OCF.ERR_GENERIC, f"cannot connect to libvirt at {self.uri}: {e}") from None
        try:
            yield conn
        finally:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def lookup(self, conn: Any, name: str) -> Any | None:
        libvirt = _libvirt()
        try:
            return conn.lookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def _guard(self, action: str, log: ActionLog, body: Any) -> AgentResult:
        """Run ``body(log)``; turn parameter and libvirt errors into results that say what failed."""
        try:
            libvirt = _libvirt()
        except LvError as e:
            log(str(e))
            return log.result(e.rc)
        try:
            return body(log)  # type: ignore[no-any-return]
        except LvError as e:
            log(f"libvirt {self.resource_id}: {e}")
            return log.result(e.rc)
        except libvirt.libvirtError as e:
            log(f"libvirt {self.resource_id}: {action} on {self.uri} failed: {e}")
            return log.result(OCF.ERR_GENERIC)

    @staticmethod
    def state_of(dom: Any) -> tuple[int, int]:
        state, reason = dom.state()
        return int(state), int(reason)

    # -- actions --
    def validate(self) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            self.shutdown_timeout()
            with self.connect() as conn:
                if self.definition() is None and self.lookup(conn, name) is None:
                    raise LvError(OCF.ERR_INSTALLED, f"domain {name} is not defined at {self.uri} and "
                                  "neither 'xml' nor 'config' is given")
            log(f"domain {name} at {self.uri}")
            return log.result(OCF.SUCCESS)

        return self._guard("validate", ActionLog(), body)

    def monitor(self) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is None:
                    log(f"domain {name} is not defined here")
                    return log.result(OCF.NOT_RUNNING, {"state": "undefined"})
                state, reason = self.state_of(dom)
            rc = self._monitor_rc(state, reason)
            text = STATE_NAMES.get(state, f"state {state}")
            if state == 3 and reason == PAUSED_MIGRATION:
                text = "paused (migrating)"
            log(f"domain {name} is {text}")
            return log.result(rc, {"state": STATE_NAMES.get(state, str(state)), "reason": reason})

        return self._guard("monitor", ActionLog(), body)

    @staticmethod
    def _monitor_rc(state: int, reason: int) -> OCF:
        if state in (1, 2, 7):  # running, blocked on I/O, suspended to RAM: the guest exists
            return OCF.SUCCESS
        if state == 5:
            return OCF.NOT_RUNNING
        if state == 3 and reason in (PAUSED_USER, PAUSED_SAVE):
            return OCF.SUCCESS  # paused on purpose by an operator: still this node's copy
        return OCF.ERR_GENERIC  # crashed, shutting down, paused by I/O error or migration, unknown

    def start(self, progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name, xml = self.name(), self.definition()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is not None and dom.isActive():
                    state, reason = self.state_of(dom)
                    if state == 3 and reason not in (PAUSED_USER, PAUSED_SAVE):
                        log(f"domain {name} is paused (reason {reason}); resuming it")
                        dom.resume()
                    else:
                        log(f"domain {name} already runs")
                        return log.result(OCF.SUCCESS)
                else:
                    if xml is not None:
                        dom = conn.defineXML(xml)
                        log(f"defined {name}")
                    if dom is None:
                        raise LvError(OCF.ERR_INSTALLED, f"domain {name} is not defined at {self.uri} "
                                      "and neither 'xml' nor 'config' is given")
                    dom.setAutostart(0)
                    dom.create()
                    log(f"started {name}")
                state, reason = self.state_of(dom)
                if self._monitor_rc(state, reason) != OCF.SUCCESS:
                    log(f"domain {name} is {STATE_NAMES.get(state, state)} after start")
                    return log.result(OCF.ERR_GENERIC)
            return log.result(OCF.SUCCESS)

        return self._guard("start", ActionLog(progress), body)

    def stop(self, progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name, timeout = self.name(), self.shutdown_timeout()
            libvirt = _libvirt()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is None or not dom.isActive():
                    log(f"domain {name} is not running here")
                    return log.result(OCF.SUCCESS)
                state, _ = self.state_of(dom)
                if timeout > 0 and state in (1, 2):
                    try:
                        dom.shutdown()
                        log(f"asked {name} to shut down (ACPI); waiting up to {timeout:g}s")
                    except libvirt.libvirtError as e:
                        log(f"graceful shutdown of {name} refused: {e}")
                    deadline = time.monotonic() + timeout
                    while dom.isActive() and time.monotonic() < deadline:
                        time.sleep(0.2)
                if dom.isActive():
                    try:
                        dom.destroy()
                        log(f"destroyed {name}")
                    except libvirt.libvirtError as e:
                        if dom.isActive():
                            raise LvError(OCF.ERR_GENERIC, f"cannot destroy {name}: {e}") from None
                else:
                    log(f"{name} shut down")
                if dom.isActive():
                    raise LvError(OCF.ERR_GENERIC, f"domain {name} still runs after destroy")
            return log.result(OCF.SUCCESS)

        return self._guard("stop", ActionLog(progress), body)

    # -- migration --
    def dest_uri(self, host: str) -> str:
        return str(self.params.get("migrate_dest_uri") or DEFAULT_DEST_URI).replace("{host}", host)

    def migrate_check(self, target: str) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is None or not dom.isActive():
                    log(f"domain {name} does not run here: nothing to migrate")
                    return log.result(OCF.NOT_RUNNING)
                state, _ = self.state_of(dom)
                if state not in (1, 2):
                    log(f"domain {name} is {STATE_NAMES.get(state, state)}, not running: cannot migrate")
                    return log.result(OCF.ERR_GENERIC)
            return log.result(OCF.SUCCESS)

        return self._guard("migrate_check", ActionLog(), body)

    def migrate_prepare(self, source: str, progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is not None and dom.isActive():
                    log(f"domain {name} already runs on this target: refusing a second copy")
                    return log.result(OCF.ERR_GENERIC)
            host = str(self.params.get("migration_host") or "")
            uri = self.dest_uri(host) if host else ""
            log(f"ready to receive {name}" + (f" at {uri}" if uri else ""))
            return log.result(OCF.SUCCESS, {"uri": uri} if uri else {})

        return self._guard("migrate_prepare", ActionLog(progress), body)

    def migrate_to(self, target: str, prepared: Mapping[str, Any],
                   progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            libvirt = _libvirt()
            name = self.name()
            dest = str(prepared.get("uri") or self.dest_uri(target))
            flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is None or not dom.isActive():
                    raise LvError(OCF.ERR_GENERIC, f"domain {name} does not run here: nothing to migrate")
                log(f"migrating {name} to {dest} (live, peer to peer)")
                done = threading.Event()
                watcher = threading.Thread(target=_watch_job, args=(dom, done, log), daemon=True)
                watcher.start()
                try:
                    dom.migrateToURI3(dest, {}, flags)
                except libvirt.libvirtError as e:
                    still = dom.isActive()
                    rc = (OCF.ERR_UNIMPLEMENTED if e.get_error_code() in (
                        libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
                        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED) else OCF.ERR_GENERIC)
                    log(f"migration of {name} to {dest} failed: {e}; the domain "
                        + ("still runs here" if still else "no longer runs here"))
                    return log.result(rc, {"source_running": bool(still)})
                finally:
                    done.set()
                    watcher.join(timeout=5)
                figures = _completed_figures(dom)
            log(f"migrated {name} to {dest}" + "".join(f", {k}={v}" for k, v in figures.items()))
            return log.result(OCF.SUCCESS, figures)

        return self._guard("migrate_to", ActionLog(progress), body)

    def migrate_from(self, source: str, progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is None or not dom.isActive():
                    log(f"domain {name} did not arrive from {source}")
                    return log.result(OCF.ERR_GENERIC)
                state, reason = self.state_of(dom)
                if state not in (1, 2):
                    log(f"domain {name} arrived but is {STATE_NAMES.get(state, state)} (reason {reason})")
                    return log.result(OCF.ERR_GENERIC)
                dom.setAutostart(0)
            log(f"domain {name} runs here")
            return log.result(OCF.SUCCESS)

        return self._guard("migrate_from", ActionLog(progress), body)

    def migrate_abort(self, progress: Progress | None = None) -> AgentResult:
        def body(log: ActionLog) -> AgentResult:
            name = self.name()
            with self.connect() as conn:
                dom = self.lookup(conn, name)
                if dom is not None and dom.isActive():
                    dom.destroy()  # the incoming copy; the source keeps (or regains) the guest
                    log(f"destroyed the incoming copy of {name}")
                else:
                    log(f"no copy of {name} here")
            return log.result(OCF.SUCCESS)

        return self._guard("migrate_abort", ActionLog(progress), body)

    def migrate_recover(self, progress: Progress | None = None) -> AgentResult:
        return self.start(progress)  # resumes a paused source copy, restarts a vanished one


def _watch_job(dom: Any, done: threading.Event, log: ActionLog) -> None:
    """Report migration progress every second until ``done`` (best effort: drivers may lack job info)."""
    last = -1
    while not done.wait(1.0):
        try:
            info = dom.jobInfo()  # [type, timeElapsed, timeRemaining, dataTotal, dataProcessed, ...]
        except Exception:  # noqa: BLE001 - no job info (driver, or the job ended); the migration goes on
            return
        elapsed_s, total, processed = int(info[1]) / 1000, int(info[3]), int(info[4])
        if total <= 0:
            log(f"migrating: {elapsed_s:.0f}s elapsed (setting up)")
        else:
            pct = min(100, processed * 100 // total)
            if pct != last:
                log(f"migrating: {pct}% transferred ({processed >> 20} of {total >> 20} MiB)")
                last = pct


def _completed_figures(dom: Any) -> dict[str, int]:
    """libvirt's figures of the finished migration (total and downtime in ms), when it keeps them."""
    try:
        import libvirt

        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except Exception:  # noqa: BLE001 - figures are a bonus; the migration succeeded
        return {}
    out = {}
    if "time_elapsed" in stats:
        out["total_ms"] = int(stats["time_elapsed"])
    if "downtime" in stats:
        out["downtime_ms"] = int(stats["downtime"])
    return out

