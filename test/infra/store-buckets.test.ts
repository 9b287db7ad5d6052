/**
 * Store.buckets (the upstream throttle mirrored, adobe-pass.md §8), registered once per backend
 * (embedded SQLite file, real Redis). Time is injected (`now`): nothing sleeps or asserts on timing.
 */
import anyTest, { type TestFn } from 'ava';
import { withRedis } from '../helpers/with-redis.js';
import {
  storeBackends,
  tempDirs,
} from './store-helpers.js';
import { registerBucketSuite } from './store-suites/buckets.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

for (const backend of storeBackends(dirs, redisUrl)) registerBucketSuite(test, backend);
