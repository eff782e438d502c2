"""An ICE-lite agent on aioice, answering connectivity checks the way mediasoup does.

A browser talking to mediasoup is always the controlling, full ICE agent; the server only
answers its binding requests and uses the address they come from (RFC 8445 section 2.5).
Stock `aioice.Connection` cannot play that part: its `connect()` needs the remote password
(which mediasoup-client never sends to the server), it starts triggered checks of its own
and it only nominates after its own check succeeded. This subclass keeps aioice's sockets,
STUN codec and send/receive queue, and replaces the agent logic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aioice import Candidate, Connection, stun
from aioice.ice import CandidatePair, StunProtocol
from aioice.utils import random_string

from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class _LiteProtocol(StunProtocol):
    """A socket that only passes on data from addresses which passed a connectivity check.

    mediasoup drops datagrams from unknown tuples; without this, anyone who learned the
    port could inject DTLS records into the handshake.
    """

    receiver: IceLiteConnection

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        assert isinstance(data, bytes)
        # Force an IPv6 four-tuple to a two-tuple, as aioice does.
        source: Address = (addr[0], addr[1])
        # RFC 7983: a first byte of 0..3 is STUN; DTLS and SRTP never start that way.
        if data and data[0] < 4:
            try:
                message = stun.parse_message(data)
            except ValueError:
                return
            if message.message_class == stun.Class.REQUEST:
                self.receiver.request_received(message, source, self)
            return
        if self.receiver.is_authenticated(source):
            self.receiver.data_received(data, self.local_candidate.component)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("dropped %d bytes from unchecked address %s", len(data), source)


class IceLiteConnection(Connection):
    """The server side of ICE-lite for one transport (one component, UDP, host candidates).

    - Accepts only BINDING requests with USERNAME `local:remote`, a MESSAGE-INTEGRITY
      valid under the local password and PRIORITY (400/401 otherwise), and answers
      ICE-CONTROLLED with 487: a lite agent is always controlled.
    - Learns the sender as a peer-reflexive remote candidate, selects that pair on the
      first valid check (so DTLS can start at once) and for good on USE-CANDIDATE.
    - `last_check_at` (monotonic) is the time of the last valid check, for a silence
      watchdog: a lite agent sends no consent checks of its own.
    - `connect()` only waits for a selected pair; `close()` releases that wait.
    """

    def __init__(self, settings: WebRtcSettings) -> None:
        # 16/32 characters like mediasoup; aioice's defaults (4/22) are valid too.
        super().__init__(
            ice_controlling=False,
            components=1,
            local_username=random_string(16),
            local_password=random_string(32),
        )
        self._settings = settings
        self._authenticated: set[Address] = set()
        self._selected = asyncio.Event()
        self._released = asyncio.Event()
        self.nominated = False
        self.last_check_at: float | None = None

    # gathering

    async def gather_candidates(self) -> None:
        """Bind one socket per announced address within the configured port range."""
        if not self._local_candidates_start:
            await gather_announced(self, self._settings, lambda: _LiteProtocol(self))

    # checks

    def is_authenticated(self, addr: Address) -> bool:
        """Whether `addr` has sent a valid connectivity check."""
        return addr in self._authenticated

    def request_received(
        self, message: stun.Message, addr: Address, protocol: StunProtocol
    ) -> None:
        """Answer one connectivity check, and select the pair it came on when valid."""
        if self._closing:
            return
        if message.message_method != stun.Method.BINDING:
            self.respond_error(message, addr, protocol, (400, "Bad Request"))
            return
        attributes = message.attributes
        if not all(k in attributes for k in ("USERNAME", "MESSAGE-INTEGRITY", "PRIORITY")):
            self.respond_error(message, addr, protocol, (400, "Bad Request"))
            return
        if not (
            self._valid_username(attributes["USERNAME"])
            and message.check_message_integrity(self.local_password.encode("utf8"))
        ):
            self.respond_error(message, addr, protocol, (401, "Unauthenticated"))
            return
        if "ICE-CONTROLLED" in attributes:
            # Both sides think they are controlled; the lite side never switches role.
            self.respond_error(message, addr, protocol, (487, "Role Conflict"))
            return

        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = addr
        # Adds FINGERPRINT after MESSAGE-INTEGRITY.
        response.add_message_integrity(self.local_password.encode("utf8"))
        protocol.send_stun(response, addr)

        self.last_check_at = time.monotonic()
        self._authenticated.add(addr)
        self._select(addr, protocol, int(attributes["PRIORITY"]), "USE-CANDIDATE" in attributes)

    def _select(
        self, addr: Address, protocol: StunProtocol, priority: int, use_candidate: bool
    ) -> None:
        component = protocol.local_candidate.component
        current = self._nominated.get(component)
        same = current is not None and current.remote_addr == addr and current.protocol is protocol
        # Provisional selection: the first valid check. Definitive: USE-CANDIDATE, which
        # may also move the selection to another pair (the client's network changed).
        if current is None or (use_candidate and not (same and self.nominated)):
            pair = (
                current
                if same and current is not None
                else self._pair_for(addr, protocol, priority)
            )
            self._nominated[component] = pair
            logger.info("%s selected %s%s", self, pair, " (nominated)" if use_candidate else "")
        if use_candidate:
            self.nominated = True
        self._selected.set()

    def _pair_for(self, addr: Address, protocol: StunProtocol, priority: int) -> CandidatePair:
        remote = next(
            (c for c in self._remote_candidates if (c._network_host, c.port) == addr), None
        )
        if remote is None:
            # Learning a peer-reflexive candidate (RFC 8445 section 7.3.1.3).
            remote = Candidate(
                foundation=random_string(10),
                component=protocol.local_candidate.component,
                transport="udp",
                priority=priority,
                host=addr[0],
                port=addr[1],
                type="prflx",
            )
            self._remote_candidates.append(remote)
        pair = CandidatePair(protocol, remote)
        pair.state = CandidatePair.State.SUCCEEDED
        pair.nominated = True
        return pair

    # lifecycle

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        """Ignore trickled candidates: a lite agent learns addresses from checks only."""
        if remote_candidate is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s ignores remote candidate %s", self, remote_candidate)

    async def connect(self) -> None:
        """Wait until a check selected a pair; raise `ConnectionError` if closed first."""
        if not self._local_candidates_end:
            raise ConnectionError("Local candidates gathering was not performed")
        if not self._selected.is_set():
            selected = asyncio.ensure_future(self._selected.wait())
            released = asyncio.ensure_future(self._released.wait())
            try:
                await asyncio.wait({selected, released}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                selected.cancel()
                released.cancel()
        if self._closing or not self._nominated:
            raise ConnectionError("ICE-lite connection closed before a check arrived")

    async def close(self) -> None:
        """Close the sockets and release a pending `connect()`."""
        self._closing = True
        self._released.set()
        await super().close()
