"""What Linux's /proc says about processes and listening ports, read in plain Python (no ps, no ss).

A pid alone can be reused; a pid with its start time (clock ticks after boot) names one process for ever. On a
system without /proc every reader answers "nothing known" (None or empty), and callers fall back to less."""

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"  # TCP state in /proc/net/tcp*


@dataclass(frozen=True)
class Stat:
    ppid: int
    pgrp: int
    state: str  # R, S, D, Z (a zombie: ended, not yet waited for), ...
    started: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def available() -> bool:
    return (PROC / "self" / "stat").exists()


def stat(pid: int) -> Stat | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after its last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return Stat(ppid=int(fields[1]), pgrp=int(fields[2]), state=fields[0], started=int(fields[19]))


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pids() -> list[int]:
    try:
        return [int(entry) for entry in os.listdir(PROC) if entry.isdigit()]
    except FileNotFoundError:
        return []


def running(pid: int, started: int) -> bool:
    """The very process (pid and start time) still runs; a zombie has ended."""
    now = stat(pid)
    return now is not None and now.started == started and not now.zombie


def group_members(pgrp: int) -> list[int]:
    """The live processes of a process group."""
    members = []
    for pid in pids():
        now = stat(pid)
        if now is not None and now.pgrp == pgrp and not now.zombie:
            members.append(pid)
    return members


def children(ppid: int) -> list[int]:
    """The live processes whose parent is `ppid`."""
    return [pid for pid in pids() if (now := stat(pid)) is not None and now.ppid == ppid and not now.zombie]


def port_holders(port: int) -> list[str]:
    """Who listens on a TCP port (any address, IPv4 or IPv6): "pid 123: <command line>" per process, or the
    socket's owning user when its process cannot be seen (another user's, without root)."""
    sockets: dict[str, int] = {}  # inode -> uid
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets[fields[9]] = int(fields[7])
    holders, found = [], set()
    for pid in pids():
        try:
            fds = os.listdir(PROC / str(pid) / "fd")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        inodes = set()
        for fd in fds:
            try:
                target = os.readlink(PROC / str(pid) / "fd" / fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                inodes.add(target[8:-1])
        if inodes:
            found |= inodes
            holders.append(f"pid {pid}: {' '.join(cmdline(pid)) or '?'}")
    for uid in sorted({uid for inode, uid in sockets.items() if inode not in found}):
        holders.append(f"a process of user {_user(uid)} that this user cannot see")
    return holders


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
