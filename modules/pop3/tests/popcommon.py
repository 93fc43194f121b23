# SPDX-License-Identifier: MIT
"""Helpers shared by the pop3 and pop_before_smtp integration tests."""

import poplib
import socket
import time

from satchel_harness import default_plugins, smtp, tls_context

PASSWORD = 'secret-password'


def relay_refusal(ip):
    """The contract's 550 text for relaying without AUTH (after 550)."""
    return ('5.7.1 Please turn on SMTP Authentication in your mail client. '
            '%s is not permitted to relay through this server without '
            'authentication.' % ip).encode()


def pop3_plugins(window=None, feed=None):
    """default plugins + a pop3 instance with three listeners:
    port('pop3') starttls, port('pop3s') implicit, port('pop3plain') none
    (and a pop_before_smtp instance when window is given)."""
    def f(d):
        p = default_plugins(d, with_auth=True)
        p['55-pop3.yaml'] = {
            'module': 'pop3',
            'listen': [
                {'address': '127.0.0.1:%d' % d.port('pop3'),
                 'tls': 'starttls'},
                {'address': '127.0.0.1:%d' % d.port('pop3s'),
                 'tls': 'implicit'},
                {'address': '127.0.0.1:%d' % d.port('pop3plain'),
                 'tls': 'none'},
            ],
            'auth_failure_delay': '1s',
        }
        if window is not None:
            pbs = {'module': 'pop_before_smtp', 'window': window}
            if feed is not None:
                pbs['feed'] = feed
            p['45-pop_before_smtp.yaml'] = pbs
        return p
    return f


class SourcePOP3(poplib.POP3):
    """poplib.POP3 connecting from a chosen loopback source address."""

    def __init__(self, host, port, source, timeout=10):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def pop_connect(d, name='pop3', source=None, timeout=10):
    """A poplib client for listener `name`; STLS done on 'pop3'."""
    if name == 'pop3s':
        return poplib.POP3_SSL('127.0.0.1', d.port(name), timeout=timeout,
                               context=tls_context())
    if source is not None:
        p = SourcePOP3('127.0.0.1', d.port(name), source, timeout=timeout)
    else:
        p = poplib.POP3('127.0.0.1', d.port(name), timeout=timeout)
    if name == 'pop3':
        p.stls(tls_context())
    return p


def pop_login(d, user, password=PASSWORD, name='pop3', source=None):
    p = pop_connect(d, name, source=source)
    p.user(user)
    p.pass_(password)
    return p


def deliver(d, rcpt, body, sender='sender@example.test', count=1):
    """Sends body (bytes, CRLF line ends) to rcpt through the mx listener
    and waits until the Maildir holds count messages."""
    with smtp(d) as s:
        s.ehlo('client.example.test')
        s.sendmail(sender, [rcpt], body)
    return d.wait_maildir(rcpt, count=count, timeout=15)


def crlf(data):
    """data with every bare LF made CRLF (what POP3 must send)."""
    out = bytearray()
    prev = 0
    for b in data:
        if b == 0x0a and prev != 0x0d:
            out += b'\r'
        out.append(b)
        prev = b
    return bytes(out)


def retr_bytes(p, n):
    """RETR n as the message bytes with CRLF line ends (poplib has
    removed the byte stuffing and line ends already)."""
    resp, lines, octets = p.retr(n)
    assert resp.startswith(b'+OK'), resp
    return b''.join(line + b'\r\n' for line in lines)


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
