'use strict';
// Installed as @eggjs/cluster (egg 4), egg-clutch forks this path: @eggjs/scripts `stop`
// finds leftover workers by @eggjs/cluster/dist/(commonjs|esm)/agent_worker.js on their command line.
require('../../lib/agent_worker.js');
