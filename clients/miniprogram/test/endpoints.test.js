'use strict';

// Where the kit sends each route: one baseURL for every function (AWS, a
// custom domain, `wxnotify dev`), or endpoints with each function's own URL
// (Tencent Cloud), where a function answers 404 to the others' routes.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');
const { createWxStub } = require('./wx-stub');
const { createClient } = require('..');

const LOGIN_URL = 'https://1250000000-login.ap-guangzhou.tencentscf.com';
const CONSENT_URL = 'https://1250000000-consent.ap-guangzhou.tencentscf.com';

// tencentWorld is a world whose wxnotify runs as separate functions, each
// reached only at its own host.
function tencentWorld(clientOptions) {
  const world = createWorld(Object.assign({ endpoints: { login: LOGIN_URL, consent: CONSENT_URL } }, clientOptions));
  const byHost = {
    [new URL(LOGIN_URL).host]: world.server.functionHandler('login'),
    [new URL(CONSENT_URL).host]: world.server.functionHandler('consent'),
  };
  world.stub.on('request', (req) => {
    const handle = byHost[new URL(req.url).host];
    return handle ? handle(req) : { fail: { errMsg: 'request:fail unknown host ' + req.url } };
  });
  return world;
}

// routes lists the requests as "<host> <method> <path>".
function routes(stub) {
  return stub.callsOf('request').map((c) => {
    const u = new URL(c.args.url);
    return u.host + ' ' + c.args.method + ' ' + u.pathname;
  });
}

describe('endpoints', () => {
  const login = new URL(LOGIN_URL).host;
  const consent = new URL(CONSENT_URL).host;

  it('sends POST /v1/session to the login function and the consent routes to the consent function', async () => {
    const { client, stub } = tencentWorld();
    await client.prepare(['lead_assigned']);
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(state.consents.find((c) => c.alias === 'lead_assigned').credits, 1);
    await client.consents();
    assert.deepEqual(routes(stub), [
      login + ' POST /v1/session',
      consent + ' GET /v1/templates',
      consent + ' POST /v1/consents',
      consent + ' POST /v1/consents/shown',
      consent + ' GET /v1/consents',
    ]);
  });

  it('a 401 from the consent function logs in again at the login function', async () => {
    const { client, stub, server } = tencentWorld();
    await client.login();
    server.tokens.clear();
    await client.consents();
    assert.deepEqual(routes(stub), [
      login + ' POST /v1/session',
      consent + ' GET /v1/consents',
      login + ' POST /v1/session',
      consent + ' GET /v1/consents',
    ]);
  });

  it('trims trailing slashes', async () => {
    const { client, stub } = tencentWorld({ endpoints: { login: LOGIN_URL + '/', consent: CONSENT_URL + '//' } });
    await client.templates();
    assert.deepEqual(routes(stub), [login + ' POST /v1/session', consent + ' GET /v1/templates']);
  });

  it('needs no login URL with loginWith', async () => {
    // The app's own login API binds the user and returns wxnotify's session body.
    const world = tencentWorld({
      endpoints: { consent: CONSENT_URL },
      loginWith: async () => world.server.issue('o-bound', 'sales-42'),
    });
    const s = await world.client.login();
    assert.equal(s.userId, 'sales-42');
    await world.client.templates();
    assert.deepEqual(routes(world.stub), [consent + ' GET /v1/templates'], 'loginWith logs in without the login function');
  });
});

describe('baseURL', () => {
  it('sends every route to one address', async () => {
    const { client, stub } = createWorld();
    await client.prepare(['lead_assigned']);
    await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.deepEqual(routes(stub), [
      'notify.example.com POST /v1/session',
      'notify.example.com GET /v1/templates',
      'notify.example.com POST /v1/consents',
      'notify.example.com POST /v1/consents/shown',
    ]);
  });

  it('keeps a path prefix', async () => {
    const { client, stub } = createWorld({ baseURL: 'https://api.example.com/release/' });
    stub.on('request', () => ({ statusCode: 200, data: { token: 't', expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' } }));
    await client.login();
    assert.equal(stub.callsOf('request')[0].args.url, 'https://api.example.com/release/v1/session');
  });
});

describe('createClient refuses an address that is neither baseURL nor endpoints', () => {
  const stub = createWxStub();
  const cases = [
    { name: 'neither', options: {}, error: /needs baseURL, one address for every route .* or endpoints, the URL of each function the kit calls \(\{login, consent\}/ },
    { name: 'both', options: { baseURL: CONSENT_URL, endpoints: { login: LOGIN_URL, consent: CONSENT_URL } }, error: /either baseURL .* or endpoints .*, not both/ },
    { name: 'relative baseURL', options: { baseURL: '/api' }, error: /baseURL must be an http\(s\) URL, .*got "\/api"/ },
    { name: 'baseURL not a string', options: { baseURL: 42 }, error: /baseURL must be an http\(s\) URL, .*got number/ },
    { name: 'endpoints a string', options: { endpoints: CONSENT_URL }, error: /endpoints must be an object \{login, consent\}/ },
    { name: 'endpoints an array', options: { endpoints: [LOGIN_URL, CONSENT_URL] }, error: /endpoints must be an object/ },
    { name: 'no consent', options: { endpoints: { login: LOGIN_URL } }, error: /endpoints\.consent is required: the consent function's URL \(GET \/v1\/templates, GET\|POST \/v1\/consents, POST \/v1\/consents\/shown, GET \/v1\/consents\/advice\)/ },
    { name: 'no login without loginWith', options: { endpoints: { consent: CONSENT_URL } }, error: /endpoints\.login is required unless loginWith is given: the login function's URL \(POST \/v1\/session\)/ },
    { name: 'a function the kit does not call', options: { endpoints: { login: LOGIN_URL, consent: CONSENT_URL, send: CONSENT_URL } }, error: /endpoints\.send is not a function the kit calls: it calls login \(POST \/v1\/session\) and consent/ },
    { name: 'a misspelt function', options: { endpoints: { login: LOGIN_URL, consents: CONSENT_URL } }, error: /endpoints\.consents is not a function the kit calls/ },
    { name: 'a relative endpoint', options: { endpoints: { login: '/v1', consent: CONSENT_URL } }, error: /endpoints\.login must be an http\(s\) URL/ },
    { name: 'an empty endpoint', options: { endpoints: { login: LOGIN_URL, consent: '' } }, error: /endpoints\.consent must be an http\(s\) URL, .*got ""/ },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      assert.throws(() => createClient(Object.assign({ wx: stub.wx }, tc.options)),
        (err) => err instanceof TypeError && tc.error.test(err.message) && err.message.startsWith('wxnotify: '),
        JSON.stringify(tc.options));
    });
  }

  it('without options at all', () => {
    assert.throws(() => createClient(), /createClient needs options: \{baseURL\} or \{endpoints: \{login, consent\}\}/);
  });
});
