#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_privdrop - root never works through what the daemon's user planted.

satcheld starts as root with `user: nobody`, and nobody owns state_dir. An
attacker with that uid can plant symlinks there and crash the daemon
(SIGKILL here) so that root starts it again. Each test plants, as nobody,
links pointing at files and directories of root's (the victims), restarts
the daemon, and checks that root neither empties, chowns nor overwrites a
victim, and that the daemon starts and delivers mail - or refuses to start
with a message naming the path. Also: `user:` naming uid 0 is refused on
reload, and a state_dir made by root (make install, or a run without
`user:`) is handed over without its hard links. Needs root; skipped
otherwise.
"""

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

from satchel_harness import Daemon, DaemonError, skip, smtp

if os.geteuid() != 0:
    skip('test_privdrop needs root: it starts satcheld as root with '
         '`user: nobody`')

NOBODY = pwd.getpwnam('nobody')
ALICE = 'alice@example.test'
USERS = {ALICE: 'alice-secret-pw'}
PRECIOUS = b'root data that must survive\n'


def as_nobody(*cmd):
    """Runs cmd as the daemon's user (the attacker), checked."""
    r = subprocess.run(list(cmd), user=NOBODY.pw_uid, group=NOBODY.pw_gid,
                       extra_groups=[], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError('%s as nobody: %s%s' % (cmd, r.stdout,
                                                     r.stderr))


def victim_dir(d, name, files=None):
    """A root-owned directory outside state_dir with root-owned files."""
    path = os.path.join(d.tmp, name)
    os.mkdir(path, 0o755)
    for fname, data in (files or {'precious': PRECIOUS}).items():
        p = os.path.join(path, fname)
        with open(p, 'wb') as f:
            f.write(data)
        os.chmod(p, 0o644)
    return path


def assert_untouched(test, path, files=None):
    """path and its files are still root's and as they were; nothing new
    appeared in it."""
    files = files or {'precious': PRECIOUS}
    st = os.lstat(path)
    test.assertEqual((st.st_uid, st.st_gid), (0, 0), path)
    test.assertEqual(sorted(os.listdir(path)), sorted(files), path)
    for fname, data in files.items():
        p = os.path.join(path, fname)
        st = os.lstat(p)
        test.assertEqual((st.st_uid, st.st_gid), (0, 0), p)
        with open(p, 'rb') as f:
            test.assertEqual(f.read(), data, p)


def freeze_config(d):
    """The config stays as written; the harness would otherwise chown
    state_dir as root again before the start (following what the test
    planted)."""
    d.write_config = lambda: None


def crash_and_restart(d):
    """What the attacker does: kill the daemon, root starts it again."""
    d.kill9()
    d.restart()


def deliver(test, d, subject):
    with smtp(d) as s:
        s.ehlo('client.test')
        refused = s.sendmail('bob@example.net', [ALICE],
                             ('Subject: %s\r\n\r\nhello\r\n'
                              % subject).encode())
        test.assertEqual(refused, {})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for f in d.maildir_files(ALICE):
            with open(f, 'rb') as fh:
                if ('Subject: %s' % subject).encode() in fh.read():
                    return
        time.sleep(0.05)
    test.fail('%s not delivered; log:\n%s' % (subject,
                                              d.log_text()[-4000:]))


def try_start(d, start=None):
    """(Re)starts; the DaemonError when the daemon refused, else None.
    The victims are checked before what the daemon said."""
    try:
        (start or d.start)()
    except DaemonError as e:
        return e
    return None


def served_certificate(d):
    """The DER certificate the implicit-TLS listener presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', d.port('smtps')), 10) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


class PlantedLinks(unittest.TestCase):

    def test_queue_tmp_link_is_not_emptied(self):
        """queue/tmp -> a root directory: root used to empty it at
        start. Now nobody replaces the link with an empty tmp/."""
        with Daemon(users=USERS) as d:
            d.start()
            victim = victim_dir(d, 'victim')
            tmp = os.path.join(d.state_dir, 'queue', 'tmp')
            as_nobody('rm', '-rf', tmp)
            as_nobody('ln', '-s', victim, tmp)
            freeze_config(d)
            crash_and_restart(d)
            assert_untouched(self, victim)
            self.assertFalse(os.path.islink(tmp))
            d.wait_log(r'queue: \S+/queue/tmp is not a directory '
                       r'\(a symlink\?\); replacing it')
            deliver(self, d, 'after-tmp-link')

    def test_queue_active_link_is_not_cleaned(self):
        """queue/active -> a root directory: root used to remove every
        file there that is not a complete queue file."""
        with Daemon(users=USERS) as d:
            d.start()
            d.stop()
            victim = victim_dir(d, 'victim')
            active = os.path.join(d.state_dir, 'queue', 'active')
            as_nobody('rm', '-rf', active)
            as_nobody('ln', '-s', victim, active)
            freeze_config(d)
            err = try_start(d)
            assert_untouched(self, victim)
            self.assertRegex(str(err), r'queue/active: not a directory '
                                       r'\(a symlink\?\)')

    def test_no_chown_through_swapped_directories(self):
        """A directory of state_dir swapped with a link to a root
        directory, over and over, while root starts: the old walk
        (lstat, then lchown by path) chowned the files behind the link.
        Root must change the owner of nothing the user can reach."""
        names = ['f%04d' % i for i in range(1500)]
        with Daemon(users=USERS) as d:
            d.start()
            victim = victim_dir(d, 'victim',
                                {n: b'x\n' for n in names})
            x = os.path.join(d.state_dir, 'x')
            as_nobody('mkdir', x)
            as_nobody('sh', '-c', 'cd "$1" && for i in $(seq -f f%04g 0 '
                      '1499); do : > $i; done', 'sh', x)
            as_nobody('ln', '-s', victim, x + '.link')
            stop = os.path.join(d.tmp, 'stop-swapping')
            flipper = subprocess.Popen(
                [sys.executable, '-c', FLIPPER, d.state_dir, stop],
                user=NOBODY.pw_uid, group=NOBODY.pw_gid, extra_groups=[],
                stderr=subprocess.PIPE)
            refused = []
            try:
                freeze_config(d)
                for _ in range(6):
                    d.kill9()
                    err = try_start(d, d.restart)
                    if err is not None:
                        refused.append(str(err)[-2000:])
            finally:
                with open(stop, 'w'):
                    pass
                _, err = flipper.communicate(timeout=30)
            self.assertEqual(flipper.returncode, 0, err)
            chowned = [n for n in names
                       if os.lstat(os.path.join(victim, n)).st_uid != 0]
            self.assertEqual(chowned, [], 'root chowned victim files')
            self.assertEqual(os.lstat(victim).st_uid, 0)
            self.assertEqual(refused, [])
            deliver(self, d, 'after-swaps')

    def test_tls_dir_link_is_not_written(self):
        """state/tls -> a root directory holding a key.pem but no
        cert.pem: root used to generate a certificate there, replacing
        that key."""
        with Daemon(users=USERS) as d:
            d.start()
            files = {'key.pem': b'-----ROOT KEY-----\n'}
            victim = victim_dir(d, 'victim', files)
            tls = os.path.join(d.state_dir, 'tls')
            as_nobody('rm', '-rf', tls)
            as_nobody('ln', '-s', victim, tls)
            freeze_config(d)
            d.kill9()
            err = try_start(d, d.restart)
            assert_untouched(self, victim, files)
            self.assertRegex(str(err), r'/tls: not a directory owned by '
                             r'uid %d \(a symlink\?\)' % NOBODY.pw_uid)

    def test_tls_key_link_is_not_loaded(self):
        """state/tls/key.pem and cert.pem -> root's key (0600) and its
        certificate: root used to load that key into the daemon the
        user controls, and serve it."""
        with Daemon(users=USERS) as d:
            d.start()
            tls = os.path.join(d.state_dir, 'tls')
            with open(os.path.join(tls, 'key.pem'), 'rb') as f:
                key = f.read()
            with open(os.path.join(tls, 'cert.pem'), 'rb') as f:
                cert = f.read()
            files = {'key.pem': key, 'cert.pem': cert}
            victim = victim_dir(d, 'victim', files)
            os.chmod(os.path.join(victim, 'key.pem'), 0o600)
            for name in files:
                p = os.path.join(tls, name)
                as_nobody('rm', '-f', p)
                as_nobody('ln', '-s', os.path.join(victim, name), p)
            freeze_config(d)
            d.kill9()
            err = try_start(d, d.restart)
            if err is None:
                self.assertTrue(served_certificate(d) !=
                                ssl.PEM_cert_to_DER_cert(cert.decode()),
                                'the daemon serves root\'s key')
            assert_untouched(self, victim, files)
            st = os.stat(os.path.join(victim, 'key.pem'))
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertRegex(str(err), r'/tls/key\.pem: Permission denied')

    def test_maildir_base_link_gets_nothing(self):
        """maildir's base (here <state>/boxes/vhosts) behind a link to a
        root directory: root used to create it there and chown it."""
        def plugins(d):
            from satchel_harness import default_plugins
            p = default_plugins(d)
            p['60-maildir.yaml']['path'] = os.path.join(
                d.state_dir, 'boxes', 'vhosts', '%d', '%u')
            return p
        with Daemon(plugins=plugins, users=USERS) as d:
            d.start()
            d.stop()
            victim = victim_dir(d, 'victim')
            boxes = os.path.join(d.state_dir, 'boxes')
            as_nobody('rm', '-rf', boxes)
            as_nobody('ln', '-s', victim, boxes)
            freeze_config(d)
            d.start()
            assert_untouched(self, victim)
            # the user's own link, followed as the user: no mailbox, the
            # message waits in the queue; the daemon keeps serving
            with smtp(d) as s:
                s.ehlo('client.test')
                self.assertEqual(s.sendmail('bob@example.net', [ALICE],
                                            b'Subject: x\r\n\r\nx\r\n'),
                                 {})
            d.wait_log(r'451 4\.3\.0 <alice@example\.test>: cannot create '
                       r'the mailbox', timeout=15)
            assert_untouched(self, victim)


class StateDir(unittest.TestCase):

    def test_parent_writable_by_the_user_is_refused(self):
        """A state_dir whose parent the user can change could be
        swapped for a link to anything root would then work in."""
        with Daemon(users=USERS) as d:
            parent = os.path.join(d.tmp, 'nobodys')
            os.mkdir(parent, 0o755)
            os.chown(parent, NOBODY.pw_uid, NOBODY.pw_gid)
            d.main['state_dir'] = os.path.join(parent, 'state')
            err = try_start(d)
            self.assertFalse(os.path.exists(os.path.join(parent, 'state')))
            self.assertRegex(str(err), r'state_dir \S+/nobodys/state: '
                                       r'\S+/nobodys can be changed by '
                                       r'nobody')

    def test_foreign_root_directory_is_not_taken(self):
        """state_dir naming a root directory that is not satchel's (not
        empty, no queue/: /etc by a typo) is refused, not chowned."""
        with Daemon(users=USERS) as d:
            victim = victim_dir(d, 'victim')
            d.main['state_dir'] = victim
            err = try_start(d)
            assert_untouched(self, victim)
            self.assertRegex(str(err), r'state_dir \S+/victim belongs to '
                                       r'root and does not look like '
                                       r"satchel's")

    def test_new_state_dir_is_made_for_the_user(self):
        with Daemon(users=USERS) as d:
            state = os.path.join(d.tmp, 'new', 'state')
            d.main['state_dir'] = state
            d.start()
            st = os.stat(state)
            self.assertEqual((st.st_uid, st.st_mode & 0o777),
                             (NOBODY.pw_uid, 0o750))
            self.assertEqual(os.stat(os.path.dirname(state)).st_uid, 0)
            d.wait_log(r'created state_dir \S+/new/state for nobody')
            deliver(self, d, 'new-state')

    def test_root_made_state_dir_is_handed_over(self):
        """A state_dir root filled (a run without `user:`): root's files
        go to the user - but not a hard-linked one, which may be a
        system file's other name."""
        with Daemon(users=USERS) as d:
            state = os.path.join(d.tmp, 'rootstate')
            d.main['state_dir'] = state
            d.main['user'] = ''
            d.start()
            deliver(self, d, 'as-root')
            d.stop()
            st = os.stat(os.path.join(state, 'queue', 'active'))
            self.assertEqual(st.st_uid, 0)
            victim = victim_dir(d, 'victim')
            os.link(os.path.join(victim, 'precious'),
                    os.path.join(state, 'hardlink'))
            d.main['user'] = 'nobody'
            d.start()
            self.assertEqual(os.stat(os.path.join(victim, 'precious'))
                             .st_uid, 0)
            d.wait_log(r'gave state_dir \S+/rootstate to nobody')
            d.wait_log(r'state_dir: left \S+/rootstate/hardlink as it is')
            for sub in ('', 'queue', 'queue/active', 'queue/tmp', 'tls',
                        'tls/key.pem'):
                st = os.lstat(os.path.join(state, sub))
                self.assertEqual(st.st_uid, NOBODY.pw_uid, sub)
            deliver(self, d, 'as-nobody')


class RootUser(unittest.TestCase):

    def test_reload_to_user_root_is_refused(self):
        with Daemon(users=USERS) as d:
            d.start()
            mark = d.log_mark()
            d.main['user'] = 'root'
            d.reload()
            d.wait_log(r"reload failed: \S+/satchel\.yaml:\d+:\d+: user: "
                       r"'root' has uid 0", since=mark)
            self.assertTrue(d.running())
            deliver(self, d, 'after-reload')


# Swaps <state>/x with the link <state>/x.link (to the victim directory)
# until told to stop; bounded to 60 s.
FLIPPER = r'''
import os, sys, time
state, stop = sys.argv[1], sys.argv[2]
x, real, link = state + '/x', state + '/x.real', state + '/x.link'
end = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < end:
    os.rename(x, real)
    os.rename(link, x)
    time.sleep(0)
    os.rename(x, link)
    os.rename(real, x)
'''


if __name__ == '__main__':
    unittest.main(verbosity=2)
