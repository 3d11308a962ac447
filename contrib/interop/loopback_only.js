// Preloaded into bcoin (`node -r contrib/interop/loopback_only.js …`).
// A listening bcoin asks a public DNS resolver for its external IP (bdns.getIPv4/getIPv6).
// tinynode's interop runs stay on 127.0.0.1, so those lookups fail here, at once, locally.
'use strict';
const path = require('path');
const entry = process.argv[1] || '';
const bdns = require(require.resolve('bdns', {paths: [path.dirname(entry)]}));
const refuse = async () => {
  throw new Error('external address lookup disabled: interop runs stay on loopback');
};
bdns.getIPv4 = refuse;
bdns.getIPv6 = refuse;
