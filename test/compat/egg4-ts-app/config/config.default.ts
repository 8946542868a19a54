import type { EggAppInfo } from 'egg';

export default (appInfo: EggAppInfo) => ({
  // signs cookies; a test-only value
  keys: `${appInfo.name}_egg-clutch-compat`,
  cluster: {
    listen: {
      // the tests talk to the app on loopback only
      hostname: '127.0.0.1',
    },
  },
});
