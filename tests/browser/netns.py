"""A network namespace of its own for browser tests, and stopping processes by PID.

Chromium gathers no ICE candidates on loopback, so a WebRTC test needs a test host with a
real interface. ``TestNetns`` makes one: a network namespace (``vas-t-<random>``) with
``lo`` up and one end of a veth pair carrying ``10.253.X.1/24``. The other end stays in the
root namespace with ``10.253.X.2/24``, so the test process can reach servers inside. The
namespace's default route goes to a gateway that does not exist: Chromium needs a default
route to pick the interface it gathers ICE candidates on, and nothing can leave that way.
Servers, the RTSP camera and the browser all run inside (``ip netns exec``); everything is
removed on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import logging
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.e2e.processes import kill_pids, stop_process

logger = logging.getLogger(__name__)

ETC_NETNS = Path("/etc/netns")


# --- processes ------------------------------------------------------------------------------


# --- network namespace ----------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class TestNetns:
    """A network namespace with ``lo`` up and a veth test address; removed on exit.

    ``address`` (10.253.X.1) lives inside; ``host_address`` (10.253.X.2) is the root
    namespace's end, so the test process can reach servers bound to ``address``. The
    namespace's default route points at ``dead_gateway`` (10.253.X.254), which does not exist.
    """

    __test__ = False

    def __init__(self) -> None:
        token = secrets.token_hex(4)
        self.name = f"vas-t-{token}"
        self.host_ifname = f"vt{token}h"  # IFNAMSIZ: at most 15 characters
        self.ns_ifname = f"vt{token}n"
        self.subnet = self._pick_subnet()
        self.address = str(self.subnet.network_address + 1)
        self.host_address = str(self.subnet.network_address + 2)
        self.dead_gateway = str(self.subnet.network_address + 254)
        self._next_port = random.randint(20000, 29000)
        self._created: list[str] = []

    @staticmethod
    def _pick_subnet() -> ipaddress.IPv4Network:
        """A random 10.253.X.0/24 that no address or route of the root namespace touches."""
        used = subprocess.run(
            ["ip", "-4", "-o", "route", "show", "table", "all"],
            capture_output=True, text=True, check=True,
        ).stdout
        for _ in range(64):
            subnet = ipaddress.IPv4Network(f"10.253.{random.randint(0, 255)}.0/24")
            if f"10.253.{subnet.network_address.packed[2]}." not in used:
                return subnet
        raise RuntimeError("no free 10.253.X.0/24 test subnet")

    def __enter__(self) -> TestNetns:
        started = time.monotonic()
        try:
            self._write_etc()
            _ip("netns", "add", self.name)
            self._created.append("netns")
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("link", "add", self.host_ifname, "type", "veth",
                "peer", "name", self.ns_ifname, "netns", self.name)
            self._created.append("veth")
            _ip("addr", "add", f"{self.host_address}/24", "dev", self.host_ifname)
            _ip("link", "set", self.host_ifname, "up")
            _ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", self.ns_ifname)
            _ip("-n", self.name, "link", "set", self.ns_ifname, "up")
            # Without a default route Chromium finds no "default" interface and, lacking
            # media permissions, signals no ICE candidate at all. The gateway is an address
            # nobody answers ARP for, so the route leads nowhere: nothing leaves the veth pair.
            _ip("-n", self.name, "route", "add", "default", "via", self.dead_gateway)
        except BaseException:
            self.close()
            raise
        _open.add(self)
        logger.info("netns %s (%s) up in %.2f s", self.name, self.address,
                    time.monotonic() - started)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _write_etc(self) -> None:
        """/etc/netns/NAME/{hosts,resolv.conf}, which ``ip netns exec`` mounts over /etc.

        Name lookups inside then never wait: the test address resolves from ``hosts``
        (``http.server`` looks its own name up), and DNS asks 127.0.0.1, where nothing
        listens, instead of a nameserver behind the dead default route (a 5 s timeout).
        """
        if not ETC_NETNS.exists():
            ETC_NETNS.mkdir(mode=0o755, exist_ok=True)  # parallel test workers
            self._created.append("etc-netns")
        etc = ETC_NETNS / self.name
        etc.mkdir(parents=True)  # parents: another session may have just removed /etc/netns
        self._created.append("etc")
        (etc / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{self.address}\t{self.name}\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def pids(self) -> list[int]:
        """PIDs of the processes inside the namespace."""
        if "netns" not in self._created:
            return []
        result = subprocess.run(["ip", "netns", "pids", self.name],
                                capture_output=True, text=True, check=False)
        return [int(p) for p in result.stdout.split()]

    def close(self) -> None:
        """Stop what still runs inside, then delete the veth pair and the namespace."""
        _open.discard(self)
        leftover = self.pids()
        if leftover:
            # Only our processes can be in a namespace we created; a test forgot them.
            logger.warning("netns %s: stopping leftover pids %s", self.name, leftover)
            kill_pids(leftover)
        if "veth" in self._created:
            # Deleting one end deletes both.
            subprocess.run(["ip", "link", "del", self.host_ifname],
                           capture_output=True, check=False)
        if "netns" in self._created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        if "etc" in self._created:
            shutil.rmtree(ETC_NETNS / self.name, ignore_errors=True)
        if "etc-netns" in self._created:
            with contextlib.suppress(OSError):  # another namespace may be using it by now
                ETC_NETNS.rmdir()
        self._created.clear()

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` prefixed to run inside the namespace (``ip netns exec`` execs, no fork)."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside the namespace."""
        return subprocess.run(self.command(cmd), **kwargs)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside the namespace; its PID is the command's own."""
        return subprocess.Popen(self.command(cmd), **kwargs)

    def free_port(self) -> int:
        """A TCP/UDP port nothing in the namespace uses (only our processes live there)."""
        self._next_port += 1
        return self._next_port

    def wait_listening(self, port: int, timeout: float = 15.0,
                       process: subprocess.Popen[Any] | None = None) -> None:
        """Wait until a TCP connect to ``address:port`` succeeds (from the root namespace)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"pid {process.pid} exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(
                (self.address, port), timeout=0.5
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"nothing listens on {self.address}:{port} after {timeout} s")


# Namespaces still there at interpreter exit (a test that never reached its teardown):
# without this they, and whatever runs in them, would outlive pytest.
_open: set[TestNetns] = set()


@atexit.register
def _close_leftover_namespaces() -> None:
    for netns in list(_open):
        netns.close()


@contextlib.contextmanager
def netns_process(netns: TestNetns, cmd: Sequence[str], log_path: Path,
                  **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` inside ``netns`` with its output in ``log_path``; stop it by PID on exit."""
    with open(log_path, "wb") as log:
        process = netns.popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, **kwargs)
        try:
            yield process
        finally:
            stop_process(process)
