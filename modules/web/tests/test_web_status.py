#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The status page of the web module in a real headless browser (Debian's
chromium through chromedriver and selenium) against the real satcheld:
it renders the numbers `satchelctl status` shows (sessions, queued
messages, deferred recipients), follows changes by itself, draws the
hour's chart, lists the modules, and the browser console stays free of
errors (a Content-Security-Policy violation would be one)."""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import Daemon, free_port, raw, skip, smtp  # noqa
from satchel_harness import tls_context  # noqa: E402
from webcommon import ALICE, PASSWORD, get, web_plugins  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:   # pragma: no cover - .ci/packages has it
    webdriver = None

MESSAGE = (b'From: alice@example.test\r\nTo: bob@remote.test\r\n'
           b'Subject: deferred\r\n\r\nhello\r\n')


def ctl_status(d):
    """(sessions, queued messages, deferred recipients) from satchelctl"""
    r = d.ctl('status')
    assert r.returncode == 0, r.stderr
    s = re.search(r'^sessions: (\d+)$', r.stdout, re.M)
    q = re.search(r'^queue: (\d+) messages, (\d+) deferred recipients$',
                  r.stdout, re.M)
    assert s and q, r.stdout
    return int(s.group(1)), int(q.group(1)), int(q.group(2))


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.2)


class WebStatusPageTest(unittest.TestCase):
    def setUp(self):
        if webdriver is None:
            skip('python3-selenium is not installed')
        for tool in ('chromium', 'chromedriver'):
            if shutil.which(tool) is None:
                skip(tool + ' is not installed')
        self.profile = tempfile.mkdtemp(prefix='satchel-chromium-')

    def tearDown(self):
        shutil.rmtree(self.profile, ignore_errors=True)

    def browser(self):
        o = Options()
        o.binary_location = shutil.which('chromium')
        # root in a network namespace: no sandbox; nothing but loopback
        for a in ('--headless=new', '--no-sandbox', '--disable-gpu',
                  '--disable-dev-shm-usage', '--no-first-run',
                  '--disable-extensions', '--disable-sync',
                  '--disable-background-networking',
                  '--disable-component-update',
                  '--user-data-dir=' + self.profile,
                  '--window-size=1024,900'):
            o.add_argument(a)
        o.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        drv = webdriver.Chrome(service=Service(shutil.which('chromedriver')),
                               options=o)
        drv.set_page_load_timeout(30)
        drv.set_script_timeout(30)
        return drv

    def text(self, drv, id_):
        return drv.find_element(By.ID, id_).text

    def test_page_matches_satchelctl_status(self):
        dead = free_port()   # nothing listens: relay defers
        plugins = web_plugins()

        def p(d):
            x = plugins(d)
            x['70-relay.yaml'] = {'module': 'relay', 'retry': ['1h'],
                                  'routes': {'remote.test':
                                             '127.0.0.1:%d' % dead}}
            return x
        with Daemon(plugins=p, users={ALICE: PASSWORD}) as d:
            d.start()
            # a message for a remote domain that cannot be reached: it
            # stays queued with one deferred recipient
            with smtp(d, 'submission') as s:
                s.starttls(context=tls_context())
                s.ehlo()
                s.login(ALICE, PASSWORD)
                s.sendmail(ALICE, ['bob@remote.test'], MESSAGE)
            sent_minute = int(time.time() // 60)
            wait_for(lambda: ctl_status(d)[1:] == (1, 1), 20,
                     'the deferral')
            # two sessions held open
            a, b = raw(d), raw(d)
            a.expect(220)
            b.expect(220)
            want = ctl_status(d)
            self.assertEqual(want, (2, 1, 1))

            drv = self.browser()
            try:
                drv.get('http://127.0.0.1:%d/' % d.port('web'))
                WebDriverWait(drv, 20).until(
                    lambda x: self.text(x, 'sessions') not in ('', '…'))
                got = (int(self.text(drv, 'sessions')),
                       int(self.text(drv, 'queue_messages')),
                       int(self.text(drv, 'queue_deferred')))
                self.assertEqual(got, want)
                self.assertEqual(ctl_status(d), want)
                self.assertEqual(self.text(drv, 'limit'), '50')
                self.assertEqual(self.text(drv, 'hostname'),
                                 'mail.example.test')
                self.assertNotEqual(self.text(drv, 'queue_oldest'), 'none')
                self.assertEqual(self.text(drv, 'accepted'), '1')
                # the chart: a bar per minute, this minute's holds the
                # message
                bars = drv.find_elements(By.CSS_SELECTOR, '#chart rect')
                self.assertEqual(len(bars), 60)
                # a minute may have begun since the message: its bar has
                # moved left by as many as began
                moved = int(time.time() // 60) - sent_minute
                self.assertGreater(max(int(b.get_attribute('height'))
                                       for b in bars[-1 - moved:]), 0)
                mods = self.text(drv, 'modules')
                for m in ('web', 'smtp', 'pop3', 'relay', 'ratelimit'):
                    self.assertIn(m, mods)

                # it refreshes itself: one session ends, the page follows
                a.close()
                wait_for(lambda: ctl_status(d)[0] == 1, 10, 'the close')
                WebDriverWait(drv, 20).until(
                    lambda x: self.text(x, 'sessions') == '1')
                self.assertEqual(ctl_status(d),
                                 (int(self.text(drv, 'sessions')), 1, 1))
                self.assertEqual(self.text(drv, 'err'), '')

                logs = drv.get_log('browser')
                errors = [e for e in logs if e['level'] in ('SEVERE',
                                                            'ERROR')]
                self.assertEqual(errors, [])
            finally:
                drv.quit()
                b.close()

    def test_forbidden_source(self):
        # the page from a disallowed address: 403, and the script says
        # nothing about the server either
        with Daemon(plugins=web_plugins(web={'allow': ['127.0.0.2/32']}),
                    users={ALICE: PASSWORD}) as d:
            d.start()
            for path in ('/', '/status.js', '/status.json'):
                self.assertEqual(get(d, path)[0], 403)
                self.assertEqual(get(d, path, source='127.0.0.2')[0], 200)


if __name__ == '__main__':
    unittest.main()
