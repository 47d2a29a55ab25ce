// Test tooling: the official Node SDK (unleash-client) evaluating a toggle
// offline, to compare gcs's decisions with, ID by ID.
//
//   node evaluate.js < {"features": [...], "segments": [...], "toggle": NAME,
//                       "context": {...}, "userIds": [...]}
//   > [true, false, ...]   one decision per user ID, in order
//
// Run with NODE_PATH=tests/.cache/unleash/node_modules (the pinned
// unleash-client, installed by tests/support/unleash.sh install).
'use strict';

const UnleashClient = require('unleash-client/lib/client').default;
const { defaultStrategies } = require('unleash-client/lib/strategy');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const features = new Map((req.features || []).map((f) => [f.name, f]));
  const segments = new Map((req.segments || []).map((s) => [s.id, s]));
  const repository = {
    getToggle: (name) => features.get(name),
    getToggles: () => [...features.values()],
    getSegment: (id) => segments.get(id),
  };
  const client = new UnleashClient(repository, defaultStrategies);
  const decisions = req.userIds.map((userId) =>
    client.isEnabled(req.toggle, { ...req.context, userId }, () => false));
  process.stdout.write(JSON.stringify(decisions));
});
