import test from 'ava';
import { statSync } from 'node:fs';
import { Keyring, SealError, SealedBox, generateKeyringText, keyringProblem, loadOrCreateLocalKeyring } from '../../src/infra/keyring.js';
import { tempDir } from '../helpers/with-app.js';

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');

test('keyring texts are validated without echoing key material', (t) => {
  t.is(keyringProblem(`a:${key(1)}`), undefined);
  t.is(keyringProblem(`a:${key(1)}, b:${key(2)}`), undefined);
  t.regex(keyringProblem('') ?? '', /at least one key/);
  t.regex(keyringProblem('nocolon') ?? '', /entry 1 is not kid:base64/);
  t.regex(keyringProblem(`a:${Buffer.alloc(16).toString('base64')}`) ?? '', /16 bytes; expected 32/);
  t.regex(keyringProblem(`a:${key(1)},a:${key(2)}`) ?? '', /appears twice/);
  const secretish = `a:${key(7)},bad entry`;
  t.false((keyringProblem(secretish) ?? '').includes(key(7)));
  t.is(keyringProblem(generateKeyringText()), undefined);
});

test('rotation step 1: a kid:base64:verify entry verifies and unseals but never seals; the first entry without it does', (t) => {
  t.is(keyringProblem(`k1:${key(1)},k2:${key(2)}:verify`), undefined);
  t.is(keyringProblem(`k2:${key(2)}:verify,k1:${key(1)}`), undefined, 'a verify key may come first: the first key without :verify signs');
  t.regex(keyringProblem(`k2:${key(2)}:verify`) ?? '', /every key is :verify/);
  t.regex(keyringProblem(`k1:${key(1)}:verify,k2:${key(2)}:verify`) ?? '', /every key is :verify/);
  t.regex(keyringProblem(`k1:${key(1)}:sign`) ?? '', /entry 1 is not kid:base64/);
  t.throws(() => Keyring.parse(`k2:${key(2)}:verify`), { instanceOf: TypeError, message: /every key is :verify/ });

  const ring = Keyring.parse(`k2:${key(2)}:verify,k1:${key(1)}`);
  t.is(ring.active.id, 'k1');
  t.deepEqual(ring.ids(), ['k2', 'k1']);
  t.true(ring.find('k2')?.verifyOnly);
  t.false(ring.find('k1')?.verifyOnly);
  const derived = ring.derive('store');
  t.is(derived.active.id, 'k1', 'derive() keeps the flag');
  t.true(derived.find('k2')?.verifyOnly);

  // Step 1 (k1 signs, k2 verifies) opens what step 2 (k2 signs, k1 verifies) seals, and the other way round.
  const step1 = new SealedBox(Keyring.parse(`k1:${key(1)},k2:${key(2)}:verify`).derive('store'));
  const step2 = new SealedBox(Keyring.parse(`k2:${key(2)},k1:${key(1)}:verify`).derive('store'));
  t.true(step1.seal('v', 'b').startsWith('v1.k1.'));
  t.true(step2.seal('v', 'b').startsWith('v1.k2.'));
  t.deepEqual(step1.open(step2.seal('v', 'b'), 'b'), { plaintext: 'v', stale: true });
  t.deepEqual(step2.open(step1.seal('v', 'b'), 'b'), { plaintext: 'v', stale: true });
  t.deepEqual(step2.open(step2.seal('v', 'b'), 'b'), { plaintext: 'v', stale: false });
});

test('sealed values open with the same binding and fail closed on tampering or another binding', (t) => {
  const box = new SealedBox(Keyring.parse(`a:${key(1)}`).derive('store'));
  const sealed = box.seal('client-secret-value', 'device:app:123');
  t.false(sealed.includes('client-secret-value'));
  t.deepEqual(box.open(sealed, 'device:app:123'), { plaintext: 'client-secret-value', stale: false });
  t.throws(() => box.open(sealed, 'device:app:456'), { instanceOf: SealError });
  const parts = sealed.split('.');
  const flipped = Buffer.from(parts[3] ?? '', 'base64url');
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  parts[3] = flipped.toString('base64url');
  t.throws(() => box.open(parts.join('.'), 'device:app:123'), { instanceOf: SealError });
  t.throws(() => box.open('plain text', 'device:app:123'), { instanceOf: SealError });
  t.not(box.seal('same', 'x'), box.seal('same', 'x'), 'a fresh IV every time');
});

test('rotation: a value sealed with the old key opens (marked stale) once a new key is put first', (t) => {
  const old = new SealedBox(Keyring.parse(`old:${key(1)}`).derive('store'));
  const rotated = new SealedBox(Keyring.parse(`new:${key(2)},old:${key(1)}`).derive('store'));
  const sealed = old.seal('v', 'b');
  t.deepEqual(rotated.open(sealed, 'b'), { plaintext: 'v', stale: true });
  t.true(rotated.seal('v', 'b').startsWith('v1.new.'));
  const dropped = new SealedBox(Keyring.parse(`new:${key(2)}`).derive('store'));
  t.throws(() => dropped.open(sealed, 'b'), { instanceOf: SealError, message: /not in the keyring/ });
});

test('each purpose gets its own derived key', (t) => {
  const ring = Keyring.parse(`a:${key(1)}`);
  t.notDeepEqual(ring.derive('store').active.key, ring.derive('device-token').active.key);
  t.notDeepEqual(ring.derive('store').active.key, ring.active.key);
  t.deepEqual(ring.derive('store').active.key, Keyring.parse(`a:${key(1)}`).derive('store').active.key, 'deterministic');
  const box = new SealedBox(ring.derive('store'));
  t.throws(() => new SealedBox(ring.derive('other')).open(box.seal('x', 'b'), 'b'), { instanceOf: SealError });
});

test('the embedded keyring is generated once (mode 0600) and reused after a restart', async (t) => {
  const dir = await tempDir(t);
  const first = loadOrCreateLocalKeyring(dir);
  t.true(first.created);
  t.is(statSync(first.file).mode & 0o777, 0o600);
  const second = loadOrCreateLocalKeyring(dir);
  t.false(second.created);
  t.deepEqual(second.keyring.active, first.keyring.active);
});
