#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_satchelctl_root - satchelctl run as root never works through what
the daemon's user planted in state_dir.

The config names `user: nobody`, and nobody owns state_dir. As nobody (the
attacker) each test plants a link there pointing at root's files - the
queue directory, a queue file, the generated certificate, the control
socket - then runs satchelctl as root, as an admin would, and checks that
root neither deleted, read nor connected to what lies behind the link.
satchelctl keeps working on the real queue: as root with `user:`, as the
user itself, and as root without `user:`. Needs root; skipped otherwise.
"""

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import unittest

from satchel_harness import Daemon, skip, which
from dnsserver import DnsServer

if os.geteuid() != 0:
    skip('test_satchelctl_root needs root: it runs satchelctl as root '
         'with `user: nobody`')

NOBODY = pwd.getpwnam('nobody')
QID = '0123456789abcdef'
SECRET = 'root-only-secret'
PRECIOUS = b'root data that must survive\n'


def as_nobody(*cmd, check=True):
    """Runs cmd as the daemon's user (the attacker)."""
    r = subprocess.run(list(cmd), user=NOBODY.pw_uid, group=NOBODY.pw_gid,
                       extra_groups=[], capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError('%s as nobody: %s%s' % (cmd, r.stdout,
                                                     r.stderr))
    return r


def queue_file(sender, subject):
    """A committed queue file, as core/queue.c writes one."""
    body = ('Subject: %s\r\n\r\nhello\r\n' % subject).encode()
    head = ('satchel-queue 1\nid %s\narrival %d\nsender %s\nparams \n'
            'rcpt bob@example.net\nsize %010d\ndata\n'
            % (QID, int(time.time()) - 60, sender, len(body))).encode()
    return head + body + b'END received=1\n'


def root_file(path, data, mode):
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, mode)


def root_dir(d, name):
    """A root-owned directory outside state_dir (the victim's)."""
    path = os.path.join(d.tmp, name)
    os.mkdir(path, 0o755)
    return path


def nobody_queue(d):
    """state/queue made by nobody, as the daemon would; its path."""
    d.write_config()
    queue = os.path.join(d.state_dir, 'queue')
    as_nobody('mkdir', '-p', queue)
    return queue


class PlantedLinks(unittest.TestCase):

    def test_queue_delete_does_not_unlink_through_a_link(self):
        """queue/active -> a root directory holding a file named like a
        queue id: with no daemon running, `queue delete` used to unlink
        it as root."""
        with Daemon() as d:
            queue = nobody_queue(d)
            victim = root_dir(d, 'victim')
            root_file(os.path.join(victim, QID), PRECIOUS, 0o644)
            as_nobody('ln', '-s', victim, os.path.join(queue, 'active'))
            r = d.ctl('queue', 'delete', QID)
            self.assertTrue(os.path.exists(os.path.join(victim, QID)),
                            'root deleted %s/%s' % (victim, QID))
            with open(os.path.join(victim, QID), 'rb') as f:
                self.assertEqual(f.read(), PRECIOUS)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn('no message %s in the queue' % QID, r.stderr)

    def test_queue_show_does_not_read_through_a_link(self):
        """queue/active/ID -> a root-only (0600) file: `queue show` used
        to print its envelope and headers."""
        with Daemon() as d:
            queue = nobody_queue(d)
            active = os.path.join(queue, 'active')
            as_nobody('mkdir', active)
            secret = os.path.join(root_dir(d, 'victim'), 'q')
            root_file(secret, queue_file(SECRET + '@example.net', SECRET),
                      0o600)
            as_nobody('ln', '-s', secret, os.path.join(active, QID))
            r = d.ctl('queue', 'show', QID)
            self.assertNotIn(SECRET, r.stdout + r.stderr)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn('no message %s in the queue' % QID, r.stderr)

    def test_queue_list_does_not_read_through_a_link(self):
        """queue/active -> a root directory with a root-only queue file:
        `queue list` used to list its sender and recipients."""
        with Daemon() as d:
            queue = nobody_queue(d)
            victim = root_dir(d, 'victim')
            root_file(os.path.join(victim, QID),
                      queue_file(SECRET + '@example.net', 'x'), 0o600)
            as_nobody('ln', '-s', victim, os.path.join(queue, 'active'))
            r = d.ctl('queue', 'list')
            self.assertNotIn(SECRET, r.stdout + r.stderr)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn('the queue is empty', r.stdout)

    def test_doctor_does_not_read_a_linked_certificate(self):
        """state/tls/cert.pem -> root's certificate (0600): doctor used to
        read and judge it as the one clients see."""
        if not which('dnsmasq') and not os.path.exists('/usr/sbin/dnsmasq'):
            skip('dnsmasq is not installed')
        dns = DnsServer({'example.test': {'MX': [(10, 'mail.example.test')]},
                         'mail.example.test': {'A': ['127.0.0.1']}}).start()
        try:
            with Daemon(main={'dns': {'servers': [dns.server]}}) as d:
                d.start()       # generates state/tls/cert.pem
                d.stop()
                tls = os.path.join(d.state_dir, 'tls')
                victim = root_dir(d, 'victim')
                for name in ('cert.pem', 'key.pem'):
                    shutil.copy(os.path.join(tls, name), victim)
                    os.chown(os.path.join(victim, name), 0, 0)
                    os.chmod(os.path.join(victim, name), 0o600)
                    as_nobody('rm', '-f', os.path.join(tls, name))
                    as_nobody('ln', '-s', os.path.join(victim, name),
                              os.path.join(tls, name))
                r = d.ctl('doctor', timeout=120)
        finally:
            dns.stop()
        self.assertNotIn('Sanitizer', r.stderr)
        self.assertNotRegex(r.stdout, r'tls: certificate .* valid for')
        self.assertNotRegex(r.stdout, r'self-signed')
        self.assertRegex(r.stdout, r'(?m)^FAIL tls: cannot read the '
                         r'certificate \S+/state/tls/cert\.pem: '
                         r'Permission denied$')

    def test_control_socket_link_is_not_connected_to(self):
        """state/ctl.sock -> another service's socket that only root may
        use: `status` used to connect as root and send it a request."""
        with Daemon() as d:
            d.write_config()
            sockdir = os.path.join(d.tmp, 'rootonly')
            os.mkdir(sockdir, 0o711)
            path = os.path.join(sockdir, 'service.sock')
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            os.chmod(path, 0o600)
            srv.listen(4)
            srv.settimeout(0.2)
            got = []
            stop = threading.Event()

            def serve():
                while not stop.is_set():
                    try:
                        c, _ = srv.accept()
                    except socket.timeout:
                        continue
                    c.settimeout(5)
                    try:
                        got.append(c.recv(4096))
                    finally:
                        c.close()
            t = threading.Thread(target=serve, daemon=True)
            t.start()
            try:
                as_nobody('ln', '-s', path,
                          os.path.join(d.state_dir, 'ctl.sock'))
                r = d.ctl('status')
            finally:
                stop.set()
                t.join(10)
                srv.close()
            self.assertEqual(got, [], 'root connected to the socket')
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertRegex(r.stderr, r'cannot reach satcheld at '
                             r'\S+/state/ctl\.sock: Permission denied')


class KeepsWorking(unittest.TestCase):
    """The real queue, offline, from root with `user:`, from that user
    itself, and from root without `user:`."""

    def plant_message(self, d, owner):
        queue = os.path.join(d.state_dir, 'queue')
        active = os.path.join(queue, 'active')
        os.makedirs(active, exist_ok=True)
        path = os.path.join(active, QID)
        root_file(path, queue_file('carol@example.test', 'queued'), 0o600)
        for p in (queue, active, path):
            os.chown(p, owner.pw_uid, owner.pw_gid)
        return path

    def list_show_delete(self, d, ctl):
        r = ctl('queue', 'list')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r'%s\s+\S+\s+\d+\s+<carol@example\.test>'
                         % QID)
        self.assertRegex(r.stdout, r'pending\s+<bob@example\.net>')
        r = ctl('queue', 'show', QID)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('  Subject: queued', r.stdout)
        r = ctl('queue', 'delete', QID)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), 'deleted %s' % QID)
        self.assertFalse(os.path.lexists(
            os.path.join(d.state_dir, 'queue', 'active', QID)))

    def test_as_root_with_user(self):
        with Daemon() as d:
            d.write_config()
            self.plant_message(d, NOBODY)
            self.list_show_delete(d, d.ctl)

    def test_as_the_user(self):
        with Daemon() as d:
            d.write_config()
            self.plant_message(d, NOBODY)

            def ctl(*args):
                return as_nobody(d.satchelctl, '-c', d.config_path, *args,
                                 check=False)
            self.list_show_delete(d, ctl)

    def test_as_root_without_user(self):
        with Daemon(main={'user': ''}) as d:
            d.write_config()
            os.chown(d.state_dir, 0, 0)
            os.chmod(d.state_dir, 0o700)
            self.plant_message(d, pwd.getpwuid(0))
            self.list_show_delete(d, d.ctl)


if __name__ == '__main__':
    unittest.main(verbosity=2)
