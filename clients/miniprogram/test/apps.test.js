'use strict';

// The app option: a deployment serving several mini programs answers each
// app's routes under /v1/apps/{app}/... ({app} its id or AppID); without
// the option the kit calls the short routes (the default app's).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld, APPS } = require('./fake-server');
const { createWxStub, DEFAULT_APP_ID } = require('./wx-stub');
const { createClient, ApiError } = require('..');

const [SALES, CUSTOMER] = APPS;

// paths lists the requests as "<method> <path>".
function paths(stub) {
  return stub.callsOf('request').map((c) => c.args.method + ' ' + new URL(c.args.url).pathname);
}

// flow logs in, subscribes to lead_assigned and reads the consents.
async function flow(client, stub) {
  await client.prepare(['lead_assigned']);
  const state = await stub.tap(() => client.subscribe(['lead_assigned']));
  await client.consents();
  return state;
}

describe('app', () => {
  it('without app, calls the short routes', async () => {
    const { client, stub } = createWorld();
    await flow(client, stub);
    assert.deepEqual(paths(stub), ['POST /v1/session', 'GET /v1/templates', 'POST /v1/consents', 'POST /v1/consents/shown',
      'GET /v1/consents']);
    assert.equal(stub.callsOf('getAccountInfoSync').length, 0, 'no AppID is read without app');
  });

  for (const [what, app] of [['an app id', CUSTOMER.id], ['an AppID', CUSTOMER.appId]]) {
    it('with ' + what + ', calls /v1/apps/<app>/... under baseURL', async () => {
      const { client, stub, server } = createWorld({ app });
      const state = await flow(client, stub);
      const base = '/v1/apps/' + app;
      assert.deepEqual(paths(stub), ['POST ' + base + '/session', 'GET ' + base + '/templates',
        'POST ' + base + '/consents', 'POST ' + base + '/consents/shown', 'GET ' + base + '/consents']);
      assert.equal(state.consents.find((c) => c.alias === 'lead_assigned').credits, 1);
      const token = client.getSession().token;
      assert.equal(server.tokens.get(token).app, CUSTOMER.id, 'the session is the app\'s');
    });
  }

  it('with app "auto", uses the AppID of wx.getAccountInfoSync', async () => {
    const { client, stub } = createWorld({ app: 'auto' }, { stub: { appId: SALES.appId } });
    await flow(client, stub);
    assert.equal(stub.callsOf('getAccountInfoSync').length, 1, 'read once, when the client is created');
    assert.deepEqual(paths(stub)[0], 'POST /v1/apps/' + SALES.appId + '/session');
    assert.ok(paths(stub).every((p) => p.includes('/v1/apps/' + SALES.appId + '/')), paths(stub).join(', '));
  });

  it('encodes the app in the path and keeps a baseURL prefix', async () => {
    const stub = createWxStub();
    stub.on('request', () => ({ statusCode: 200, data: { token: 't', expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' } }));
    const client = createClient({ baseURL: 'https://api.example.com/release/', app: 'sales_2-B', wx: stub.wx });
    await client.login();
    assert.equal(stub.callsOf('request')[0].args.url, 'https://api.example.com/release/v1/apps/sales_2-B/session');
  });

  it('with endpoints, calls the app routes under each function\'s URL', async () => {
    const login = 'https://1250000000-login.ap-guangzhou.tencentscf.com';
    const consent = 'https://1250000000-consent.ap-guangzhou.tencentscf.com';
    const world = createWorld({ endpoints: { login, consent }, app: CUSTOMER.id });
    const byHost = {
      [new URL(login).host]: world.server.functionHandler('login'),
      [new URL(consent).host]: world.server.functionHandler('consent'),
    };
    world.stub.on('request', (req) => byHost[new URL(req.url).host](req));
    await world.client.templates();
    assert.deepEqual(world.stub.callsOf('request').map((c) => c.args.url), [
      login + '/v1/apps/customer/session',
      consent + '/v1/apps/customer/templates',
    ]);
  });

  it('an unknown app is the server\'s 404 app_not_found', async () => {
    const { client } = createWorld({ app: 'nope' });
    await assert.rejects(client.login(), (err) => err instanceof ApiError && err.status === 404 && err.code === 'app_not_found');
  });

  it('a stored session of another app logs in again once (403 app_forbidden)', async () => {
    const { client, stub, server } = createWorld({ app: CUSTOMER.id });
    const other = server.issue('o-user', undefined, SALES.id);
    stub.wx.setStorageSync('wxnotify.session', other);
    const state = await client.consents();
    assert.ok(Array.isArray(state.consents));
    assert.deepEqual(paths(stub), ['GET /v1/apps/customer/consents', 'POST /v1/apps/customer/session', 'GET /v1/apps/customer/consents']);
    assert.notEqual(client.getSession().token, other.token);
  });

  it('a 403 app_forbidden after logging in again is the caller\'s', async () => {
    const { client, server } = createWorld({ app: CUSTOMER.id });
    server.override('GET /v1/consents', () => ({ statusCode: 403, data: { error: { code: 'app_forbidden', message: 'no' } } }));
    await assert.rejects(client.consents(), (err) => err instanceof ApiError && err.status === 403 && err.code === 'app_forbidden');
  });

  it('another 403 is not retried', async () => {
    const { client, stub, server } = createWorld({ app: CUSTOMER.id });
    server.override('GET /v1/consents', () => ({ statusCode: 403, data: { error: { code: 'blocked_user', message: 'no' } } }));
    await assert.rejects(client.consents(), (err) => err instanceof ApiError && err.code === 'blocked_user');
    assert.deepEqual(paths(stub), ['POST /v1/apps/customer/session', 'GET /v1/apps/customer/consents']);
  });
});

describe('createClient refuses an app that cannot be one', () => {
  const cases = [
    { name: 'empty', app: '', error: /app must be the app's id in wxnotify\.yaml .*, its AppID .* or "auto", got ""/ },
    { name: 'a slash', app: 'sales/x', error: /app must be .*got "sales\/x"/ },
    { name: 'too long', app: 'a'.repeat(65), error: /app must be/ },
    { name: 'not a string', app: 42, error: /app must be .*got number/ },
    { name: 'null', app: null, error: /app must be .*got object/ },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const stub = createWxStub();
      assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, app: tc.app }),
        (err) => err instanceof TypeError && tc.error.test(err.message), JSON.stringify(tc.app));
    });
  }

  it('"auto" without wx.getAccountInfoSync', () => {
    const stub = createWxStub();
    delete stub.wx.getAccountInfoSync;
    assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, app: 'auto' }),
      (err) => err instanceof TypeError && /app "auto" needs wx\.getAccountInfoSync .*give app the app's id or AppID instead/.test(err.message));
  });

  it('"auto" when wx.getAccountInfoSync throws', () => {
    const stub = createWxStub();
    stub.on('getAccountInfoSync', () => {
      throw new Error('getAccountInfoSync:fail not supported');
    });
    assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, app: 'auto' }),
      (err) => err instanceof TypeError && /wx\.getAccountInfoSync failed \(getAccountInfoSync:fail not supported\)/.test(err.message));
  });

  for (const [what, info] of [['no miniProgram', {}], ['no appId', { miniProgram: {} }], ['an empty appId', { miniProgram: { appId: '' } }], ['nothing', undefined]]) {
    it('"auto" when wx.getAccountInfoSync gives ' + what, () => {
      const stub = createWxStub();
      stub.on('getAccountInfoSync', () => info);
      assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, app: 'auto' }),
        (err) => err instanceof TypeError && /app "auto": wx\.getAccountInfoSync gave no AppID/.test(err.message));
    });
  }

  it('the stub\'s default AppID is a valid app', () => {
    const stub = createWxStub();
    assert.doesNotThrow(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, app: 'auto' }));
    assert.equal(stub.callsOf('getAccountInfoSync').length, 1);
    assert.match(DEFAULT_APP_ID, /^wx/);
  });
});
