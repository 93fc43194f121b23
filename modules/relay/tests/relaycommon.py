# SPDX-License-Identifier: MIT
"""Shared pieces of the relay integration tests.

Peer: a real SMTP server (aiosmtpd) on 127.0.0.x that plays a remote MX:
it accepts, defers the first attempt, or rejects, optionally offers
STARTTLS and AUTH, and records what it received. Remote hosts live on
127.0.0.2..9 (not this machine's address for satchel: lo carries only
127.0.0.1 exactly). All of them listen on one port, the relay's `port`.
"""

import email
import email.policy
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from satchel_harness import Daemon, tls_context, skip  # noqa: F401

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:  # pragma: no cover
    skip('python3-aiosmtpd is not installed')

from dnsserver import DnsServer  # noqa: F401

ALICE = 'alice@example.test'
ALICE_PW = 'alice-secret-pw'


def free_port_on(hosts):
    """A TCP port free on every address of hosts."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts[1:]:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError('no common free port')


_CERT = {}


def peer_tls_context(name='mx.partner.test'):
    """A server context with a throw-away self-signed certificate."""
    if name not in _CERT:
        d = tempfile.mkdtemp(prefix='relay-cert-')
        cert = os.path.join(d, 'cert.pem')
        key = os.path.join(d, 'key.pem')
        # certtool (gnutls-bin) is a test dependency already
        tmpl = os.path.join(d, 'tmpl')
        with open(tmpl, 'w') as f:
            f.write('cn = "%s"\ndns_name = "%s"\nexpiration_days = 2\n'
                    'tls_www_server\nsigning_key\nencryption_key\n'
                    % (name, name))
        subprocess.run(['certtool', '--generate-privkey', '--key-type=ecdsa',
                        '--outfile', key], check=True, capture_output=True,
                       timeout=60)
        subprocess.run(['certtool', '--generate-self-signed',
                        '--load-privkey', key, '--template', tmpl,
                        '--outfile', cert], check=True,
                       capture_output=True, timeout=60)
        _CERT[name] = (cert, key)
    cert, key = _CERT[name]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Received:
    def __init__(self, session, envelope):
        self.mail_from = envelope.mail_from
        self.mail_options = list(envelope.mail_options)
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.rcpt_options = list(envelope.rcpt_options)
        self.content = envelope.original_content or envelope.content
        self.tls = session.ssl is not None
        self.auth = None
        if session.authenticated and session.auth_data is not None:
            login = getattr(session.auth_data, 'login', None)
            self.auth = login.decode() if isinstance(login, bytes) \
                else login
        self.helo = session.host_name

    def message(self):
        return email.message_from_bytes(self.content,
                                        policy=email.policy.default)


class Handler:
    """mode: accept | reject (550 5.1.1 at RCPT) | defer_once (451 at RCPT
    for the first attempt of each recipient) | defer (always 451) |
    reject_data (554 after the data)."""

    def __init__(self, mode='accept', reject=()):
        self.mode = mode
        self.reject = set(a.lower() for a in reject)
        self.messages = []
        self.rcpt_attempts = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        with self.lock:
            n = self.rcpt_attempts.get(address, 0) + 1
            self.rcpt_attempts[address] = n
        if self.mode == 'reject' or address.lower() in self.reject:
            return '550 5.1.1 <%s>: no such user' % address
        if self.mode == 'defer' or (self.mode == 'defer_once' and n == 1):
            return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        if self.mode == 'reject_data':
            return '554 5.7.1 message content rejected'
        with self.lock:
            self.messages.append(Received(session, envelope))
        return '250 2.0.0 OK queued'

    def wait(self, count=1, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        raise AssertionError('peer got %d message(s), wanted %d'
                             % (len(self.messages), count))


class Peer:
    """An aiosmtpd server on host:port; use as a context manager."""

    def __init__(self, host, port, name, mode='accept', tls=False,
                 auth=None, reject=(), **smtp_kw):
        # smtp_kw goes to aiosmtpd's SMTP (decode_data=True: no 8BITMIME)
        self.handler = Handler(mode, reject)
        kw = dict(smtp_kw)
        if tls:
            kw['tls_context'] = peer_tls_context(name)
        if auth is not None:
            user, pw = auth

            def authenticator(server, session, envelope, mechanism, data):
                ok = (data.login.decode() == user and
                      data.password.decode() == pw)
                # handled=False: aiosmtpd then answers 535 itself
                return AuthResult(success=ok, handled=False,
                                  auth_data=data if ok else None)
            kw['authenticator'] = authenticator
            kw['auth_required'] = True
            kw['auth_require_tls'] = True
        self.controller = Controller(self.handler, hostname=host, port=port,
                                     server_hostname=name, ready_timeout=10,
                                     **kw)

    @property
    def messages(self):
        return self.handler.messages

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
        return False


def relay_daemon(dns, relay, domains=None, users=None, extra=None):
    """A daemon with the default plugins, a relay instance configured with
    `relay` and DNS from `dns`; alice@example.test is a local user."""
    doms = {'example.test': {'routing': 'local'}}
    doms.update(domains or {})
    plugins = {'70-relay.yaml': dict({'module': 'relay'}, **relay)}
    plugins.update(extra or {})
    return Daemon(main={'dns': {'servers': [dns.server]}, 'domains': doms},
                  users=users if users is not None else {ALICE: ALICE_PW},
                  extra_plugins=plugins)


def submit(d, rcpts, body=None, sender=ALICE, subject='relay test',
           extra_headers='', mail_options=(), rcpt_options=()):
    """Sends a message with AUTH on the submission port (STARTTLS)."""
    import smtplib
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    if body is None:
        body = 'Hello from satchel.\r\n'
    msg = ('From: <%s>\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s'
           % (sender, ', '.join('<%s>' % r for r in rcpts), subject,
              extra_headers, body))
    with smtplib.SMTP('127.0.0.1', d.port('submission'), timeout=20) as s:
        s.ehlo('client.example.test')
        s.starttls(context=tls_context())
        s.ehlo('client.example.test')
        s.login(ALICE, ALICE_PW)
        s.sendmail(sender, rcpts, msg.encode(), mail_options=mail_options,
                   rcpt_options=rcpt_options)
    return msg


def wait_dsn(d, addr=ALICE, count=1, timeout=20):
    """The bounces in addr's Maildir, parsed."""
    files = d.wait_maildir(addr, count=count, timeout=timeout)
    out = []
    for f in files:
        with open(f, 'rb') as fh:
            out.append(email.message_from_bytes(fh.read(),
                                                policy=email.policy.default))
    return out


def dsn_text(msg):
    """The whole DSN as text: the raw message plus every decoded leaf part
    (the human-readable part may be encoded)."""
    parts = [msg.as_string()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a DSN part we cannot decode
            payload = None
        if payload:
            parts.append(payload.decode('utf-8', 'replace'))
    return '\n'.join(parts)


def wait_for(pred, timeout=15, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError('timed out waiting for ' + what)


PEERS = ['127.0.0.%d' % i for i in range(2, 10)]


class RelayTestCase(unittest.TestCase):
    """One DNS server (RECORDS, plus DNS_ARGS) and one peer port for the
    class; conf() gives relay keys with the class's RETRY."""
    RECORDS = {}
    DNS_ARGS = None
    RETRY = ['1h']

    @classmethod
    def setUpClass(cls):
        if cls.DNS_ARGS:
            cls.dns = DnsServer(cls.RECORDS, extra_args=cls.DNS_ARGS).start()
        else:
            cls.dns = DnsServer(cls.RECORDS).start()
        cls.port = free_port_on(PEERS)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def conf(self, **kw):
        c = {'port': self.port, 'retry': self.RETRY, 'connect_timeout': '5s'}
        c.update(kw)
        return c
