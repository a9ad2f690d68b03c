#!/usr/bin/env node
// A command-line front for solcjs that speaks the subset of native solc's interface
// used by py-solc-x and forge: `--version` and `--standard-json` (input on stdin).
// solcjs's own CLI prints a warning line before its JSON, which breaks both callers.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, 'node_modules', 'solc'));

const args = process.argv.slice(2);

if (args.includes('--version')) {
  const full = solc.version().replace('.Emscripten.clang', '.Linux.g++');
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + full + '\n');
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}

// Directories that imports may be read from, as native solc's --base-path/--include-path/--allow-paths.
const searchRoots = [process.cwd(), path.join(__dirname, 'node_modules')];
for (let i = 0; i < args.length; i += 1) {
  if (['--base-path', '--include-path'].includes(args[i]) && args[i + 1]) searchRoots.push(path.resolve(args[i + 1]));
  if (args[i] === '--allow-paths' && args[i + 1]) args[i + 1].split(',').forEach((p) => searchRoots.push(path.resolve(p)));
}

function findImports(importPath) {
  for (const root of searchRoots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    }
  }
  return { error: 'File not found: ' + importPath };
}

const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
