"""havm.membership: authenticated UDP heartbeats, failure detection, quorum, controller choice.

The daemon uses ``MembershipThread.for_node(config, node, key, app_info,
generation=next_generation(path, clock), realtime_priority=...)``, ``start()``,
``snapshot() -> MembershipView``, ``subscribe(cb)``, ``update_config(cfg)`` and ``stop()``.
Modules, one concept each: packet (wire format), replay (anti-replay),
detector (timers), view (members, quorum, controller: pure), transport (UDP),
fake (in-memory network for tests), tiebreak (ping prober), service (the node's
state machine), thread (runs it on its own loop), generation (incarnation numbers).
"""

from havm.membership.generation import next_generation
from havm.membership.packet import MessageType, Packet, PacketCodec, PacketError, Reason
from havm.membership.service import MembershipService
from havm.membership.thread import MembershipThread
from havm.membership.transport import Transport, TransportError, UdpTransport
from havm.membership.view import LinkView, MembershipView, PeerView

__all__ = [
    "LinkView", "MembershipService", "MembershipThread", "MembershipView", "MessageType", "Packet",
    "PacketCodec", "PacketError", "PeerView", "Reason", "Transport", "TransportError", "UdpTransport",
    "next_generation",
]
