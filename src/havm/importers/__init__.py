"""Importers: another cluster manager's configuration as havm's cluster.yaml.

- ``cib``: Pacemaker CIB XML (2.x/3.x, Heartbeat 2 era, snippets) -> config, with
  ``cib_resources``/``cib_constraints`` doing the conversion and ``cib_state.load_state``
  reading the status section for ``havm simulate cluster.xml`` (``cib_simulation``).
- ``heartbeat``: a classic /etc/ha.d (``hacf`` reads ha.cf and authkeys,
  ``haresources`` the resource lines, ``scripts`` maps Heartbeat resource scripts).
- ``output`` (ids, placeholder addresses, validated YAML) and ``report`` (what was
  not carried over, and why) are shared.

Every importer returns an ``ImportResult`` whose YAML has passed havm's schema;
I/O (reading files, writing the output and key) stays in ``havm.cli.import_cmd``.
See docs/importing.md.
"""
