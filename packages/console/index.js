// Where the built console lives: OpenDPS serves this directory under /console/ (docs/console.md).
module.exports = { distDir: require('node:path').join(__dirname, 'dist') };
