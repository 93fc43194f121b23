#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Mail client autoconfiguration of the web module against the real
satcheld: Thunderbird's config-v1.1.xml (well-known URL and the
emailaddress query), Outlook's autodiscover POST and the Apple profile
parse, and name the host, port, security and user name of each pop3 and
submission listener (mx listeners never; recommended first), as
`satchelctl connect --json` does; unknown domains and bad addresses are
refused; `autoconfig: false` turns it all off."""

import json
import os
import plistlib
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from satchel_harness import Daemon  # noqa: E402
from webcommon import ALICE, PASSWORD, get, request, web_plugins  # noqa

TB_SEC = {'SSL': 'implicit', 'STARTTLS': 'starttls', 'plain': 'none'}
OL_SEC = {'SSL': 'implicit', 'TLS': 'starttls', 'None': 'none'}
AD_NS = ('{http://schemas.microsoft.com/exchange/autodiscover/outlook/'
         'responseschema/2006a}')

AD_REQUEST = (b'<?xml version="1.0" encoding="utf-8"?>\r\n'
              b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
              b'autodiscover/outlook/requestschema/2006">\r\n<Request>\r\n'
              b'<EMailAddress>%s</EMailAddress>\r\n'
              b'<AcceptableResponseSchema>http://schemas.microsoft.com/'
              b'exchange/autodiscover/outlook/responseschema/2006a'
              b'</AcceptableResponseSchema>\r\n</Request>\r\n'
              b'</Autodiscover>\r\n')


def plugins(d):
    p = web_plugins()(d)
    # a plaintext pop3 listener as well, listed last
    p['55-pop3.yaml']['listen'].append(
        {'address': '127.0.0.1:%d' % d.port('pop3plain'), 'tls': 'none'})
    return p


class WebAutoconfigTest(unittest.TestCase):
    def expected(self, d, addr):
        """(incoming, outgoing) as [(port, security)] from satchelctl"""
        r = d.ctl('connect', addr, '--json')
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        return ([(s['port'], s['security']) for s in j['incoming']],
                [(s['port'], s['security']) for s in j['outgoing']])

    def test_thunderbird_outlook_apple(self):
        with Daemon(plugins=plugins, users={ALICE: PASSWORD},
                    main={'domains': {'example.test': {'routing': 'local'},
                                      'other.test': {'routing': 'local'},
                                      'partner.test':
                                      {'routing': 'remote'}}}) as d:
            d.start()
            inc, out = self.expected(d, ALICE)
            # what the listeners are, independently of satchelctl
            self.assertEqual(inc, [(d.port('pop3s'), 'implicit'),
                                   (d.port('pop3'), 'starttls'),
                                   (d.port('pop3plain'), 'none')])
            self.assertEqual(out, [(d.port('smtps'), 'implicit'),
                                   (d.port('submission'), 'starttls')])

            for path, user in (
                    ('/.well-known/autoconfig/mail/config-v1.1.xml',
                     '%EMAILADDRESS%'),
                    ('/mail/config-v1.1.xml?emailaddress=' + ALICE, ALICE),
                    ('/mail/config-v1.1.xml?emailaddress=Alice%40Example'
                     '.TEST', 'Alice@example.test')):
                status, hdr, body = get(d, path, source='127.0.0.9')
                self.assertEqual(status, 200, body)
                self.assertIn('xml', hdr['content-type'])
                root = ET.fromstring(body)
                self.assertEqual(root.tag, 'clientConfig')
                prov = root.find('emailProvider')
                domains = [x.text for x in prov.findall('domain')]
                if user == '%EMAILADDRESS%':
                    # the local domains, never the remote one
                    self.assertEqual(sorted(domains),
                                     ['example.test', 'other.test'])
                else:
                    self.assertEqual(domains, ['example.test'])
                for tag, want in (('incomingServer', inc),
                                  ('outgoingServer', out)):
                    got = []
                    for s in prov.findall(tag):
                        self.assertEqual(s.get('type'), 'pop3' if tag[0]
                                         == 'i' else 'smtp')
                        self.assertEqual(s.find('hostname').text,
                                         'mail.example.test')
                        self.assertEqual(s.find('username').text, user)
                        self.assertEqual(s.find('authentication').text,
                                         'password-cleartext')
                        got.append((int(s.find('port').text),
                                    TB_SEC[s.find('socketType').text]))
                    self.assertEqual(got, want)

            # Outlook: one server per type, the recommended one
            for path in ('/autodiscover/autodiscover.xml',
                         '/Autodiscover/Autodiscover.xml'):
                status, hdr, body = request(
                    d, 'POST', path, body=AD_REQUEST % ALICE.encode(),
                    headers={'Content-Type': 'text/xml'},
                    source='127.0.0.9')
                self.assertEqual(status, 200, body)
                acc = ET.fromstring(body).find(AD_NS + 'Response').find(
                    AD_NS + 'Account')
                protos = {p.find(AD_NS + 'Type').text:
                          (int(p.find(AD_NS + 'Port').text),
                           OL_SEC[p.find(AD_NS + 'Encryption').text],
                           p.find(AD_NS + 'Server').text,
                           p.find(AD_NS + 'LoginName').text)
                          for p in acc.findall(AD_NS + 'Protocol')}
                self.assertEqual(protos, {
                    'POP3': inc[0] + ('mail.example.test', ALICE),
                    'SMTP': out[0] + ('mail.example.test', ALICE)})

            # Apple: a configuration profile
            status, hdr, body = get(d, '/mail/satchel.mobileconfig?'
                                    'emailaddress=' + ALICE)
            self.assertEqual(status, 200, body)
            self.assertEqual(hdr['content-type'],
                             'application/x-apple-aspen-config')
            self.assertIn('attachment', hdr['content-disposition'])
            prof = plistlib.loads(body)
            self.assertEqual(prof['PayloadType'], 'Configuration')
            acct = prof['PayloadContent'][0]
            self.assertEqual(acct['PayloadType'], 'com.apple.mail.managed')
            self.assertEqual(acct['EmailAccountType'], 'EmailTypePOP')
            self.assertEqual(acct['EmailAddress'], ALICE)
            self.assertEqual((acct['IncomingMailServerHostName'],
                              acct['IncomingMailServerPortNumber'],
                              acct['IncomingMailServerUseSSL'],
                              acct['IncomingMailServerUsername']),
                             ('mail.example.test', inc[0][0], True, ALICE))
            self.assertEqual((acct['OutgoingMailServerHostName'],
                              acct['OutgoingMailServerPortNumber'],
                              acct['OutgoingMailServerUseSSL'],
                              acct['OutgoingMailServerUsername']),
                             ('mail.example.test', out[0][0], True, ALICE))
            self.assertNotEqual(acct['PayloadUUID'], prof['PayloadUUID'])

            # refused: a domain that is not ours (or only relayed), a
            # malformed address, a GET to autodiscover, a body without one
            for path in ('/mail/config-v1.1.xml?emailaddress=a@nowhere.test',
                         '/mail/config-v1.1.xml?emailaddress=a@partner.test',
                         '/mail/satchel.mobileconfig?emailaddress='
                         'a@nowhere.test'):
                self.assertEqual(get(d, path)[0], 404, path)
            for q in ('nobody', 'a@@example.test', '<a@example.test>',
                      'a%20b@example.test', 'a@example..test',
                      'a@exa%00mple.test', 'a@' + 'x' * 300):
                status, _, body = get(d, '/mail/config-v1.1.xml?'
                                      'emailaddress=' + q)
                self.assertEqual(status, 400, q)
            self.assertEqual(get(d, '/mail/satchel.mobileconfig')[0], 400)
            self.assertEqual(get(d, '/autodiscover/autodiscover.xml')[0],
                             405)
            for body in (b'', b'<Autodiscover/>', AD_REQUEST %
                         b'<script>@example.test',
                         AD_REQUEST % b'a@example.test&amp;'):
                self.assertEqual(request(
                    d, 'POST', '/autodiscover/autodiscover.xml',
                    body=body)[0], 400, body)
            self.assertEqual(request(
                d, 'POST', '/autodiscover/autodiscover.xml',
                body=AD_REQUEST % b'x@partner.test')[0], 404)
            # a request body past the bound
            self.assertEqual(request(
                d, 'POST', '/autodiscover/autodiscover.xml',
                body=b'x' * 40000)[0], 413)

    def test_off(self):
        with Daemon(plugins=lambda d: dict(web_plugins(
                web={'autoconfig': False})(d)), users={ALICE: PASSWORD}) as d:
            d.start()
            self.assertEqual(get(d, '/mail/config-v1.1.xml?emailaddress=' +
                                 ALICE)[0], 404)
            self.assertEqual(request(
                d, 'POST', '/autodiscover/autodiscover.xml',
                body=AD_REQUEST % ALICE.encode())[0], 404)
            self.assertEqual(get(d, '/metrics')[0], 200)


if __name__ == '__main__':
    unittest.main()
