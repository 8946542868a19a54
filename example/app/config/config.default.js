'use strict';

module.exports = appInfo => ({
  // used by egg to sign cookies; fine for an example, never reuse it in production
  keys: `${appInfo.name}_egg-clutch-example`,
  cluster: {
    listen: {
      // bind the example to loopback only
      hostname: '127.0.0.1',
    },
  },
});
