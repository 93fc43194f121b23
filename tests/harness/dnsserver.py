# SPDX-License-Identifier: MIT
"""A real DNS server on loopback for the integration tests (dnsmasq).

    from dnsserver import DnsServer
    with DnsServer({
            'partner.test': {'MX': [(10, 'mx1.partner.test'),
                                    (20, 'mx2.partner.test')]},
            'mx1.partner.test': {'A': ['127.0.0.2']},
            'mx2.partner.test': {'A': ['127.0.0.3'], 'AAAA': ['::1']},
            'nullmx.test': {'MX': [(0, '.')]},          # RFC 7505 null MX
            '_25._tcp.mx1.partner.test': {'TLSA': ['030101ab...']},
        }) as dns:
        main = {'dns': {'servers': [dns.server]}}      # "127.0.0.1:PORT"

dnsmasq runs in the foreground on 127.0.0.1:<free port>, answers only
from the records given (--no-resolv --no-hosts), and is authoritative for
the zones in `local` (default: test, example, invalid): names under them
that have no record get NXDOMAIN, not REFUSED. Record types: MX (pref,
host; host "." is the null MX), A, AAAA, TXT (a comma splits the text into
character-strings), CNAME, PTR (the target; the
name is the reverse name, e.g. '25.0.18.198.in-addr.arpa') and any other
type as hex rdata (TLSA, ...) through --dns-rr. Nothing is signed, so a
validating resolver sees the answers as insecure.

A slow server: DnsServer(records, delay={'slow.test': 3.0}) puts a UDP
relay in front of dnsmasq; `server` is then the relay's address. A query
for a name at or under a key of `delay` is held: the answers (from
dnsmasq) to every query of that name and type go out `delay` seconds after
the first one came in - so a resolver that retries meanwhile still gets
its answer then. Other names pass at once.
"""

import getpass
import os
import random
import shutil
import socket
import struct
import select
import subprocess
import tempfile
import threading
import time

__all__ = ['DnsServer', 'dns_query']

DNSMASQ = shutil.which('dnsmasq') or '/usr/sbin/dnsmasq'

TYPE_NUMBERS = {'A': 1, 'NS': 2, 'CNAME': 5, 'PTR': 12, 'MX': 15, 'TXT': 16,
                'AAAA': 28, 'SRV': 33, 'TLSA': 52}


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(('127.0.0.1', 0))
            port = u.getsockname()[1]
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.bind(('127.0.0.1', port))
            except OSError:
                continue
            finally:
                t.close()
            return port
        finally:
            u.close()
    raise RuntimeError('no free port for the DNS server')


def _encode_name(name):
    out = b''
    for label in name.rstrip('.').split('.'):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b'\0'


def dns_query(port, name, qtype='A', timeout=2.0, host='127.0.0.1'):
    """Sends one query over UDP; returns (rcode, answer_count) or None on
    timeout. Enough to know the server is up and what it says."""
    qid = random.randint(0, 0xffff)
    qt = TYPE_NUMBERS.get(qtype, qtype) if isinstance(qtype, str) else qtype
    pkt = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    pkt += _encode_name(name) + struct.pack('!HH', qt, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(pkt, (host, port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12:
        return None
    rid, flags, _qd, an, _ns, _ar = struct.unpack('!HHHHHH', data[:12])
    if rid != qid:
        return None
    return flags & 0xf, an


def _question(pkt):
    """(lower-case name without the trailing dot, type) of a query, or
    None when it is not a plain one-question query."""
    if len(pkt) < 12 or struct.unpack('!H', pkt[4:6])[0] != 1:
        return None
    labels, off = [], 12
    while off < len(pkt) and pkt[off] != 0:
        n = pkt[off]
        if n & 0xc0 or off + 1 + n > len(pkt):
            return None
        labels.append(pkt[off + 1:off + 1 + n].decode('ascii', 'replace'))
        off += 1 + n
    if off + 5 > len(pkt):
        return None
    qtype = struct.unpack('!H', pkt[off + 1:off + 3])[0]
    return '.'.join(labels).lower(), qtype


class _DelayRelay:
    """The slow server of DnsServer(delay=...): a UDP relay on its own
    port in front of dnsmasq, run by one thread (see the module doc)."""

    MAX_HELD = 1000         # queries held at once, at most

    def __init__(self, upstream_port, delay):
        self.upstream = ('127.0.0.1', upstream_port)
        self.delay = {k.lower().rstrip('.'): float(v)
                      for k, v in delay.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.held = {}      # (name, type) -> [release time, [(pkt, addr)]]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _delay_for(self, name):
        for zone, seconds in self.delay.items():
            if name == zone or name.endswith('.' + zone):
                return seconds
        return 0.0

    def _forward(self, pkt, addr):
        """One query to dnsmasq and its answer back to the client."""
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(2.0)
        try:
            up.sendto(pkt, self.upstream)
            answer, _ = up.recvfrom(65535)
            self.sock.sendto(answer, addr)
        except OSError:
            pass
        finally:
            up.close()

    def _run(self):
        while not self.stopping:
            now = time.monotonic()
            due = [k for k, (t, _) in self.held.items() if t <= now]
            for key in due:
                for pkt, addr in self.held.pop(key)[1]:
                    self._forward(pkt, addr)
            wait = 0.1
            if self.held:
                wait = min(wait, max(0.0, min(
                    t for t, _ in self.held.values()) - now))
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                continue
            try:
                pkt, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            q = _question(pkt)
            seconds = self._delay_for(q[0]) if q else 0.0
            if seconds <= 0:
                self._forward(pkt, addr)
                continue
            entry = self.held.setdefault(q, [now + seconds, []])
            if sum(len(e[1]) for e in self.held.values()) < self.MAX_HELD:
                entry[1].append((pkt, addr))

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class DnsServer:
    """dnsmasq serving `records` (see the module doc) on 127.0.0.1."""

    def __init__(self, records=None, local=('test', 'example', 'invalid'),
                 port=None, extra_args=(), delay=None):
        self.records = dict(records or {})
        self.local = tuple(local)
        self.port = port or _free_port()
        self.extra_args = list(extra_args)
        self.delay = dict(delay or {})
        self.relay = None
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix='satchel-dns-')
        self.log_path = os.path.join(self.tmp, 'dnsmasq.log')

    @property
    def server(self):
        """The address for satchel.yaml's dns.servers (the relay's when
        some names are delayed)."""
        if self.delay:
            if self.relay is None:
                self.relay = _DelayRelay(self.port, self.delay)
            return '127.0.0.1:%d' % self.relay.port
        return '127.0.0.1:%d' % self.port

    def _args(self):
        args = [DNSMASQ, '--no-daemon', '--conf-file=/dev/null',
                '--no-resolv', '--no-hosts', '--no-negcache',
                '--bind-interfaces', '--listen-address=127.0.0.1',
                '--port=%d' % self.port, '--pid-file=',
                '--user=%s' % getpass.getuser(), '--log-queries',
                '--log-facility=%s' % self.log_path, '--local-ttl=1']
        for zone in self.local:
            args.append('--local=/%s/' % zone)
        for name, rrs in self.records.items():
            hosts4 = []
            hosts6 = []
            for rtype, values in rrs.items():
                rtype = rtype.upper()
                if isinstance(values, (str, tuple)):
                    values = [values]
                for v in values:
                    if rtype == 'MX':
                        pref, host = v
                        args.append('--mx-host=%s,%s,%d' % (name, host, pref))
                    elif rtype == 'A':
                        hosts4.append(v)
                    elif rtype == 'AAAA':
                        hosts6.append(v)
                    elif rtype == 'TXT':
                        # no quotes: on the command line dnsmasq would
                        # keep them in the record; a comma starts a new
                        # character-string
                        args.append('--txt-record=%s,%s' % (name, v))
                    elif rtype == 'CNAME':
                        args.append('--cname=%s,%s' % (name, v))
                    elif rtype == 'SRV':
                        prio, weight, port, target = v
                        args.append('--srv-host=%s,%s,%d,%d,%d' % (
                            name, target, port, prio, weight))
                    elif rtype == 'PTR':
                        args.append('--ptr-record=%s,%s' % (name, v))
                    else:
                        num = TYPE_NUMBERS.get(rtype)
                        if num is None:
                            num = int(rtype.lstrip('TYPE'))
                        args.append('--dns-rr=%s,%d,%s' % (name, num, v))
            # one --host-record per address: dnsmasq keeps them all
            for ip in hosts4 + hosts6:
                args.append('--host-record=%s,%s' % (name, ip))
        return args + self.extra_args

    def start(self, timeout=10):
        self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors='replace')
                raise RuntimeError('dnsmasq exited: %s' % err.strip())
            if dns_query(self.port, 'probe.invalid', 'A',
                         timeout=0.2) is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError('dnsmasq did not answer on %s' % self.server)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc.stderr.close()
            self.proc = None

    def set_records(self, records):
        """Replaces the records: restarts dnsmasq on the same port."""
        self.stop()
        self.records = dict(records)
        self.start()

    def log_text(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
