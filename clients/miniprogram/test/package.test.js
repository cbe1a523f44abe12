'use strict';

// The kit as a mini program installs it: `npm pack` makes the tarball a
// registry would serve, a scratch project installs it offline (the package
// has no dependencies), Node loads it by name and uses it, and the folder
// named by the `miniprogram` field is what WeChat DevTools' 构建 npm (Build
// npm) copies to miniprogram_npm/: it must work alone.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const KIT = path.join(__dirname, '..');
const NAME = 'wxnotify-miniprogram';

// The files the tarball must hold, and nothing else (no tests, no tsconfig).
const WANT_FILES = [
  'LICENSE',
  'README.md',
  'example/pages/notify/notify.js',
  'example/pages/notify/notify.json',
  'example/pages/notify/notify.wxml',
  'example/pages/notify/notify.wxss',
  'index.d.ts',
  'miniprogram_dist/index.js',
  'package.json',
];

// USE loads the kit by the given specifier and logs a user in with a
// minimal wx and a request function answering like POST /v1/session.
const USE = `
const kit = require(process.argv[2]);
const stored = new Map();
const wx = {
  login(o) { setTimeout(() => o.success({ errMsg: 'login:ok', code: 'c1' }), 0); },
  getStorageSync(k) { return stored.has(k) ? stored.get(k) : ''; },
  setStorageSync(k, v) { stored.set(k, v); },
  removeStorageSync(k) { stored.delete(k); },
};
const seen = [];
const request = async (req) => {
  seen.push(req.method + ' ' + req.url + ' ' + JSON.stringify(req.data));
  return { statusCode: 200, data: JSON.stringify({ token: 't1', expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' }) };
};
const client = kit.createClient({ endpoints: { login: 'https://login.example.com', consent: 'https://consent.example.com' }, wx, request });
client.login().then((s) => {
  console.log(JSON.stringify({ file: require.resolve(process.argv[2]), session: s, seen, stored: stored.get('wxnotify.session'),
    accepted: kit.isAccepted('accept'), max: kit.MAX_TMPL_IDS_PER_CALL }));
}, (err) => { console.error(err); process.exit(1); });
`;

function npmAvailable() {
  try {
    execFileSync('npm', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error('npm is needed for the package test: ' + err.message);
    return false;
  }
}

describe('the npm package', { skip: !npmAvailable() && 'npm not installed' }, () => {
  let dir;
  let packed;
  let app;
  let installed;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxnotify-kit-'));
    const env = Object.assign({}, process.env, { npm_config_cache: path.join(dir, 'npm-cache') });
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: KIT, env, encoding: 'utf8' });
    packed = JSON.parse(out)[0];
    app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', path.join(dir, packed.filename), '--offline', '--no-audit', '--no-fund'],
      { cwd: app, env, stdio: ['ignore', 'ignore', 'pipe'] });
    installed = path.join(app, 'node_modules', NAME);
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('packs exactly the files a mini program needs', () => {
    assert.deepEqual(packed.files.map((f) => f.path).sort(), WANT_FILES);
    assert.equal(packed.name, NAME);
  });

  it('declares the fields DevTools, npm and TypeScript read', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
    assert.equal(pkg.license, 'Apache-2.0');
    assert.deepEqual(pkg.repository, {
      type: 'git', url: 'git+https://github.com/wxnotify/wxnotify.git', directory: 'clients/miniprogram',
    });
    assert.equal(pkg.miniprogram, 'miniprogram_dist');
    assert.deepEqual(pkg.dependencies, undefined, 'a mini program package builds without dependencies');
    assert.ok(fs.existsSync(path.join(installed, pkg.types)), 'types: ' + pkg.types);
    const main = path.resolve(installed, pkg.main);
    assert.equal(path.dirname(main), path.join(installed, pkg.miniprogram), 'main lies in the miniprogram folder');
    assert.equal(fs.readFileSync(path.join(installed, 'LICENSE'), 'utf8'),
      fs.readFileSync(path.join(KIT, '..', '..', 'LICENSE'), 'utf8'), 'LICENSE is the repository\'s');
  });

  it('the miniprogram folder holds index.js and nothing that reaches outside it', () => {
    const folder = path.join(installed, 'miniprogram_dist');
    // 构建 npm copies this folder; require('wxnotify-miniprogram') then loads its index.js.
    assert.deepEqual(fs.readdirSync(folder), ['index.js']);
    const src = fs.readFileSync(path.join(folder, 'index.js'), 'utf8');
    const requires = [...src.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
    assert.deepEqual(requires, [], 'the kit requires nothing: DevTools copies no other file');
    // The source is ES2017: no syntax a mini program's base library may lack.
    for (const [re, what] of [[/\?\?/, '??'], [/\?\.[a-zA-Z_$[(]/, '?.'], [/^\s*import\s|^\s*export\s/m, 'ES modules']]) {
      assert.ok(!re.test(src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')), 'uses ' + what);
    }
  });

  it('loads by name from the installed package and logs in', () => {
    fs.writeFileSync(path.join(app, 'use.js'), USE);
    const got = JSON.parse(execFileSync(process.execPath, ['use.js', NAME], { cwd: app, encoding: 'utf8' }));
    assert.equal(got.file, path.join(fs.realpathSync(installed), 'miniprogram_dist', 'index.js'));
    assert.deepEqual(got.session, { token: 't1', expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' });
    assert.deepEqual(got.stored, got.session);
    assert.deepEqual(got.seen, ['POST https://login.example.com/v1/session {"code":"c1"}']);
    assert.equal(got.accepted, true);
    assert.equal(got.max, 5);
  });

  it('works as DevTools builds it: the miniprogram folder copied alone to miniprogram_npm/', () => {
    const built = path.join(app, 'miniprogram_npm', NAME);
    fs.cpSync(path.join(installed, 'miniprogram_dist'), built, { recursive: true });
    fs.rmSync(path.join(app, 'node_modules'), { recursive: true });
    const got = JSON.parse(execFileSync(process.execPath, ['use.js', './miniprogram_npm/' + NAME], { cwd: app, encoding: 'utf8' }));
    assert.equal(got.file, path.join(fs.realpathSync(built), 'index.js'));
    assert.equal(got.session.token, 't1');
  });
});
