// One jest run for the whole workspace. Tests import sibling packages from their sources
// (mapped below), so `jest` needs no build; suites that spawn the CLI use the built dist.
const fs = require('node:fs');
const path = require('node:path');

const packageDirs = ['packages', 'protocols']
  .flatMap((group) => fs.readdirSync(path.join(__dirname, group)).map((name) => path.join(group, name)))
  .concat(['attestation', 'allocation'])
  .filter((dir) => fs.existsSync(path.join(__dirname, dir, 'package.json')))
  // The console is a browser bundle, not a TypeScript package with src/index.ts: tests load it built.
  .filter((dir) => fs.existsSync(path.join(__dirname, dir, 'src/index.ts')));

const moduleNameMapper = {};
for (const dir of packageDirs) {
  const { name } = require(path.join(__dirname, dir, 'package.json'));
  moduleNameMapper[`^${name.replace('/', '\\/')}$`] = `<rootDir>/${dir}/src/index.ts`;
}

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  moduleNameMapper,
  testTimeout: 30000,
};
