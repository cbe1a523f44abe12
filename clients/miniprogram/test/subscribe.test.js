'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');
const { createClient, SubscribeError, isAccepted, SUBSCRIBE_FAIL_KINDS, MAX_TMPL_IDS_PER_CALL } = require('..');
const { createWxStub } = require('./wx-stub');

// prepared returns a world whose client has loaded the templates, as a page
// does in onLoad.
async function prepared(clientOptions, worldOptions) {
  const w = createWorld(clientOptions, worldOptions);
  await w.client.prepare(['lead_assigned']);
  w.stub.calls.length = 0;
  return w;
}

function consentOf(state, alias) {
  return state.consents.find((c) => c.alias === alias);
}

describe('subscribe', () => {
  it('calls wx.requestSubscribeMessage synchronously in the tap', async () => {
    const { client, stub } = await prepared();
    const pending = stub.tap(() => client.subscribe(['lead_assigned']));
    const popups = stub.callsOf('requestSubscribeMessage');
    assert.equal(popups.length, 1, 'wx.requestSubscribeMessage calls before the tap handler returned');
    assert.equal(popups[0].inTap, true);
    assert.deepEqual(popups[0].args, { tmplIds: ['tpl-lead'] });
    await pending;
  });

  const statuses = [
    { status: 'accept', credits: 1, prompt: false, accepted: true },
    { status: 'acceptWithAudio', credits: 1, prompt: false, accepted: true },
    { status: 'acceptWithAlert', credits: 1, prompt: false, accepted: true },
    { status: 'reject', credits: 0, prompt: true, accepted: false },
    { status: 'ban', credits: 0, prompt: false, accepted: false },
    { status: 'filter', credits: 0, prompt: true, accepted: false },
  ];
  for (const tc of statuses) {
    it('reports ' + tc.status + ' and returns the server state', async () => {
      const { client, stub } = await prepared({}, { stub: { choices: { 'tpl-lead': tc.status } } });
      const state = await stub.tap(() => client.subscribe(['lead_assigned']));
      const posts = stub.requests().filter((r) => r.method === 'POST' && r.path === '/v1/consents');
      assert.equal(posts.length, 1);
      assert.deepEqual(posts[0].data, { result: { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': tc.status } });
      assert.deepEqual(state.result, { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': tc.status });
      assert.deepEqual(state.statuses, { lead_assigned: tc.status });
      assert.deepEqual(state.remaining, []);
      assert.deepEqual(state.ignored, []);
      const c = consentOf(state, 'lead_assigned');
      assert.equal(c.credits, tc.credits, 'credits');
      assert.equal(c.prompt, tc.prompt, 'prompt');
      assert.equal(isAccepted(tc.status), tc.accepted, 'isAccepted');
    });
  }

  it('accumulates one credit per accepted popup', async () => {
    const { client, stub } = await prepared();
    await stub.tap(() => client.subscribe(['lead_assigned']));
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(consentOf(state, 'lead_assigned').credits, 2);
  });

  it('reports the subscriptionsSetting of wx.getSetting', async () => {
    const settings = { mainSwitch: true, itemSettings: { 'tpl-lead': 'reject' }, unknownFutureField: 1 };
    const { client, stub } = await prepared({}, { stub: { choices: { 'tpl-lead': 'reject' }, settings } });
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.deepEqual(stub.callsOf('getSetting').map((c) => c.args), [{ withSubscriptions: true }]);
    const post = stub.requests().find((r) => r.method === 'POST');
    assert.deepEqual(post.data, {
      result: { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': 'reject' },
      settings: { mainSwitch: true, itemSettings: { 'tpl-lead': 'reject' } },
    });
    const c = consentOf(state, 'lead_assigned');
    assert.equal(c.alwaysKeep, true);
    assert.equal(c.prompt, false, 'a rejection kept for good: asking again is useless');
  });

  it('skips wx.getSetting with settings: false', async () => {
    const { client, stub } = await prepared({}, { stub: { settings: { mainSwitch: true, itemSettings: {} } } });
    await stub.tap(() => client.subscribe(['lead_assigned'], { settings: false }));
    assert.equal(stub.callsOf('getSetting').length, 0);
    assert.deepEqual(Object.keys(stub.requests().find((r) => r.method === 'POST').data), ['result']);
  });

  it('still reports the result when wx.getSetting fails', async () => {
    const { client, stub } = await prepared();
    stub.on('getSetting', () => ({ fail: { errMsg: 'getSetting:fail' } }));
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(consentOf(state, 'lead_assigned').credits, 1);
  });

  it('reports only the string entries of the success object', async () => {
    const { client, stub } = await prepared();
    stub.on('requestSubscribeMessage', () => ({ ok: { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': 'accept', errCode: 0 } }));
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.deepEqual(stub.requests().find((r) => r.method === 'POST').data.result, {
      errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': 'accept',
    });
    assert.equal(state.result.errCode, 0, 'the returned result is the success object as WeChat gave it');
  });

  it('accepts template ids and one alias given twice', async () => {
    const { client, stub } = await prepared();
    await stub.tap(() => client.subscribe(['tpl-lead', 'lead_assigned', 'lead_digest']));
    assert.deepEqual(stub.callsOf('requestSubscribeMessage')[0].args.tmplIds, ['tpl-lead', 'tpl-digest']);
  });

  it('without prepare() the popup comes after an await and WeChat refuses it', async () => {
    const { client, stub } = createWorld();
    const first = stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(stub.callsOf('requestSubscribeMessage').length, 0, 'no popup before the templates are known');
    await assert.rejects(first, (err) => err instanceof SubscribeError && err.kind === 'tap_required' &&
      /TAP gesture/.test(err.errMsg) && /prepare\(\)/.test(err.message));
    assert.equal(stub.requests().filter((r) => r.path === '/v1/consents').length, 0, 'nothing reported');
    // The failed tap loaded the templates: the next tap works.
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(consentOf(state, 'lead_assigned').credits, 1);
  });

  it('outside a tap WeChat refuses the popup', async () => {
    const { client } = await prepared();
    await assert.rejects(client.subscribe(['lead_assigned']), { name: 'SubscribeError', kind: 'tap_required' });
  });

  it('rejects unknown aliases and bad arguments before any popup', async () => {
    const { client, stub } = await prepared();
    await assert.rejects(stub.tap(() => client.subscribe(['lead_assigned', 'nope'])), (err) =>
      err instanceof TypeError && /unknown template "nope"/.test(err.message));
    for (const bad of [[], [''], [1], null, undefined]) {
      await assert.rejects(stub.tap(() => client.subscribe(bad)), TypeError, JSON.stringify(bad));
    }
    assert.equal(stub.callsOf('requestSubscribeMessage').length, 0);
  });

  it('rejects unknown aliases in prepare()', async () => {
    const { client } = createWorld();
    await assert.rejects(client.prepare(['lead_assigned', 'gone']), /unknown template "gone"/);
  });

  it('prepare() returns the templates of the aliases', async () => {
    const { client } = createWorld();
    const got = await client.prepare(['lead_assigned', 'outage']);
    assert.deepEqual(got.map((t) => t.templateId), ['tpl-lead', 'tpl-outage']);
  });
});

describe('subscribe fail codes', () => {
  const codes = [
    [10001, "TmplIds can't be empty", 'empty'],
    [10002, 'Request list fail', 'network'],
    [10003, 'Request subscribe fail', 'network'],
    [10004, 'Invalid template id', 'invalid_id'],
    [10005, 'Cannot show subscribe message UI', 'ui_unavailable'],
    [20001, 'No template data return, verify the template id exist', 'no_template'],
    [20002, 'Templates type must be same', 'mixed_types'],
    [20003, 'Templates count out of max bounds', 'too_many'],
    [20004, 'The main switch is switched off', 'main_switch_off'],
    [20005, 'This mini program was banned from subscribing messages', 'banned'],
    [20013, 'Reject DeviceMsg Template', 'device_template'],
    [99999, 'Something new', 'unknown'],
    ['20004', 'The main switch is switched off', 'main_switch_off'],
  ];
  for (const [errCode, text, kind] of codes) {
    it(errCode + ' is ' + kind, async () => {
      const { client, stub } = await prepared();
      const errMsg = 'requestSubscribeMessage:fail ' + text;
      stub.on('requestSubscribeMessage', () => ({ fail: { errCode, errMsg } }));
      let got;
      await stub.tap(() => client.subscribe(['lead_assigned'])).catch((err) => {
        got = err;
      });
      assert.ok(got instanceof SubscribeError, 'got ' + got + ', want a SubscribeError');
      assert.deepEqual({ errCode: got.errCode, errMsg: got.errMsg, kind: got.kind, name: got.name },
        { errCode: Number(errCode), errMsg, kind, name: 'SubscribeError' });
      assert.equal(stub.callsOf('request').length, 0, 'a failed popup is not reported');
    });
  }

  it('every documented code has a kind', () => {
    assert.deepEqual(Object.keys(SUBSCRIBE_FAIL_KINDS).map(Number).sort(),
      [10001, 10002, 10003, 10004, 10005, 20001, 20002, 20003, 20004, 20005, 20013]);
  });
});

describe('subscribe grouping', () => {
  const cases = [
    {
      name: 'five one-time ids, WeChat\'s limit, fit one popup',
      aliases: ['lead_assigned', 'lead_digest', 'visit_reminder', 'order_paid', 'order_shipped'],
      popup: ['tpl-lead', 'tpl-digest', 'tpl-visit', 'tpl-paid', 'tpl-shipped'],
      remaining: [],
    },
    {
      name: 'more than five ids: the rest waits for the next tap',
      aliases: ['lead_assigned', 'lead_digest', 'visit_reminder', 'order_paid', 'order_shipped', 'visit_summary'],
      popup: ['tpl-lead', 'tpl-digest', 'tpl-visit', 'tpl-paid', 'tpl-shipped'],
      remaining: ['visit_summary'],
    },
    {
      name: 'one-time and long-term are never mixed',
      aliases: ['lead_assigned', 'service_status'],
      popup: ['tpl-lead'],
      remaining: ['service_status'],
    },
    {
      name: 'the first kind given goes first',
      aliases: ['service_status', 'lead_assigned', 'outage'],
      popup: ['tpl-status', 'tpl-outage'],
      remaining: ['lead_assigned'],
    },
    {
      name: 'mixed and more than five',
      aliases: ['lead_assigned', 'service_status', 'lead_digest', 'visit_reminder', 'order_paid', 'outage',
        'order_shipped', 'visit_summary'],
      popup: ['tpl-lead', 'tpl-digest', 'tpl-visit', 'tpl-paid', 'tpl-shipped'],
      remaining: ['visit_summary', 'service_status', 'outage'],
    },
    {
      name: 'maxPerCall 3 for clients that take fewer',
      options: { maxPerCall: 3 },
      aliases: ['lead_assigned', 'lead_digest', 'visit_reminder', 'order_paid'],
      popup: ['tpl-lead', 'tpl-digest', 'tpl-visit'],
      remaining: ['order_paid'],
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const { client, stub } = await prepared(tc.options);
      const state = await stub.tap(() => client.subscribe(tc.aliases));
      const popups = stub.callsOf('requestSubscribeMessage');
      assert.equal(popups.length, 1, 'one popup per tap');
      assert.deepEqual(popups[0].args.tmplIds, tc.popup);
      assert.deepEqual(state.remaining, tc.remaining);
      assert.deepEqual(Object.keys(state.result).sort(), ['errMsg'].concat(tc.popup).sort(), 'WeChat answered the popup');
    });
  }

  it('later taps take the remaining groups until none is left', async () => {
    const { client, stub } = await prepared();
    let aliases = ['lead_assigned', 'service_status', 'lead_digest', 'visit_reminder', 'order_paid', 'outage',
      'order_shipped', 'visit_summary'];
    const taps = [];
    while (aliases.length > 0) {
      const state = await stub.tap(() => client.subscribe(aliases));
      taps.push(stub.callsOf('requestSubscribeMessage').slice(-1)[0].args.tmplIds);
      aliases = state.remaining;
      assert.ok(taps.length < 5, 'too many taps');
    }
    assert.deepEqual(taps, [
      ['tpl-lead', 'tpl-digest', 'tpl-visit', 'tpl-paid', 'tpl-shipped'], ['tpl-summary'], ['tpl-status', 'tpl-outage'],
    ]);
    const state = await client.consents();
    assert.deepEqual(state.consents.map((c) => [c.alias, c.status]), [
      ['lead_assigned', 'accept'], ['lead_digest', 'accept'], ['visit_reminder', 'accept'], ['order_paid', 'accept'],
      ['order_shipped', 'accept'], ['visit_summary', 'accept'], ['service_status', 'accept'], ['outage', 'accept'],
    ]);
  });

  it('the limit is the one WeChat documents, and maxPerCall cannot exceed it', () => {
    assert.equal(MAX_TMPL_IDS_PER_CALL, 5);
    const stub = createWxStub();
    for (const maxPerCall of [MAX_TMPL_IDS_PER_CALL + 1, 10]) {
      assert.throws(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, maxPerCall }),
        (err) => err instanceof TypeError && /maxPerCall must be an integer from 1 to 5 .*got /.test(err.message), String(maxPerCall));
    }
    for (const maxPerCall of [1, MAX_TMPL_IDS_PER_CALL]) {
      assert.doesNotThrow(() => createClient({ baseURL: 'https://notify.example.com', wx: stub.wx, maxPerCall }));
    }
  });

  it('a mix asked for by template id is split too', async () => {
    const { client, stub } = await prepared();
    const state = await stub.tap(() => client.subscribe(['tpl-status', 'tpl-lead', 'tpl-outage', 'tpl-digest']));
    assert.deepEqual(stub.callsOf('requestSubscribeMessage')[0].args.tmplIds, ['tpl-status', 'tpl-outage']);
    assert.deepEqual(state.remaining, ['lead_assigned', 'lead_digest']);
  });
});

describe('consents and shouldPrompt', () => {
  it('consents() returns GET /v1/consents', async () => {
    const { client, stub, server } = createWorld();
    const state = await client.consents();
    assert.deepEqual(state, server.state('o-user'));
    assert.deepEqual(stub.requests().slice(-1)[0].path, '/v1/consents');
  });

  const cases = [
    { name: 'never asked', choice: null, want: true },
    { name: 'accepted: a message can be sent', choice: 'accept', want: false },
    { name: 'rejected once: asking again may help', choice: 'reject', want: true },
    { name: 'rejected with always keep', choice: 'reject', keep: true, want: false },
    { name: 'banned', choice: 'ban', want: false },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const settings = tc.keep ? { mainSwitch: true, itemSettings: { 'tpl-lead': tc.choice } } : undefined;
      const { client, stub } = await prepared({}, { stub: { choices: { 'tpl-lead': tc.choice }, settings } });
      if (tc.choice) {
        await stub.tap(() => client.subscribe(['lead_assigned']));
      }
      assert.equal(await client.shouldPrompt('lead_assigned'), tc.want);
      assert.equal(await client.shouldPrompt('tpl-lead'), tc.want, 'by template id');
    });
  }

  it('uses a given state without a request', async () => {
    const { client, stub } = await prepared();
    const state = await stub.tap(() => client.subscribe(['lead_assigned']));
    const before = stub.callsOf('request').length;
    assert.equal(await client.shouldPrompt('lead_assigned', state), false);
    assert.equal(await client.shouldPrompt('lead_digest', state), true);
    assert.equal(stub.callsOf('request').length, before);
  });

  it('rejects an unknown alias', async () => {
    const { client } = createWorld();
    await assert.rejects(client.shouldPrompt('nope'), TypeError);
  });

  it('a credit used by a send makes prompting useful again', async () => {
    const { client, stub, server } = await prepared();
    await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(await client.shouldPrompt('lead_assigned'), false);
    server.entry('o-user', 'tpl-lead').credits = 0; // the backend sent the one message
    assert.equal(await client.shouldPrompt('lead_assigned'), true);
  });

  it('sends each report with its own Idempotency-Key and resends it with the same key after a 5xx', async () => {
    const { client, stub, server } = await prepared({ reportRetryDelay: 1 });
    let failures = 1;
    server.override('POST /v1/consents', () => {
      if (failures-- > 0) {
        return { statusCode: 503, data: { error: { code: 'internal', message: 'store hiccup' } } };
      }
      server.override('POST /v1/consents', undefined);
      return { statusCode: 502, data: 'bad gateway' }; // a proxy's answer
    });
    const first = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(consentOf(first, 'lead_assigned').credits, 1, 'counted once');
    const posts = stub.requests().filter((r) => r.method === 'POST' && r.path === '/v1/consents');
    assert.equal(posts.length, 3, 'two resends');
    const keys = posts.map((p) => p.header['Idempotency-Key']);
    assert.match(keys[0], /^rpt-[!-~]{1,120}$/);
    assert.equal(new Set(keys).size, 1, 'one key for one report: ' + keys.join(', '));
    const second = await stub.tap(() => client.subscribe(['lead_assigned']));
    assert.equal(consentOf(second, 'lead_assigned').credits, 2);
    const all = stub.requests().filter((r) => r.method === 'POST' && r.path === '/v1/consents');
    assert.notEqual(all[3].header['Idempotency-Key'], keys[0], 'a new popup, a new key');
  });

  it('gives up on a report after reportRetries resends, and never resends a 4xx', async () => {
    const { client, stub, server } = await prepared({ reportRetryDelay: 1, reportRetries: 1 });
    server.override('POST /v1/consents', () => ({ statusCode: 500, data: { error: { code: 'internal', message: 'down' } } }));
    await assert.rejects(stub.tap(() => client.subscribe(['lead_assigned'])), (err) => err.status === 500);
    server.override('POST /v1/consents', () => ({ statusCode: 429, data: { error: { code: 'rate_limited', message: 'slow down' } } }));
    await assert.rejects(stub.tap(() => client.subscribe(['lead_assigned'])), (err) => err.status === 429);
    const posts = stub.requests().filter((r) => r.method === 'POST' && r.path === '/v1/consents');
    assert.equal(posts.length, 3, 'two tries of the first report, one of the second');
  });
});
