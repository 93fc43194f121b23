# SPDX-License-Identifier: MIT
"""procmem - search a live process's writable memory for byte strings.

For tests that check secrets are wiped: after a login with a marker
password, the daemon's heap, thread stacks and other private writable
mappings must no longer hold the marker. Reading /proc/PID/mem of a daemon
that dropped its privileges needs root (CAP_SYS_PTRACE); can_scan() says
whether this run can.

    can_scan(pid) -> bool
    find(pid, needles) -> [(needle, mapping name, address), ...]

Mappings larger than MAX_REGION are skipped: under ASan they are the
shadow memory (terabytes reserved, never holding a copy of user data).
"""

import re

MAPS_RE = re.compile(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$')
# kernel-provided mappings that are not the process's own memory
SKIP = ('[vvar]', '[vdso]', '[vsyscall]')
MAX_REGION = 1 << 30
CHUNK = 16 << 20


def regions(pid):
    """(start, end, name) of the private writable mappings of pid."""
    out = []
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            m = MAPS_RE.match(line.rstrip('\n'))
            if m is None:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            perms, name = m.group(3), m.group(4)
            # heap, stacks, anonymous mmaps (thread arenas) and the data
            # of loaded libraries
            if perms[:2] != 'rw' or perms[3] != 'p' or name in SKIP:
                continue
            if end - start > MAX_REGION:
                continue
            out.append((start, end, name or '[anon]'))
    return out


def can_scan(pid):
    try:
        rs = regions(pid)
        with open('/proc/%d/mem' % pid, 'rb', buffering=0) as f:
            f.seek(rs[0][0])
            f.read(1)
        return True
    except (OSError, IndexError):
        return False


def find(pid, needles):
    """Every place one of the byte strings in needles occurs."""
    hits = []
    overlap = max(len(n) for n in needles) - 1
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for start, end, name in regions(pid):
            pos, tail = start, b''
            while pos < end:
                try:
                    mem.seek(pos)
                    data = mem.read(min(CHUNK, end - pos))
                except OSError:
                    break	# a mapping that went away meanwhile
                if not data:
                    break
                buf = tail + data
                base = pos - len(tail)
                for needle in needles:
                    i = buf.find(needle)
                    while i >= 0:
                        hits.append((needle, name, base + i))
                        i = buf.find(needle, i + 1)
                pos += len(data)
                # a needle across the chunk border is found once: the
                # kept tail is shorter than any needle
                tail = buf[-overlap:] if overlap > 0 else b''
    return hits
