/**
 * Imported first by main.ts, so in the bundle it runs before any other module's code: on a Node.js
 * older than the agent needs, one line on stderr and exit 1, not a TypeError from deep inside a
 * dependency later. tools/bundle.mjs lowers the syntax that Node 12 and 14 cannot parse so that this
 * line is what they print too (tools/runtimes/run-on-node.sh runs the bundle on 12, 14 and 16).
 */
import { nodeVersionProblem } from './node-version';

const problem = nodeVersionProblem(process.versions);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
