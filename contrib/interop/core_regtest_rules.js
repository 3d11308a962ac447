// Preloaded into bcoin (`node -r contrib/interop/core_regtest_rules.js …`).
// Bitcoin Core's regtest buries segwit at height 0 (Core's regtest SegwitHeight = 0 since v0.21):
// every block may carry witness data and a witness commitment, and Core's miner always adds the
// commitment. bcoin 1.0.2's regtest still deploys segwit by BIP9 signalling (bit 1, 108 of 144),
// so it would refuse Core's and tinynode's regtest blocks as 'unexpected-witness'. The interop
// tests run Core's regtest rules, so here the segwit deployment is simply active.
'use strict';
const path = require('path');
const entry = process.argv[1] || '';
const lib = path.join(path.dirname(entry), '..', 'lib');
const Chain = require(path.join(lib, 'blockchain', 'chain.js'));
const {thresholdStates} = require(path.join(lib, 'blockchain', 'common.js'));
const getState = Chain.prototype.getState;
Chain.prototype.getState = async function (prev, deployment) {
  if (this.network.type === 'regtest' && deployment.name === 'segwit')
    return thresholdStates.ACTIVE;
  return getState.call(this, prev, deployment);
};
