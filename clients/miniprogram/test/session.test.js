'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');
const { createClient, ApiError, WxError } = require('..');
const { createWxStub } = require('./wx-stub');

const STORAGE_KEY = 'wxnotify.session';

describe('createClient', () => {
  it('refuses a missing or relative baseURL', () => {
    const stub = createWxStub();
    for (const options of [undefined, {}, { baseURL: '' }, { baseURL: '/api' }, { baseURL: 42 }]) {
      assert.throws(() => createClient(Object.assign({ wx: stub.wx }, options)), TypeError, JSON.stringify(options));
    }
  });

  it('refuses a bad maxPerCall', () => {
    const stub = createWxStub();
    for (const maxPerCall of [0, -1, 2.5, '3']) {
      assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, maxPerCall }), TypeError, String(maxPerCall));
    }
  });

  it('refuses to run without a wx object', () => {
    assert.throws(() => createClient({ baseURL: 'https://notify.example.com' }), /no wx object/);
  });

  it('takes the global wx and trims the trailing slash of baseURL', async () => {
    const stub = createWxStub();
    stub.on('request', () => ({ statusCode: 200, data: { token: 't', expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' } }));
    global.wx = stub.wx;
    try {
      const client = createClient({ baseURL: 'https://notify.example.com/' });
      await client.login();
    } finally {
      delete global.wx;
    }
    assert.equal(stub.callsOf('request')[0].args.url, 'https://notify.example.com/v1/session');
  });
});

describe('login', () => {
  it('exchanges a wx.login code at POST /v1/session and stores the session', async () => {
    const { stub, client } = createWorld();
    const s = await client.login();
    assert.deepEqual(stub.requests(), [{
      method: 'POST', path: '/v1/session',
      header: { Accept: 'application/json', 'Content-Type': 'application/json' },
      data: { code: 'code-1' },
    }]);
    assert.deepEqual(Object.keys(s).sort(), ['expiresAt', 'openid', 'token']);
    assert.equal(s.token, 'tok-1');
    assert.deepEqual(stub.wx.getStorageSync(STORAGE_KEY), s);
    assert.deepEqual(client.getSession(), s);
  });

  it('hands the code to loginWith and keeps the session body it returns', async () => {
    let gotCode;
    const { stub, server, client } = createWorld({
      storageKey: 'app.notify',
      loginWith: async (code) => {
        gotCode = code;
        return server.issue('o-sales-42', 'sales-42'); // as the app's backend gets it from POST /v1/bindings
      },
    });
    const s = await client.login();
    assert.equal(gotCode, 'code-1');
    assert.equal(s.userId, 'sales-42');
    assert.equal(stub.callsOf('request').length, 0, 'POST /v1/session must not be called with loginWith');
    assert.deepEqual(stub.wx.getStorageSync('app.notify'), s);
    await client.consents();
    assert.equal(stub.requests()[0].header.Authorization, 'Bearer ' + s.token);
  });

  it('rejects a loginWith answer that is not a session body', async () => {
    const { client, stub } = createWorld({ loginWith: async () => ({ ok: true }) });
    await assert.rejects(client.login(), /not a session body/);
    assert.equal(stub.wx.getStorageSync(STORAGE_KEY), '');
  });

  it('rejects with WxError when wx.login fails', async () => {
    const { client, stub } = createWorld();
    stub.on('login', () => ({ fail: { errMsg: 'login:fail timeout' } }));
    await assert.rejects(client.login(), (err) => err instanceof WxError && err.api === 'login' && err.errMsg === 'login:fail timeout');
  });

  it('shares one wx.login among concurrent calls', async () => {
    const { client, stub } = createWorld();
    const [a, b] = await Promise.all([client.login(), client.login()]);
    assert.equal(a, b);
    assert.equal(stub.callsOf('login').length, 1);
  });

  it('reuses a stored session without logging in', async () => {
    const { client, stub, server } = createWorld();
    stub.wx.setStorageSync(STORAGE_KEY, server.issue('o-user'));
    await client.consents();
    assert.equal(stub.callsOf('login').length, 0);
    assert.equal(stub.requests()[0].header.Authorization, 'Bearer tok-1');
  });

  it('ignores garbage in storage', async () => {
    const { client, stub } = createWorld();
    stub.wx.setStorageSync(STORAGE_KEY, { token: 'x', expiresAt: 'never' });
    assert.equal(client.getSession(), null);
    await client.consents();
    assert.equal(stub.callsOf('login').length, 1);
  });

  it('logout forgets the session', async () => {
    const { client, stub } = createWorld();
    await client.login();
    client.logout();
    assert.equal(client.getSession(), null);
    assert.equal(stub.wx.getStorageSync(STORAGE_KEY), '');
  });
});

describe('session renewal', () => {
  const cases = [
    { name: 'expired token is renewed before the call', advance: 2 * 60 * 60 * 1000, logins: 2 },
    { name: 'token about to expire is renewed before the call', advance: 60 * 60 * 1000 - 30 * 1000, logins: 2 },
    { name: 'fresh token is used as is', advance: 60 * 60 * 1000 - 5 * 60 * 1000, logins: 1 },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const { client, stub, clock } = createWorld();
      await client.login();
      clock.advance(tc.advance);
      await client.consents();
      assert.equal(stub.callsOf('login').length, tc.logins, 'wx.login calls');
      const reqs = stub.requests();
      const last = reqs[reqs.length - 1];
      assert.equal(last.path, '/v1/consents');
      assert.equal(last.header.Authorization, 'Bearer tok-' + tc.logins);
      assert.equal(reqs.filter((r) => r.path === '/v1/consents').length, 1, 'GET /v1/consents sent once, never with a stale token');
    });
  }

  it('a 401 renews once and retries the call once', async () => {
    const { client, stub, server } = createWorld();
    await client.login();
    server.tokens.clear(); // e.g. the session secret was rotated
    const state = await client.consents();
    assert.ok(Array.isArray(state.consents));
    assert.deepEqual(stub.requests().map((r) => r.method + ' ' + r.path + ' ' + (r.header.Authorization || '')), [
      'POST /v1/session ',
      'GET /v1/consents Bearer tok-1',
      'POST /v1/session ',
      'GET /v1/consents Bearer tok-2',
    ]);
  });

  it('a second 401 rejects instead of looping', async () => {
    const { client, stub, server } = createWorld();
    server.override('GET /v1/consents', () => ({
      statusCode: 401, data: { error: { code: 'unauthorized', message: 'invalid session', requestId: 'r-401' } },
    }));
    await assert.rejects(client.consents(), (err) => err instanceof ApiError && err.status === 401 && err.code === 'unauthorized');
    assert.equal(stub.callsOf('login').length, 2, 'wx.login: the first login and one renewal');
    assert.equal(stub.requests().filter((r) => r.path === '/v1/consents').length, 2, 'the call and one retry');
  });

  it('concurrent 401s share one renewal', async () => {
    const { client, stub, server } = createWorld();
    await client.login();
    server.tokens.clear();
    await Promise.all([client.consents(), client.templates(), client.consents()]);
    assert.equal(stub.callsOf('login').length, 2);
  });

  it('a failed POST /v1/session is not retried', async () => {
    const { client, stub, server } = createWorld();
    server.override('POST /v1/session', () => ({
      statusCode: 400, data: { error: { code: 'invalid_code', message: 'code expired', wechatErrcode: 40029, requestId: 'r-1' } },
    }));
    await assert.rejects(client.consents(), (err) => err.code === 'invalid_code' && err.wechatErrcode === 40029);
    assert.equal(stub.callsOf('request').length, 1);
  });
});

describe('API errors', () => {
  const cases = [
    {
      name: 'error body',
      res: { statusCode: 400, data: { error: { code: 'bad_request', message: 'must be a string', field: 'result.tpl-lead', requestId: 'req-9' } } },
      want: { status: 400, code: 'bad_request', message: 'must be a string', field: 'result.tpl-lead', wechatErrcode: undefined, requestId: 'req-9' },
    },
    {
      name: 'error body with wechatErrcode',
      res: { statusCode: 403, data: { error: { code: 'blocked_user', message: 'high-risk user', wechatErrcode: 40226, requestId: 'req-1' } } },
      want: { status: 403, code: 'blocked_user', message: 'high-risk user', field: undefined, wechatErrcode: 40226, requestId: 'req-1' },
    },
    {
      name: 'error body as a JSON string',
      res: { statusCode: 429, data: '{"error":{"code":"rate_limited","message":"slow down","requestId":"req-2"}}' },
      want: { status: 429, code: 'rate_limited', message: 'slow down', field: undefined, wechatErrcode: undefined, requestId: 'req-2' },
    },
    {
      name: 'gateway page without error body',
      res: { statusCode: 502, data: '<html>Bad Gateway</html>', header: { 'x-request-id': 'gw-7' } },
      want: { status: 502, code: 'http_502', message: 'wxnotify answered HTTP 502', field: undefined, wechatErrcode: undefined, requestId: 'gw-7' },
    },
    {
      name: 'network failure',
      res: { fail: { errMsg: 'request:fail timeout' } },
      want: { status: 0, code: 'network', message: 'request:fail timeout', field: undefined, wechatErrcode: undefined, requestId: undefined },
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const { client, server } = createWorld();
      server.override('GET /v1/templates', () => tc.res);
      let got;
      await client.templates().catch((err) => {
        got = err;
      });
      assert.ok(got instanceof ApiError, 'got ' + got + ', want an ApiError');
      assert.equal(got.name, 'ApiError');
      assert.deepEqual(
        { status: got.status, code: got.code, message: got.message, field: got.field, wechatErrcode: got.wechatErrcode, requestId: got.requestId },
        tc.want
      );
    });
  }

  it('uses a custom request function', async () => {
    const stub = createWxStub();
    const seen = [];
    const client = createClient({
      baseURL: 'https://notify.example.com',
      wx: stub.wx,
      timeout: 5000,
      request: async (req) => {
        seen.push(req);
        if (req.url.endsWith('/v1/session')) {
          return { statusCode: 200, data: { token: 'T', expiresAt: '2099-01-01T00:00:00Z', openid: 'o' } };
        }
        return { statusCode: 200, data: { templates: [] } };
      },
    });
    assert.deepEqual(await client.templates(), []);
    assert.equal(stub.callsOf('request').length, 0);
    assert.deepEqual(seen.map((r) => [r.method, r.url, r.header.Authorization, r.timeout]), [
      ['POST', 'https://notify.example.com/v1/session', undefined, 5000],
      ['GET', 'https://notify.example.com/v1/templates', 'Bearer T', 5000],
    ]);
  });
});

describe('templates', () => {
  it('are fetched once per client', async () => {
    const { client, stub, server } = createWorld();
    const [a, b] = await Promise.all([client.templates(), client.templates()]);
    const c = await client.templates();
    assert.deepEqual(a, server.templates);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    assert.equal(stub.requests().filter((r) => r.path === '/v1/templates').length, 1);
    await client.templates({ refresh: true });
    assert.equal(stub.requests().filter((r) => r.path === '/v1/templates').length, 2);
  });

  it('a failure is not cached', async () => {
    const { client, stub, server } = createWorld();
    server.override('GET /v1/templates', () => ({ statusCode: 503, data: { error: { code: 'wechat_unavailable', message: 'busy' } } }));
    await assert.rejects(client.templates(), { code: 'wechat_unavailable' });
    server.override('GET /v1/templates', () => ({ statusCode: 200, data: { templates: server.templates } }));
    assert.equal((await client.templates()).length, server.templates.length);
    assert.equal(stub.requests().filter((r) => r.path === '/v1/templates').length, 2);
  });
});
