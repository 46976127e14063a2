// Compiles contracts/*.sol with the solc pinned in package.json and writes, for each deployable
// contract, abis/build/<Contract>.abi.json and abis/build/<Contract>.bin (hex, no 0x).
// Output is byte-for-byte reproducible: fixed settings, no metadata hash in the bytecode.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const PINNED = '0.8.37';
const CONTRACTS = ['EventTicket', 'EventFactory', 'Marketplace', 'POAPAttendance', 'IncentiveManager', 'SmartWallet'];

const srcDir = __dirname;
const outDir = path.join(__dirname, '..', 'abis', 'build');

function main() {
  if (!solc.version().startsWith(PINNED + '+')) {
    throw new Error(`solc ${solc.version()} is installed, ${PINNED} is pinned: run npm ci`);
  }
  const sources = {};
  for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort()) {
    sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      metadata: { bytecodeHash: 'none', appendCBOR: false },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  let failed = false;
  for (const e of output.errors || []) {
    console.error(e.formattedMessage.trim());
    if (e.severity === 'error') failed = true;
  }
  if (failed) throw new Error('compilation failed');

  fs.mkdirSync(outDir, { recursive: true });
  for (const name of CONTRACTS) {
    const c = output.contracts[`${name}.sol`] && output.contracts[`${name}.sol`][name];
    if (!c) throw new Error(`no contract ${name} in ${name}.sol`);
    if (!c.evm.bytecode.object) throw new Error(`${name} has no bytecode (abstract?)`);
    fs.writeFileSync(path.join(outDir, `${name}.abi.json`), JSON.stringify(c.abi, null, 2) + '\n');
    fs.writeFileSync(path.join(outDir, `${name}.bin`), c.evm.bytecode.object + '\n');
    console.log(`${name}: ${c.evm.bytecode.object.length / 2} bytes`);
  }
}

try {
  main();
} catch (err) {
  console.error(`compile: ${err.message}`);
  process.exit(1);
}
