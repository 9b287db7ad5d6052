/**
 * Store.leases, registered once per backend (embedded SQLite file, real Redis). Time is injected
 * (`now`), so nothing here sleeps or asserts on timing.
 */
import anyTest, { type TestFn } from 'ava';
import { withRedis } from '../helpers/with-redis.js';
import {
  storeBackends,
  tempDirs,
} from './store-helpers.js';
import { registerLeaseSuite } from './store-suites/leases.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

for (const backend of storeBackends(dirs, redisUrl)) registerLeaseSuite(test, backend);
