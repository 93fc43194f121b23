#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The milter module against a real libmilter milter (python3-milter,
scripted_milter.py): every stage with its arguments and macros, every
reply and every action, the edits checked byte for byte in the Maildir
copy, several milters in file order, modes, a unix socket, BDAT."""

import poplib
import re
import smtplib
import unittest

from satchel_harness import default_plugins, raw, smtp
from miltercommon import (ALICE, BOB, CAROL, PASSWORD, Daemon,
                          ScriptedMilter, milter_plugin, read_mail)

BODY = b'First line\r\nSecond line\r\n'
MESSAGE = (b'From: Bob <bob@remote.test>\r\n'
           b'To: Alice <alice@example.test>\r\n'
           b'Subject: Original subject\r\n'
           b'X-Remove: this goes\r\n'
           b'X-Multi: one\r\n'
           b'X-Multi: two\r\n'
           b'  folded\r\n'
           b'\r\n' + BODY)
USERS = {ALICE: PASSWORD, BOB: PASSWORD, CAROL: PASSWORD}
RECEIVED = re.compile(rb'Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*')


def strip_delivery(raw_msg):
    """The stored message without what maildir prepends (Return-Path:,
    Delivered-To:, its Received:) and with smtp's Received: field cut
    out: (return_path, before, after) where before + smtp's Received: +
    after is the queue's message."""
    lines = raw_msg.split(b'\r\n', 2)
    assert lines[0].startswith(b'Return-Path: '), lines[0]
    assert lines[1].startswith(b'Delivered-To: '), lines[1]
    m = RECEIVED.match(lines[2])
    assert m is not None, lines[2]
    rest = lines[2][m.end():]
    m = RECEIVED.search(rest)
    assert m is not None, rest
    return lines[0], rest[:m.start()], rest[m.end():]


def send(d, sender='bob@remote.test', rcpts=(ALICE,), msg=MESSAGE,
         port='smtp'):
    with smtp(d, port) as c:
        c.ehlo('client.example')
        return c.sendmail(sender, list(rcpts), msg)


class ActionsTest(unittest.TestCase):
    def daemon(self, *milters, **keys):
        plugins = {}
        for i, m in enumerate(milters):
            plugins.update(milter_plugin(m.address,
                                         name='4%d-milter.yaml' % (5 + i),
                                         **keys))
        return Daemon(users=USERS, extra_plugins=plugins)

    def test_stages_and_macros(self):
        with ScriptedMilter({}) as m, self.daemon(m) as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                c.mail('bob@remote.test', ['BODY=8BITMIME'])
                c.rcpt(ALICE)
                c.rcpt(BOB)
                code, text = c.data(MESSAGE)
                self.assertEqual(code, 250, text)
                qid = re.search(rb'queued as (\S+)', text).group(1).decode()
            m.wait_event('close')
            conn = m.events('connect')[0]
            self.assertEqual(conn['hostname'], '[127.0.0.1]')
            self.assertEqual(conn['hostaddr'][0], '127.0.0.1')
            mac = conn['macros']
            self.assertEqual(mac['j'], 'mail.example.test')
            self.assertEqual(mac['{daemon_name}'], 'mail.example.test')
            self.assertEqual(mac['{client_addr}'], '127.0.0.1')
            self.assertEqual(mac['{daemon_addr}'], '127.0.0.1')
            self.assertEqual(mac['{client_port}'], str(conn['hostaddr'][1]))
            self.assertEqual(m.events('hello')[0]['hostname'],
                             'client.example')
            ef = m.events('envfrom')[0]
            self.assertEqual(ef['sender'], '<bob@remote.test>')
            self.assertEqual(ef['params'], ['BODY=8BITMIME'])
            self.assertEqual(ef['macros']['{mail_addr}'], 'bob@remote.test')
            self.assertNotIn('{auth_authen}', ef['macros'])
            rc = m.events('envrcpt')
            self.assertEqual([e['rcpt'] for e in rc],
                             ['<%s>' % ALICE, '<%s>' % BOB])
            self.assertEqual(rc[1]['macros']['{rcpt_addr}'], BOB)
            self.assertEqual(len(m.events('data')), 1)
            hdrs = [(e['name'], e['value']) for e in m.events('header')]
            # satchel's Received: first, as it will be stored
            self.assertEqual(hdrs[0][0], 'Received')
            self.assertEqual(hdrs[1:], [
                ('From', 'Bob <bob@remote.test>'),
                ('To', 'Alice <alice@example.test>'),
                ('Subject', 'Original subject'),
                ('X-Remove', 'this goes'),
                ('X-Multi', 'one'),
                ('X-Multi', 'two\n  folded')])
            self.assertEqual(len(m.events('eoh')), 1)
            body = ''.join(e['data'] for e in m.events('body'))
            self.assertEqual(body.encode(), BODY)
            eom = m.events('eom')[0]
            self.assertEqual(eom['macros']['i'], qid)
            # unchanged: the stored message is what was sent
            for addr in (ALICE, BOB):
                rp, before, after = strip_delivery(read_mail(d, addr)[0])
                self.assertEqual(rp, b'Return-Path: <bob@remote.test>')
                self.assertEqual(before, b'')
                self.assertEqual(after, MESSAGE)

    def test_every_action(self):
        plan = {'eom_actions': [
            ['addheader', 'X-Added', 'added at the bottom'],
            ['insheader', 0, 'X-Top', 'inserted at the top'],
            ['chgheader', 'Subject', 1, 'Rewritten subject'],
            ['chgheader', 'X-Remove', 1, ''],
            ['chgheader', 'X-Multi', 2, 'second\n\tfolded again'],
            ['chgheader', 'X-Absent', 1, 'added by change'],
            ['replacebody', 'New body\r\n', 'in two chunks\r\n'],
            ['addrcpt', '<%s>' % CAROL],
            ['delrcpt', BOB],
            ['chgfrom', '<changed@remote.test>'],
            ['progress'],
        ]}
        with ScriptedMilter(plan) as m, self.daemon(m) as d:
            d.start()
            refused = send(d, rcpts=(ALICE, BOB))
            self.assertEqual(refused, {})
            want = (b'From: Bob <bob@remote.test>\r\n'
                    b'To: Alice <alice@example.test>\r\n'
                    b'Subject: Rewritten subject\r\n'
                    b'X-Multi: one\r\n'
                    b'X-Multi: second\r\n\tfolded again\r\n'
                    b'X-Added: added at the bottom\r\n'
                    b'X-Absent: added by change\r\n'
                    b'\r\n'
                    b'New body\r\nin two chunks\r\n')
            for addr in (ALICE, CAROL):
                msgs = read_mail(d, addr)
                self.assertEqual(len(msgs), 1)
                rp, before, after = strip_delivery(msgs[0])
                self.assertEqual(rp, b'Return-Path: <changed@remote.test>')
                self.assertEqual(before, b'X-Top: inserted at the top\r\n')
                self.assertEqual(after, want)
            d.wait_log(r'delivered|maildir', timeout=5)
            self.assertEqual(d.maildir_files(BOB), [])
            st = d.ctl('status').stdout
            self.assertRegex(st, r'milter 45-milter: inet:127\.0\.0\.1:\d+ '
                             r'sessions=1 failures=0 rejects=0 edits=\d+')

    def test_addresses_without_brackets(self):
        plan = {'eom_actions': [['addrcpt', CAROL],
                                ['delrcpt', '<%s>' % ALICE],
                                ['chgfrom', 'plain@remote.test']]}
        with ScriptedMilter(plan) as m, self.daemon(m) as d:
            d.start()
            send(d, rcpts=(ALICE, BOB))
            rp, _, after = strip_delivery(read_mail(d, CAROL)[0])
            self.assertEqual(rp, b'Return-Path: <plain@remote.test>')
            self.assertEqual(after, MESSAGE)
            self.assertEqual(len(read_mail(d, BOB)), 1)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_reject_tempfail_replycode(self):
        plan = {'rcpt': {'<%s>' % BOB: 'reject'},
                'reply': ['550', '5.7.0', 'Not for Bob'],
                'eom': 'tempfail'}
        with ScriptedMilter(plan) as m, self.daemon(m) as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                c.mail('bob@remote.test')
                self.assertEqual(c.rcpt(ALICE)[0], 250)
                code, text = c.rcpt(BOB)
                self.assertEqual((code, text), (550, b'5.7.0 Not for Bob'))
                code, text = c.data(MESSAGE)
                # setreply's 550 does not fit a tempfail: the default
                self.assertEqual(code, 451)
                self.assertEqual(text, b'4.7.1 Service unavailable - try '
                                 b'again later')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_reject_message_with_own_code(self):
        plan = {'eom': 'reject', 'reply': ['554', '5.7.1', 'Spam, go away']}
        with ScriptedMilter(plan) as m, self.daemon(m) as d:
            d.start()
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                send(d)
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertEqual(cm.exception.smtp_error,
                             b'5.7.1 Spam, go away')
            # the session goes on: the next message gets the same answer
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_mail_tempfail(self):
        with ScriptedMilter({'envfrom': 'tempfail'}) as m, \
                self.daemon(m) as d:
            d.start()
            with smtp(d) as c:
                c.ehlo('client.example')
                code, text = c.mail('bob@remote.test')
                self.assertEqual((code, text), (451, b'4.7.1 Service '
                                 b'unavailable - try again later'))

    def test_discard(self):
        with ScriptedMilter({'eom': 'discard'}) as m, self.daemon(m) as d:
            d.start()
            self.assertEqual(send(d), {})
            d.wait_log(r'discard', timeout=5)
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_quarantine(self):
        plan = {'eom_actions': [['quarantine', 'held by the test']]}
        with ScriptedMilter(plan) as m, self.daemon(m) as d:
            d.start()
            self.assertEqual(send(d), {})
            q = d.ctl('queue')
            self.assertEqual(q.returncode, 0, q.stderr)
            self.assertIn('held by the test', q.stdout)
            self.assertRegex(q.stdout, r'(?i)quarantine')
            self.assertEqual(d.maildir_files(ALICE), [])

    def test_connect_accept_silences(self):
        with ScriptedMilter({'connect': 'accept'}) as m, \
                self.daemon(m) as d:
            d.start()
            send(d)
            self.assertEqual(len(read_mail(d, ALICE)), 1)
            self.assertEqual(m.events('envfrom'), [])
            self.assertEqual(m.events('header'), [])

    def test_connect_reject(self):
        with ScriptedMilter({'connect': 'reject'}) as m, \
                self.daemon(m) as d:
            d.start()
            c = raw(d)
            code, text = c.reply()
            self.assertEqual(code, 554, text)
            c.close()

    def test_two_milters_in_file_order(self):
        first = ScriptedMilter({'eom_actions': [
            ['addheader', 'X-First', 'from the first milter'],
            ['chgheader', 'Subject', 1, 'Changed by the first']]})
        second = ScriptedMilter({'eom_actions': [
            ['addheader', 'X-Second', 'saw the first']]})
        with first, second, self.daemon(first, second) as d:
            d.start()
            send(d)
            names = [(e['name'], e['value'])
                     for e in second.events('header')]
            self.assertIn(('X-First', 'from the first milter'), names)
            self.assertIn(('Subject', 'Changed by the first'), names)
            self.assertNotIn(('Subject', 'Original subject'), names)
            _, _, after = strip_delivery(read_mail(d, ALICE)[0])
            head = after.split(b'\r\n\r\n')[0]
            self.assertTrue(head.endswith(
                b'X-First: from the first milter\r\n'
                b'X-Second: saw the first'), head)

    def test_modes_and_auth_macros(self):
        with ScriptedMilter({}) as m, \
                Daemon(users=USERS, extra_plugins=milter_plugin(
                    m.address, modes=['submission'])) as d:
            d.start()
            send(d)             # mx: not seen
            self.assertEqual(len(read_mail(d, ALICE)), 1)
            self.assertEqual(m.events(), [])
            with smtp(d, 'submission') as c:
                c.ehlo('client.example')
                c.starttls(context=__import__('satchel_harness')
                           .tls_context())
                c.ehlo('client.example')
                c.login(BOB, PASSWORD)
                c.sendmail(BOB, [ALICE], MESSAGE)
            ef = m.wait_event('envfrom')[0]
            self.assertRegex(m.events('hello')[-1]['macros']
                             ['{tls_version}'], r'^TLS1\.[23]$')
            self.assertEqual(ef['macros']['{auth_authen}'], BOB)
            self.assertEqual(ef['macros']['{auth_type}'], 'PLAIN')
            self.assertEqual(len(read_mail(d, ALICE, 2)), 2)

    def test_pop3_sessions_not_seen(self):
        # the connect and auth hooks run for POP3 sessions too
        def plugins(d):
            p = default_plugins(d, with_auth=True)
            p['55-pop3.yaml'] = {'module': 'pop3', 'listen': [
                {'address': '127.0.0.1:%d' % d.port('pop3'),
                 'tls': 'none'}]}
            p.update(milter_plugin(m.address))
            return p
        with ScriptedMilter({}) as m, \
                Daemon(users=USERS, plugins=plugins) as d:
            d.start()
            p = poplib.POP3('127.0.0.1', d.port('pop3'), timeout=10)
            self.assertTrue(p.getwelcome().startswith(b'+OK'))
            p.quit()
            send(d)
            m.wait_event('close')
            self.assertEqual(len(m.events('connect')), 1)
            self.assertEqual(d.ctl('status').returncode, 0)
            self.assertRegex(d.ctl('status').stdout, r'sessions=1 ')

    def test_unix_socket_and_bdat(self):
        plan = {'eom_actions': [['addheader', 'X-Unix', 'yes']]}
        with ScriptedMilter(plan, unix=True) as m, self.daemon(m) as d:
            d.start()
            c = raw(d)
            c.expect(220)
            c.expect(250, 'EHLO client.example')
            c.expect(250, 'MAIL FROM:<bob@remote.test>')
            c.expect(250, 'RCPT TO:<%s>' % ALICE)
            half = len(MESSAGE) // 2
            c.send(b'BDAT %d\r\n' % half + MESSAGE[:half])
            c.expect(250)
            c.send(b'BDAT %d LAST\r\n' % (len(MESSAGE) - half) +
                   MESSAGE[half:])
            c.expect(250)
            c.close()
            _, _, after = strip_delivery(read_mail(d, ALICE)[0])
            self.assertEqual(after, MESSAGE.replace(
                b'\r\n\r\n', b'\r\nX-Unix: yes\r\n\r\n', 1))
            body = ''.join(e['data'] for e in m.events('body'))
            self.assertEqual(body.encode(), BODY)

    def test_abort_between_messages(self):
        with ScriptedMilter({}) as m, self.daemon(m) as d:
            d.start()
            c = raw(d)
            c.expect(220)
            c.expect(250, 'EHLO client.example')
            c.expect(250, 'MAIL FROM:<bob@remote.test>')
            c.expect(250, 'RSET')
            c.expect(250, 'MAIL FROM:<carol@remote.test>')
            c.expect(250, 'RCPT TO:<%s>' % ALICE)
            c.expect(354, 'DATA')
            c.send(MESSAGE + b'.\r\n')
            c.expect(250)
            c.expect(221, 'QUIT')
            c.close()
            m.wait_event('close')
            evs = [e['ev'] for e in m.events()]
            i = evs.index('envfrom')
            self.assertEqual(evs[i + 1], 'abort', evs)
            self.assertEqual(evs[i + 2], 'envfrom', evs)
            self.assertEqual(len(read_mail(d, ALICE)), 1)


    def test_stop_while_the_milter_works(self):
        """SIGTERM while a milter's answer is awaited (connect, end of a
        DATA message, a BDAT body on the pool, over TCP and a unix
        socket): the grace period ends the session, the call is cancelled,
        satcheld exits 0 (under valgrind: with no error), and the client
        never got a 250 for a message that was not kept."""
        cases = [('connect', False, 'data'), ('eom', False, 'data'),
                 ('eom', True, 'data'), ('body', True, 'bdat')]
        for stage, unix, verb in cases:
            with self.subTest(stage=stage, unix=unix, verb=verb):
                plan = {'delay': {stage: 30}}
                with ScriptedMilter(plan, unix=unix) as m, \
                        Daemon(users=USERS, main={'shutdown_grace': '1s'},
                               extra_plugins=milter_plugin(
                                   m.address, hook_timeout='1m')) as d:
                    d.start()
                    c = raw(d)
                    if stage == 'connect':
                        m.wait_event('connect')
                    else:
                        c.expect(220)
                        c.expect(250, 'EHLO client.example')
                        c.expect(250, 'MAIL FROM:<bob@remote.test>')
                        c.expect(250, 'RCPT TO:<%s>' % ALICE)
                        if verb == 'bdat':
                            c.send(b'BDAT %d LAST\r\n' % len(MESSAGE) +
                                   MESSAGE)
                        else:
                            c.expect(354, 'DATA')
                            c.send(MESSAGE + b'.\r\n')
                        m.wait_event(stage)
                    d.stop()    # raises unless it exits 0, cleanly
                    self.assertTrue(c.closed())
                    self.assertNotIn(b'250', c.buf)
                    self.assertEqual(d.maildir_files(ALICE), [])
                    c.close()


if __name__ == '__main__':
    unittest.main()
