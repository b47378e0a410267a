#!/usr/bin/env node
// Entry point of the bundle (dist/cowroot-release.js).
import { runCli } from './cli';

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
