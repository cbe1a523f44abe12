'use strict';

// The kit against a real wxnotify: run `wxnotify dev` without WeChat
// credentials (sandbox mode) and set WXNOTIFY_URL to its address (and
// WXNOTIFY_API_KEY to the API key it prints, for the binding test), e.g.
//   WXNOTIFY_URL=http://127.0.0.1:8080 WXNOTIFY_API_KEY=wxn_dev_... node --test test/
// WXNOTIFY_LOGIN_URL and WXNOTIFY_CONSENT_URL, when set, are the login and
// consent functions each at its own URL on the same store, serving only
// their own routes as on Tencent Cloud (cmd/wxnotify's
// TestMiniprogramKitAgainstDevServer starts them), for the endpoints tests.
// wx.login codes and popup answers come from the sandbox's /sandbox/login
// and /sandbox/subscribe, requests go over HTTP with fetch. Uses the
// lead_assigned template of the bundled example wxnotify.yaml.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { createClient, ApiError } = require('..');
const { createWxStub } = require('./wx-stub');

const BASE = process.env.WXNOTIFY_URL;
const API_KEY = process.env.WXNOTIFY_API_KEY;
const LOGIN_URL = process.env.WXNOTIFY_LOGIN_URL;
const CONSENT_URL = process.env.WXNOTIFY_CONSENT_URL;
const ALIAS = 'lead_assigned';

async function post(path, body, apiKey) {
  const headers = { 'Content-Type': 'application/json' };
  if (apiKey) headers.Authorization = 'Bearer ' + apiKey;
  const res = await fetch(BASE + path, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, 'POST ' + path + ': ' + text);
  return JSON.parse(text);
}

// fetchRequest is a request option for Node: the body comes back as text,
// which the kit parses.
async function fetchRequest(req) {
  const res = await fetch(req.url, {
    method: req.method,
    headers: req.header,
    body: req.data === undefined ? undefined : JSON.stringify(req.data),
    signal: AbortSignal.timeout(10000),
  });
  const header = {};
  res.headers.forEach((v, k) => {
    header[k] = v;
  });
  return { statusCode: res.status, data: await res.text(), header };
}

// sandboxWorld plays one new WeChat user: wx.login asks the sandbox for a
// code, the popup answers with choices through the sandbox. address is
// {baseURL} (default: the dev server) or {endpoints}.
function sandboxWorld(choice, settings, loginWith, address) {
  const user = 'kit-' + crypto.randomUUID();
  const stub = createWxStub({ settings });
  const sent = [];
  const request = (req) => {
    sent.push(req);
    return fetchRequest(req);
  };
  const client = createClient(Object.assign({ wx: stub.wx, request, loginWith }, address || { baseURL: BASE }));
  stub.on('login', async () => ({ ok: Object.assign({ errMsg: 'login:ok' }, await post('/sandbox/login', { user })) }));
  stub.on('requestSubscribeMessage', async (args) => {
    const choices = {};
    args.tmplIds.forEach((id) => {
      choices[id] = choice;
    });
    return { ok: await post('/sandbox/subscribe', { openid: client.getSession().openid, choices }) };
  });
  return { stub, client, sent };
}

describe('against wxnotify dev', { skip: !BASE && 'set WXNOTIFY_URL to a `wxnotify dev` sandbox to run' }, () => {
  it('accept grants a credit and silences the prompt', async () => {
    const { stub, client } = sandboxWorld('accept');
    const [tpl] = await client.prepare([ALIAS]);
    assert.equal(await client.shouldPrompt(ALIAS), true);
    const state = await stub.tap(() => client.subscribe([ALIAS]));
    assert.equal(state.result[tpl.templateId], 'accept');
    const c = state.consents.find((x) => x.alias === ALIAS);
    assert.equal(c.status, 'accept');
    assert.equal(c.credits, 1);
    assert.equal(c.prompt, false);
    assert.equal(await client.shouldPrompt(ALIAS), false);
  });

  it('suggestedTemplates gives the ids of one popup; accepted ones are not suggested again', async () => {
    const { stub, client } = sandboxWorld('accept');
    const ids = await client.suggestedTemplates();
    const catalog = await client.templates();
    assert.ok(ids.length >= 1 && ids.length <= 3, 'ids: ' + ids.join(', '));
    const kinds = new Set(ids.map((id) => catalog.find((t) => t.templateId === id).kind));
    assert.equal(kinds.size, 1, 'one kind per popup');
    const state = await stub.tap(() => client.subscribe(ids));
    assert.deepEqual(state.remaining, []);
    ids.forEach((id) => assert.equal(state.result[id], 'accept'));
    const after = await client.suggestedTemplates({ limit: 5 });
    assert.ok(ids.every((id) => !after.includes(id)), 'credits cover them now: ' + after.join(', '));
  });

  it('a rejection kept for good is recorded from the settings', async () => {
    const world = sandboxWorld('reject');
    const tpl = (await world.client.prepare([ALIAS]))[0];
    world.stub.settings = { mainSwitch: true, itemSettings: { [tpl.templateId]: 'reject' } };
    const state = await world.stub.tap(() => world.client.subscribe([ALIAS]));
    const c = state.consents.find((x) => x.alias === ALIAS);
    assert.deepEqual({ status: c.status, credits: c.credits, alwaysKeep: c.alwaysKeep, prompt: c.prompt },
      { status: 'reject', credits: 0, alwaysKeep: true, prompt: false });
  });

  it('the settings flow reports the switched-on setting', async () => {
    const { stub, client } = sandboxWorld('accept');
    const tpl = (await client.prepare([ALIAS]))[0];
    stub.on('openSetting', () => {
      stub.settings = { mainSwitch: true, itemSettings: { [tpl.templateId]: 'accept' } };
      return { ok: { errMsg: 'openSetting:ok' } };
    });
    const state = await client.openSettingsFlow();
    assert.equal(state.opened, true);
    assert.equal(state.consents.find((x) => x.alias === ALIAS).alwaysKeep, true);
  });

  it('a session the server refuses is renewed once', async () => {
    const { stub, client } = sandboxWorld('accept');
    await client.login();
    const s = client.getSession();
    stub.wx.setStorageSync('wxnotify.session', Object.assign({}, s, { token: s.token + 'x' }));
    const fresh = createClient({ baseURL: BASE, wx: stub.wx, request: fetchRequest });
    const state = await fresh.consents();
    assert.ok(state.consents.some((x) => x.alias === ALIAS));
    assert.equal(stub.callsOf('login').length, 2);
  });

  it('loginWith binds through the app backend and the bound user gets the message',
    { skip: !API_KEY && 'set WXNOTIFY_API_KEY to the key `wxnotify dev` prints' }, async () => {
      const userId = 'sales-' + crypto.randomUUID();
      // The app's own login API: checks its user, then binds with its API key.
      const appLogin = (code) => post('/v1/bindings', { userId, code }, API_KEY);
      const { stub, client } = sandboxWorld('accept', undefined, appLogin);
      const s = await client.login();
      assert.equal(s.userId, userId);
      await client.prepare([ALIAS]);
      await stub.tap(() => client.subscribe([ALIAS]));
      const sent = await post('/v1/notifications', {
        to: { userId }, template: ALIAS,
        data: { thing1: 'Acme Ltd', character_string2: 'L-1001', time3: '15:01', thing4: 'Website' },
      }, API_KEY);
      assert.equal(sent.status, 'sent', JSON.stringify(sent));
      const state = await client.consents();
      assert.equal(state.consents.find((x) => x.alias === ALIAS).credits, 0);
      assert.equal(await client.shouldPrompt(ALIAS, state), true);
    });

  it('an invalid wx.login code is an ApiError with the error body', async () => {
    const stub = createWxStub();
    stub.on('login', () => ({ ok: { errMsg: 'login:ok', code: 'not-a-code' } }));
    const client = createClient({ baseURL: BASE, wx: stub.wx, request: fetchRequest });
    await assert.rejects(client.login(), (err) =>
      err instanceof ApiError && err.status === 400 && err.code === 'invalid_code' && typeof err.requestId === 'string');
  });
});

describe('against wxnotify functions at their own URLs', {
  skip: !(BASE && LOGIN_URL && CONSENT_URL) && 'set WXNOTIFY_LOGIN_URL and WXNOTIFY_CONSENT_URL to run',
}, () => {
  const endpoints = { login: LOGIN_URL, consent: CONSENT_URL };

  // routes lists requests as "<function> <method> <path>".
  function routes(sent) {
    const names = { [new URL(LOGIN_URL).origin]: 'login', [new URL(CONSENT_URL).origin]: 'consent' };
    return sent.map((req) => {
      const u = new URL(req.url);
      return (names[u.origin] || u.origin) + ' ' + req.method + ' ' + u.pathname;
    });
  }

  it('endpoints: the login function logs in, the consent function records the popup', async () => {
    const { stub, client, sent } = sandboxWorld('accept', undefined, undefined, { endpoints });
    const [tpl] = await client.prepare([ALIAS]);
    const state = await stub.tap(() => client.subscribe([ALIAS]));
    assert.equal(state.result[tpl.templateId], 'accept');
    const c = state.consents.find((x) => x.alias === ALIAS);
    assert.deepEqual({ status: c.status, credits: c.credits }, { status: 'accept', credits: 1 });
    assert.deepEqual(routes(sent), [
      'login POST /v1/session',
      'consent GET /v1/templates',
      'consent POST /v1/consents',
      'consent POST /v1/consents/shown',
    ]);
  });

  it('a session the consent function refuses is renewed at the login function', async () => {
    const { stub, client, sent } = sandboxWorld('accept', undefined, undefined, { endpoints });
    const s = await client.login();
    stub.wx.setStorageSync('wxnotify.session', Object.assign({}, s, { token: s.token + 'x' }));
    const fresh = createClient({ endpoints, wx: stub.wx, request: (req) => {
      sent.push(req);
      return fetchRequest(req);
    } });
    const state = await fresh.consents();
    assert.ok(state.consents.some((x) => x.alias === ALIAS));
    assert.deepEqual(routes(sent), [
      'login POST /v1/session',
      'consent GET /v1/consents',
      'login POST /v1/session',
      'consent GET /v1/consents',
    ]);
  });

  it('one function\'s URL as baseURL is refused by the routes it does not serve', async () => {
    const { client } = sandboxWorld('accept', undefined, undefined, { baseURL: CONSENT_URL });
    await assert.rejects(client.login(), (err) => err instanceof ApiError && err.status === 404 && err.code === 'not_found');
  });
});
