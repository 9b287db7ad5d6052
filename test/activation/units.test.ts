import test from 'ava';
import { normalizeCode, parseCode } from '../../src/activation/code.js';
import { FormGuard } from '../../src/activation/form-guard.js';
import { ipKey } from '../../src/activation/limiter.js';
import { ManualClock } from '../../src/infra/clock.js';
import { generateKeyringText, Keyring } from '../../src/infra/keyring.js';

test('codes: upper-cased, spaces and dashes (any kind) stripped; anything else is not a code', (t) => {
  t.is(normalizeCode(' 8er-640\u2013m '), '8ER640M');
  t.is(parseCode('8er 640m'), '8ER640M');
  t.is(parseCode('8ER_640M'), undefined);
  t.is(parseCode('abc'), undefined);
  t.is(parseCode('A'.repeat(17)), undefined);
});

test('per-IP keys: IPv4 as is, IPv6 by /64 however it is written', (t) => {
  t.is(ipKey('203.0.113.7'), '203.0.113.7');
  t.is(ipKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
  t.is(ipKey('2001:0db8:0000:0001:ffff:1:2:3'), '2001:db8:0:1::/64');
  t.is(ipKey('2001:db8::1'), '2001:db8:0:0::/64');
});

test('form guard: tokens bound to the browser secret and the key; tickets bound to secret and purpose and expire; rotation keeps old tokens', (t) => {
  const clock = new ManualClock();
  const old = generateKeyringText('old');
  const guard = new FormGuard(Keyring.parse(old).derive('csrf'), clock, 60_000);
  const secret = guard.newSecret();
  const token = guard.token(secret);
  t.true(guard.verify(secret, token));
  t.false(guard.verify(guard.newSecret(), token));
  t.false(guard.verify(secret, `${token}x`));
  t.false(guard.verify(undefined, token));

  const rotated = new FormGuard(Keyring.parse(`${generateKeyringText('new')},${old}`).derive('csrf'), clock, 60_000);
  t.true(rotated.verify(secret, token), 'an older key still verifies');
  t.false(new FormGuard(Keyring.parse(generateKeyringText('old')).derive('csrf'), clock).verify(secret, token), 'another key with the same id does not');

  const ticket = guard.ticket('pick', '8ER640M', secret);
  t.is(guard.openTicket('pick', ticket, secret), '8ER640M');
  t.is(guard.openTicket('continue', ticket, secret), undefined, 'a picker ticket is not a continue ticket');
  t.is(guard.openTicket('pick', guard.ticket('continue', '8ER640M', secret), secret), undefined, 'nor the other way round');
  t.is(guard.openTicket('pick', ticket, guard.newSecret()), undefined);
  t.is(guard.openTicket('pick', ticket.replace('8ER640M', '8ER640N'), secret), undefined);
  clock.advance(60_001);
  t.is(guard.openTicket('pick', ticket, secret), undefined, 'expired');
});
