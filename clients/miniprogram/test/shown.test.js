'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');

async function prepared(clientOptions, worldOptions) {
  const w = createWorld(clientOptions, worldOptions);
  await w.client.prepare(['lead_assigned', 'lead_digest']);
  w.stub.calls.length = 0;
  return w;
}

function shownPosts(stub) {
  return stub.requests().filter((r) => r.method === 'POST' && r.path === '/v1/consents/shown');
}

describe('shown popups', () => {
  it('reports each popup opened, with its templates, after its consent report', async () => {
    const { client, stub, server } = await prepared();
    await stub.tap(() => client.subscribe(['lead_assigned', 'lead_digest']));
    assert.deepEqual(stub.requests().map((r) => r.method + ' ' + r.path).slice(-2),
      ['POST /v1/consents', 'POST /v1/consents/shown']);
    const [post] = shownPosts(stub);
    assert.deepEqual(post.data, { templates: ['tpl-lead', 'tpl-digest'] });
    assert.match(post.header['Idempotency-Key'], /^shown-[!-~]{1,120}$/);
    assert.equal(server.shownCount('o-user', 'tpl-lead'), 1);
    await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(server.shownCount('o-user', 'tpl-lead'), 2);
    assert.equal(server.shownCount('o-user', 'tpl-digest'), 1);
    const keys = shownPosts(stub).map((p) => p.header['Idempotency-Key']);
    assert.notEqual(keys[0], keys[1], 'a new popup, a new key');
  });

  it('resends a shown report after a 5xx with the same key, counted once', async () => {
    const { client, stub, server } = await prepared({ reportRetryDelay: 1 });
    let failures = 1;
    server.override('POST /v1/consents/shown', (req) => {
      if (failures-- > 0) {
        return { statusCode: 503, data: { error: { code: 'store_unavailable', message: 'retry' } } };
      }
      server.override('POST /v1/consents/shown', undefined);
      return server.handle(req);
    });
    await stub.tap(() => client.subscribe(['lead_assigned']));
    const posts = shownPosts(stub);
    assert.equal(posts.length, 2, 'one resend');
    assert.equal(posts[0].header['Idempotency-Key'], posts[1].header['Idempotency-Key']);
    assert.equal(server.shownCount('o-user', 'tpl-lead'), 1);
  });

  it('a failed shown report does not fail the subscription', async () => {
    const { client, stub, server } = await prepared({ reportRetries: 0 });
    server.override('POST /v1/consents/shown', () => ({ statusCode: 500, data: { error: { code: 'internal', message: 'down' } } }));
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(state.consents.find((c) => c.alias === 'lead_assigned').credits, 1);
    assert.equal(shownPosts(stub).length, 1);
  });

  it('reportShown: false reports no shown popup', async () => {
    const { client, stub } = await prepared({ reportShown: false });
    await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(shownPosts(stub).length, 0);
    assert.throws(() => createWorld({ reportShown: 'yes' }), /wxnotify: reportShown must be a boolean/);
  });

  it('a failed popup is reported nowhere', async () => {
    const { client, stub } = await prepared();
    stub.on('requestSubscribeMessage', () => ({ fail: { errCode: 20004, errMsg: 'requestSubscribeMessage:fail The main switch is switched off' } }));
    await assert.rejects(stub.tap(() => client.subscribe(['lead_assigned'])));
    assert.equal(shownPosts(stub).length, 0);
  });
});
