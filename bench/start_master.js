'use strict';
// node bench/start_master.js <package dir> '<options JSON>': start a cluster with that manager
require(process.argv[2]).startCluster(JSON.parse(process.argv[3]));
