'use strict';

module.exports = appInfo => ({
  // signs cookies; a test-only value
  keys: `${appInfo.name}_egg-clutch-compat`,
  cluster: {
    listen: {
      // tests talk to the app on loopback only
      hostname: '127.0.0.1',
    },
  },
});
