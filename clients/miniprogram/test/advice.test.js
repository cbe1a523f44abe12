'use strict';

// suggestedTemplates(): the template ids GET /v1/consents/advice suggests,
// ready for wx.requestSubscribeMessage, with the catalog loaded so that
// subscribe(ids) shows the popup within the tap.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');
const { ApiError } = require('..');

function advicePaths(stub) {
  return stub.requests().filter((r) => r.method === 'GET' && r.path.includes('/consents/advice')).map((r) => r.path);
}

describe('suggestedTemplates', () => {
  it('returns the suggested ids (3 by default), which subscribe() then asks for within the tap', async () => {
    const { client, stub, server } = createWorld();
    const ids = await client.suggestedTemplates();
    assert.deepEqual(ids, ['tpl-lead', 'tpl-digest', 'tpl-visit']);
    assert.deepEqual(advicePaths(stub), ['/v1/consents/advice?limit=3']);
    assert.ok(stub.requests().some((r) => r.path === '/v1/templates'), 'the catalog is loaded');

    stub.calls.length = 0;
    const state = await stub.tap(() => client.subscribe(ids));
    const popups = stub.callsOf('requestSubscribeMessage');
    assert.equal(popups.length, 1);
    assert.equal(popups[0].inTap, true, 'no request before the popup: the catalog was loaded');
    assert.deepEqual(popups[0].args.tmplIds, ids);
    assert.deepEqual(state.remaining, []);
    assert.equal(server.entry('o-user', 'tpl-lead').credits, 1);

    // The credits now cover those templates: the next ones are suggested.
    assert.deepEqual(await client.suggestedTemplates(), ['tpl-paid', 'tpl-shipped', 'tpl-summary']);
  });

  it('never suggests a template rejected with "always keep", and an empty list when nothing is worth asking', async () => {
    const { client, server } = createWorld();
    await client.login();
    Object.assign(server.entry('o-user', 'tpl-lead'), { status: 'reject', alwaysKeep: true });
    Object.assign(server.entry('o-user', 'tpl-digest'), { status: 'ban' });
    assert.deepEqual(await client.suggestedTemplates(), ['tpl-visit', 'tpl-paid', 'tpl-shipped']);
    for (const t of server.templates) {
      if (t.kind === 'one-time') server.entry('o-user', t.templateId).credits += 1;
      else server.entry('o-user', t.templateId).longTerm = true;
    }
    assert.deepEqual(await client.suggestedTemplates(), []);
  });

  it('asks for limit ids, at most maxPerCall', async () => {
    const { client, stub } = createWorld({ maxPerCall: 2 });
    assert.deepEqual(await client.suggestedTemplates(), ['tpl-lead', 'tpl-digest'], 'default: maxPerCall when below 3');
    assert.deepEqual(await client.suggestedTemplates({ limit: 1 }), ['tpl-lead']);
    assert.deepEqual(advicePaths(stub), ['/v1/consents/advice?limit=2', '/v1/consents/advice?limit=1']);
    for (const limit of [0, 3, 1.5, '2', null]) {
      await assert.rejects(client.suggestedTemplates({ limit }), TypeError, 'limit ' + String(limit));
    }
    assert.equal(advicePaths(stub).length, 2, 'a bad limit sends nothing');
    const five = createWorld();
    assert.equal((await five.client.suggestedTemplates({ limit: 5 })).length, 5);
  });

  it('keeps only ids of the catalog, and refuses an answer without a suggested list', async () => {
    const { client, server } = createWorld();
    server.override('GET /v1/consents/advice', () => ({ statusCode: 200, data: { suggested: ['tpl-paid', 'gone', 'tpl-lead'] } }));
    assert.deepEqual(await client.suggestedTemplates(), ['tpl-paid', 'tpl-lead']);
    server.override('GET /v1/consents/advice', () => ({ statusCode: 200, data: { suggested: [1] } }));
    await assert.rejects(client.suggestedTemplates(), TypeError);
    server.override('GET /v1/consents/advice', () => ({ statusCode: 200, data: {} }));
    await assert.rejects(client.suggestedTemplates(), TypeError);
  });

  it('passes wxnotify\'s refusal on as ApiError, and logs in again after a 401', async () => {
    const { client, server, clock, stub } = createWorld({}, { ttlMs: 120000 });
    server.override('GET /v1/consents/advice', () => ({ statusCode: 503,
      data: { error: { code: 'store_unavailable', message: 'retry', requestId: 'req-9' } } }));
    await assert.rejects(client.suggestedTemplates(), (err) => err instanceof ApiError && err.status === 503 &&
      err.code === 'store_unavailable' && err.requestId === 'req-9');
    server.override('GET /v1/consents/advice', undefined);
    const first = client.getSession().token;
    server.tokens.delete(first); // the server forgot it: 401
    clock.advance(1000);
    assert.equal((await client.suggestedTemplates()).length, 3);
    assert.notEqual(client.getSession().token, first, 'a new session');
    assert.equal(stub.requests().filter((r) => r.path === '/v1/session').length, 2);
  });

  it('with endpoints, asks the consent function', async () => {
    const login = 'https://1250000000-login.ap-guangzhou.tencentscf.com';
    const consent = 'https://1250000000-consent.ap-guangzhou.tencentscf.com';
    const { client, stub, server } = createWorld({ endpoints: { login, consent } });
    const byHost = { [new URL(login).host]: server.functionHandler('login'), [new URL(consent).host]: server.functionHandler('consent') };
    stub.on('request', (req) => byHost[new URL(req.url).host](req));
    assert.equal((await client.suggestedTemplates()).length, 3);
    const advice = stub.callsOf('request').find((c) => c.args.url.includes('/consents/advice'));
    assert.equal(advice.args.url, consent + '/v1/consents/advice?limit=3');
  });

  it('with app, calls /v1/apps/<app>/consents/advice', async () => {
    const { client, stub } = createWorld({ app: 'customer' });
    assert.equal((await client.suggestedTemplates()).length, 3);
    assert.deepEqual(advicePaths(stub), ['/v1/apps/customer/consents/advice?limit=3']);
  });
});
