#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_config_check - the shipped conf/satchel.yaml and plugins.d/ files
pass `satcheld -t` and `satchelctl check` with the built modules, and broken
copies of them fail with the exact FILE:LINE:COL messages an admin sees
(also `user:` naming a uid-0 account, which the daemon refuses at start).

Only runs the programs' check modes: no daemon, no network.
"""
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

SRCDIR = os.environ.get('SATCHEL_SRCDIR',
                        os.path.join(os.path.dirname(__file__), '..'))
BUILDDIR = os.environ.get('SATCHEL_BUILDDIR', os.getcwd())
SATCHELD = os.path.join(BUILDDIR, 'core', 'satcheld')
SATCHELCTL = os.path.join(BUILDDIR, 'core', 'satchelctl')
SHIPPED = ['10-ratelimit', '20-pop_before_smtp', '30-auth_file',
           '31-auth_pam', '40-router', '50-smtp', '55-pop3', '60-maildir',
           '70-relay']


class ShippedConfig(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='satchel-config-')
        os.chmod(self.tmp, 0o755)
        self.plugins = os.path.join(self.tmp, 'plugins.d')
        modules = os.path.join(self.tmp, 'modules')
        os.mkdir(self.plugins)
        os.mkdir(modules)
        for so in glob.glob(os.path.join(BUILDDIR, 'modules', '*', '.libs',
                                          '*.so')):
            os.symlink(so, os.path.join(modules, os.path.basename(so)))
        for name in SHIPPED:
            shutil.copy(os.path.join(SRCDIR, 'plugins.d', name + '.yaml'),
                        self.plugins)
        with open(os.path.join(SRCDIR, 'conf', 'satchel.yaml')) as f:
            text = f.read()
        # The shipped file as an admin would adapt it for a test box.
        self.assertIn('\nuser: satchel\n', text)
        text = text.replace('\nuser: satchel\n', '\nuser: ""\n')
        text += ('hostname: mail.example.test\n'
                 'state_dir: state\n'
                 'module_dir: modules\n'
                 'domains:\n  example.test: {routing: local}\n')
        self.config = os.path.join(self.tmp, 'satchel.yaml')
        with open(self.config, 'w') as f:
            f.write(text)
        for p in [self.config] + glob.glob(self.plugins + '/*'):
            os.chmod(p, 0o644)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def plugin(self, name):
        return os.path.join(self.plugins, name + '.yaml')

    def edit(self, name, old, new):
        path = self.plugin(name)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, 'w') as f:
            f.write(text.replace(old, new, 1))

    def append(self, name, text):
        with open(self.plugin(name), 'a') as f:
            f.write(text)

    def line_of(self, name, needle):
        return self.pos(name, needle)[0]

    def pos(self, name, needle):
        """(line, column) of needle in the file, both 1-based."""
        with open(self.plugin(name)) as f:
            for n, line in enumerate(f, 1):
                if needle in line:
                    return n, line.index(needle) + 1
        self.fail('%s not in %s' % (needle, name))

    def check(self):
        """Runs both checkers; they must agree. Returns (rc, output)."""
        t = subprocess.run([SATCHELD, '-t', '-c', self.config],
                           capture_output=True, text=True, timeout=30)
        c = subprocess.run([SATCHELCTL, '-c', self.config, 'check'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(t.returncode != 0, c.returncode != 0,
                         't: %r\ncheck: %r' % (t, c))
        return t.returncode, t.stdout + t.stderr, c.stdout + c.stderr

    def assert_error(self, message):
        rc, out_t, out_c = self.check()
        self.assertNotEqual(rc, 0, out_t)
        self.assertIn(message, out_t)
        self.assertIn(message, out_c)

    def test_shipped_files_are_valid(self):
        self.assertTrue(os.path.exists(SATCHELD), SATCHELD)
        rc, out, out_c = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn('valid', out)
        # 31-auth_pam and 20-pop_before_smtp ship switched off; their keys
        # are valid when enabled
        self.assertIn('\nenabled: false\n',
                      open(self.plugin('20-pop_before_smtp')).read())
        self.edit('31-auth_pam', 'enabled: false', 'enabled: true')
        self.edit('20-pop_before_smtp', '\nenabled: false', '\nenabled: true')
        rc, out, out_c = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn('9 module instances enabled', out)

    def test_unknown_key_near_miss(self):
        self.append('50-smtp', 'max_mesage_size: 10M\n')
        line = self.line_of('50-smtp', 'max_mesage_size')
        self.assert_error("%s:%d:1: unknown key 'max_mesage_size' "
                          "(did you mean 'max_message_size'?)"
                          % (self.plugin('50-smtp'), line))

    def test_nested_enum(self):
        self.edit('50-smtp', 'mode: submission, tls: implicit}',
                  'mode: submission, tls: yes}')
        line, col = self.pos('50-smtp', 'yes}')
        self.assert_error("%s:%d:%d: listen[2].tls: expected one of "
                          "none|starttls|implicit, got 'yes'"
                          % (self.plugin('50-smtp'), line, col))

    def test_wrong_type_and_format(self):
        self.edit('10-ratelimit', 'connections_per_ip: 60/1m',
                  'connections_per_ip: 60 per minute')
        line, col = self.pos('10-ratelimit', '60 per minute')
        self.assertEqual(col, 21)
        self.assert_error("%s:%d:21: connections_per_ip: expected a rate "
                          "such as 60/1m (count/duration), got '60 per "
                          "minute'" % (self.plugin('10-ratelimit'), line))

    def test_missing_required(self):
        self.edit('30-auth_file', 'path: ../passwd', '#path: ../passwd')
        # reported where the file's settings start
        line = self.line_of('30-auth_file', 'module: auth_file')
        self.assert_error("%s:%d:1: missing required key 'path'"
                          % (self.plugin('30-auth_file'), line))

    def test_main_config_error(self):
        with open(self.config) as f:
            text = f.read()
        with open(self.config, 'w') as f:
            f.write(text.replace('shutdown_grace: 30s',
                                 'shutdown_grace: a while'))
        line = text[:text.index('shutdown_grace: 30s')].count('\n') + 1
        self.assert_error("%s:%d:17: shutdown_grace: expected a duration "
                          "such as 30s, 5m, 2h or 5d, got 'a while'"
                          % (self.config, line))

    def test_group_writable_file_refused(self):
        os.chmod(self.plugin('60-maildir'), 0o664)
        self.assert_error("%s: writable by group or others; a config file "
                          "must not be (fix: chmod go-w %s)"
                          % ((self.plugin('60-maildir'),) * 2))

    def test_package_leftovers_ignored(self):
        for junk in ('50-smtp.yaml.dpkg-old', '50-smtp.yaml~',
                     '50-smtp.yaml.rpmnew', '50-smtp.yaml.dpkg-dist'):
            path = os.path.join(self.plugins, junk)
            with open(path, 'w') as f:
                f.write('module: smtp\nlisten: [\n')
            os.chmod(path, 0o644)
        rc, out, out_c = self.check()
        self.assertEqual(rc, 0, out)

    def test_yaml_syntax_error(self):
        self.append('70-relay', 'routes: {a.test: "x:25"\n')
        self.assert_error(self.plugin('70-relay') + ':')
        rc, out, out_c = self.check()
        self.assertRegex(out, re.escape(self.plugin('70-relay')) +
                         r':\d+:\d+: YAML syntax error: ')

    def test_duplicate_instance_name(self):
        shutil.copy(self.plugin('40-router'), self.plugin('41-router'))
        os.chmod(self.plugin('41-router'), 0o644)
        self.append('41-router', 'name: 40-router\n')
        line = self.line_of('41-router', 'name: 40-router')
        self.assert_error("%s:%d:7: instance name '40-router' is already "
                          "used by %s" % (self.plugin('41-router'), line,
                                          self.plugin('40-router')))

    def set_user(self, value):
        """Sets `user:` of the main config; returns its line."""
        with open(self.config) as f:
            text = f.read()
        self.assertIn('\nuser: ""\n', text)
        text = text.replace('\nuser: ""\n', '\nuser: %s\n' % value)
        with open(self.config, 'w') as f:
            f.write(text)
        return text[:text.index('\nuser: %s\n' % value) + 1].count('\n') + 1

    def assert_uid0_refused(self, name):
        line = self.set_user(name)
        self.assert_error(
            "%s:%d:7: user: '%s' has uid 0: satcheld would keep every "
            "privilege after binding its ports; create a system user for "
            "it (adduser --system --group satchel) and set `user: "
            "satchel`, or, when satcheld is not started as root, set "
            "`user: \"\"`" % (self.config, line, name))
        # the daemon refuses it at start too, before it binds anything
        r = subprocess.run([SATCHELD, '-f', '-c', self.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("%s:%d:7: user: '%s' has uid 0" % (self.config, line,
                                                         name), r.stderr)

    def test_user_root_refused(self):
        """`user: root` used to pass the check and then make the daemon
        panic after setuid ("could regain root")."""
        self.assert_uid0_refused('root')

    def test_uid_0_by_another_name_refused(self):
        if os.geteuid() != 0:
            print('SKIP part: creating a uid-0 account needs root')
            return
        useradd = shutil.which('useradd') or '/usr/sbin/useradd'
        userdel = shutil.which('userdel') or '/usr/sbin/userdel'
        name = 'satroot%d' % (os.getpid() % 100000)
        subprocess.run([useradd, '-o', '-u', '0', '-g', '0', '-M', '-N',
                        '-d', '/nonexistent', '-s', '/usr/sbin/nologin',
                        name], check=True, capture_output=True, timeout=30)
        try:
            self.assert_uid0_refused(name)
        finally:
            # -f: userdel refuses a uid that processes run as otherwise
            subprocess.run([userdel, '-f', name], capture_output=True,
                           timeout=30)


if __name__ == '__main__':
    if not os.path.exists(SATCHELD) or not os.path.exists(SATCHELCTL):
        print('skip: core/satcheld or core/satchelctl not built in %s'
              % BUILDDIR)
        raise SystemExit(77)
    unittest.main(verbosity=2)
