#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# smtp + queue durability: messages that got "250 ... queued as" survive a
# kill -9 of satcheld right after the replies and are delivered exactly
# once after the restart; a message cut off before its final dot never
# shows up. Once over one session (a batch of one each time), once over
# many sessions at a time (the group commit's batches of several, each
# file synced on its own pool thread).
import re
import smtplib
import threading
import time
import unittest

import satchel_harness as h

USERS = {'alice@example.test': 'alice-password-1'}
N = 25


class SmtpCrash(unittest.TestCase):
    def test_kill9_after_250_loses_nothing_and_duplicates_nothing(self):
        with h.Daemon(users=USERS) as d:
            d.start()
            # a half-sent message, open while the daemon dies
            half = h.raw(d)
            half.expect(220)
            half.expect(250, 'EHLO half.example')
            half.expect(250, 'MAIL FROM:<half@example.org>')
            half.expect(250, 'RCPT TO:<alice@example.test>')
            half.expect(354, 'DATA')
            half.send('Subject: half\r\nMessage-ID: <half@test>\r\n\r\n'
                      'never finished\r\n')
            ids = []
            c = h.smtp(d)
            c.ehlo('crash.example')
            for i in range(N):
                mid = '<crash-%d@test>' % i
                c.mail('crash@example.org')
                c.rcpt('alice@example.test')
                code, msg = c.data(('Subject: crash %d\r\nMessage-ID: %s\r\n'
                                    '\r\nbody %d\r\n' % (i, mid, i)).encode())
                self.assertEqual(code, 250, msg)
                self.assertRegex(msg.decode(), r'^2\.0\.0 Ok: queued as \S+$')
                ids.append(mid)
            d.kill9()
            c.close()
            half.close()
            d.restart()
            files = d.wait_maildir('alice@example.test', N, timeout=30)
            # give a duplicate delivery the chance to show up
            time.sleep(2)
            files = d.maildir_files('alice@example.test')
            seen = {}
            for p in files:
                with open(p, 'rb') as f:
                    data = f.read()
                m = re.search(rb'Message-ID: (<[^>]+>)', data)
                self.assertIsNotNone(m, data[:500])
                seen[m.group(1).decode()] = seen.get(m.group(1).decode(),
                                                     0) + 1
            self.assertNotIn('<half@test>', seen)
            for mid in ids:
                self.assertEqual(seen.get(mid), 1, (mid, seen))
            self.assertEqual(len(files), N)
            # and the restarted daemon takes mail
            s = h.smtp(d)
            s.sendmail('after@example.org', ['alice@example.test'],
                       b'Subject: after\r\n\r\nafter restart\r\n')
            s.quit()
            d.wait_maildir('alice@example.test', N + 1)

    def test_kill9_after_concurrent_250s_loses_nothing(self):
        sessions, per = 20, 5
        with h.Daemon(users=USERS) as d:
            d.start()
            ids = []
            lock = threading.Lock()
            go = threading.Barrier(sessions)

            def send(n):
                c = h.smtp(d, timeout=30)
                c.ehlo('crash%d.example' % n)
                go.wait(30)
                for i in range(per):
                    mid = '<batch-%d-%d@test>' % (n, i)
                    c.mail('crash@example.org')
                    c.rcpt('alice@example.test')
                    code, msg = c.data(('Subject: batch\r\nMessage-ID:'
                                        ' %s\r\n\r\nbody\r\n'
                                        % mid).encode())
                    if code != 250:
                        raise AssertionError((code, msg))
                    with lock:
                        ids.append(mid)
                c.close()

            errors = h.in_parallel(send, sessions)
            d.kill9()    # right after the last 250: deliveries in flight
            self.assertEqual(errors, [])
            self.assertEqual(len(ids), sessions * per)
            d.restart()
            d.wait_maildir('alice@example.test', len(ids), timeout=60)
            time.sleep(2)
            seen = {}
            for p in d.maildir_files('alice@example.test'):
                with open(p, 'rb') as f:
                    m = re.search(rb'Message-ID: (<[^>]+>)', f.read())
                self.assertIsNotNone(m)
                k = m.group(1).decode()
                seen[k] = seen.get(k, 0) + 1
            for mid in ids:
                self.assertEqual(seen.get(mid), 1, (mid, seen))


if __name__ == '__main__':
    unittest.main(verbosity=2)
