'use strict';

// Copied into the example app as config/config.prod.js by deploy/Dockerfile: in the image
// (EGG_SERVER_ENV=prod) the app listens on every interface, so that the pod's Service and
// the kubelet reach it; the example's config.default.js binds loopback for local runs.
module.exports = () => ({
  cluster: {
    listen: {
      hostname: '0.0.0.0',
    },
  },
});
