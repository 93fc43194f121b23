#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The core runtime against the real satcheld: -t, satchelctl check/status/
modules/reload, SIGHUP reload while a session is in progress, a refused
reload, the control socket protocol, graceful SIGTERM with idle and busy
sessions, and the privilege-drop error."""

import os
import re
import signal
import socket
import subprocess
import time
import unittest

from satchel_harness import Daemon, raw, skip

ALICE = 'alice@example.test'
USERS = {ALICE: 'secret-password'}


def ctl_raw(d, line):
    """One request on state_dir/ctl.sock, the protocol satchelctl speaks."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(d.state_dir, 'ctl.sock'))
    s.sendall(line)
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


class DaemonTest(unittest.TestCase):
    def test_check_and_t(self):
        with Daemon(users=USERS) as d:
            d.write_config()
            r = subprocess.run([d.satcheld, '-t', '-c', d.config_path],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), 'satcheld: configuration %s '
                             'is valid (4 module instances enabled)'
                             % d.config_path)
            r = d.ctl('check')
            self.assertEqual(r.returncode, 0, r.stderr)
            # a missing module file, enabled: fatal with FILE:LINE:COL
            path = os.path.join(d.plugins_dir, '70-nosuch.yaml')
            with open(path, 'w') as f:
                f.write('module: nosuch\n')
            for cmd in ([d.satcheld, '-t', '-c', d.config_path],
                        [d.satchelctl, '-c', d.config_path, 'check']):
                r = subprocess.run(cmd, capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 1, cmd)
                self.assertIn('%s:1:9: module nosuch: ' % path, r.stderr)
                self.assertIn("set `enabled: false`", r.stderr)
            # switched off, it is fine
            with open(path, 'w') as f:
                f.write('module: nosuch\nenabled: false\n')
            r = d.ctl('check')
            self.assertEqual(r.returncode, 0, r.stderr)
            r = d.ctl('connect', ALICE)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('User name:      %s' % ALICE, r.stdout)

    def test_status_modules_reload(self):
        with Daemon(users=USERS) as d:
            d.start()
            st = d.ctl('status')
            self.assertEqual(st.returncode, 0, st.stderr)
            self.assertIn('pid: %d' % d.proc.pid, st.stdout)
            self.assertIn('config generation: 1', st.stdout)
            self.assertRegex(st.stdout, r'sessions: \d+')
            self.assertRegex(st.stdout, r'queue: \d+ messages')
            mods = d.ctl('modules')
            self.assertEqual(mods.returncode, 0, mods.stderr)
            self.assertRegex(mods.stdout, r'(?m)^smtp \S+ \(ABI \d+\.\d+\)')
            self.assertRegex(mods.stdout,
                             r'instance 40-router: hooks [^;]*rcpt')
            keys = d.ctl('modules', '--keys')
            self.assertRegex(keys.stdout, r'max_message_size: size, '
                             r'default 50M')

            # a session opened before the reload finishes on the old
            # generation, and its mail is delivered
            c = raw(d)
            c.expect(220)
            c.expect(250, 'EHLO client.example')
            c.expect(250, 'MAIL FROM:<bob@remote.test>')
            r = d.ctl('reload')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('generation 2', r.stdout)
            c.expect(250, 'RCPT TO:<%s>' % ALICE)
            c.expect(354, 'DATA')
            c.send('Subject: across a reload\r\n\r\nstill here\r\n.\r\n')
            c.expect(250)
            c.expect(221, 'QUIT')
            c.close()
            d.wait_maildir(ALICE, 1)

            # SIGHUP works the same way
            mark = d.reload()
            d.wait_log(r'configuration reloaded \(generation 3\)',
                       since=mark)
            self.assertIn('config generation: 3', d.ctl('status').stdout)

            # an invalid new config is refused; the old one keeps serving
            with open(os.path.join(d.plugins_dir, '50-smtp.yaml'), 'a') as f:
                f.write('colour: blue\n')
            r = d.ctl('reload')
            self.assertEqual(r.returncode, 1)
            self.assertIn('reload failed', r.stderr)
            self.assertIn('50-smtp.yaml:', r.stderr)
            d.wait_log(r'reload failed: .*50-smtp\.yaml:\d+:\d+: ')
            self.assertIn('config generation: 3', d.ctl('status').stdout)
            c = raw(d)
            c.expect(220)
            c.expect(250, 'EHLO client.example')
            c.close()

    def test_ctl_protocol(self):
        with Daemon() as d:
            d.start()
            self.assertEqual(ctl_raw(d, b'ping\n'), 'pong\nOK\n')
            out = ctl_raw(d, b'frobnicate\n')
            self.assertTrue(out.startswith('ERR unknown command'), out)
            out = ctl_raw(d, b'queue-delete\n')
            self.assertEqual(out, 'ERR usage: queue-delete ID\n')
            out = ctl_raw(d, b'x' * 5000)
            self.assertEqual(out, 'ERR request too long\n')
            st = os.stat(os.path.join(d.state_dir, 'ctl.sock'))
            self.assertEqual(st.st_mode & 0o777, 0o600)
            if os.geteuid() == 0:
                self.assertEqual(st.st_uid, 65534)  # nobody
            self.assertTrue(d.running())

    def test_sigterm_idle_and_busy(self):
        with Daemon(users=USERS, main={'shutdown_grace': '3s'}) as d:
            d.start()
            idle = raw(d)
            idle.expect(220)
            idle.expect(250, 'EHLO idle.example')
            busy = raw(d)
            busy.expect(220)
            busy.expect(250, 'EHLO busy.example')
            busy.expect(250, 'MAIL FROM:<bob@remote.test>')
            busy.expect(250, 'RCPT TO:<%s>' % ALICE)
            d.proc.send_signal(signal.SIGTERM)
            # the idle session goes at once, the busy one may finish
            self.assertTrue(idle.closed(timeout=5))
            busy.expect(354, 'DATA')
            busy.send('Subject: during shutdown\r\n\r\nfinished\r\n.\r\n')
            busy.expect(250)
            busy.close()
            rc = d.proc.wait(timeout=10)
            self.assertEqual(rc, 0)
            self.assertIn('SIGTERM: stopping', d.log_text())
            d.start()   # the message was kept and is delivered
            d.wait_maildir(ALICE, 1)

    def test_grace_period_ends(self):
        with Daemon(users=USERS, main={'shutdown_grace': '1s'}) as d:
            d.start()
            busy = raw(d)
            busy.expect(220)
            busy.expect(250, 'EHLO busy.example')
            busy.expect(250, 'MAIL FROM:<bob@remote.test>')
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            self.assertTrue(busy.closed(timeout=8))
            self.assertEqual(d.proc.wait(timeout=10), 0)
            self.assertLess(time.monotonic() - t0, 6)
            self.assertIn('grace period over', d.log_text())

    def test_missing_user(self):
        if os.geteuid() != 0:
            skip('the privilege drop needs root')
        with Daemon(main={'user': 'no-such-user-satchel'}) as d:
            with self.assertRaises(AssertionError) as cm:
                d.start(timeout=10)
            self.assertIn('the user "no-such-user-satchel" (the `user:` '
                          'key) does not exist', str(cm.exception))


if __name__ == '__main__':
    unittest.main()
