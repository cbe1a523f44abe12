'use strict';

const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { createWorld } = require('./fake-server');

const PAGE = path.join(__dirname, '..', 'example', 'pages', 'notify', 'notify.js');

// loadPage loads the example page as the mini program runtime would: with
// the global wx and a Page() that takes its definition. It returns the page
// instance (methods bound to it, setData merging into data).
function loadPage(stub) {
  let def = null;
  global.wx = stub.wx;
  global.Page = (d) => {
    def = d;
  };
  delete require.cache[PAGE];
  require(PAGE);
  assert.ok(def, 'the page must call Page()');
  const page = Object.assign({}, def, { data: JSON.parse(JSON.stringify(def.data)) });
  page.setData = (patch) => {
    Object.assign(page.data, patch);
  };
  return page;
}

afterEach(() => {
  delete global.wx;
  delete global.Page;
});

describe('example page', () => {
  it('loads the templates and shows the consent state', async () => {
    const { stub } = createWorld({}, { now: Date.now });
    const page = loadPage(stub);
    assert.equal(page.data.ready, false);
    await page.onLoad();
    assert.equal(page.data.error, '');
    assert.equal(page.data.ready, true);
    assert.equal(page.data.account, 'o-user');
    assert.deepEqual(page.data.consent, { statusText: '未订阅', credits: 0, alwaysKeep: false, prompt: true });
    assert.equal(stub.callsOf('request')[0].args.url, 'https://notify.example.com/v1/session');
  });

  it('its tap handler calls wx.requestSubscribeMessage synchronously', async () => {
    const { stub } = createWorld({}, { now: Date.now });
    const page = loadPage(stub);
    await page.onLoad();
    const pending = stub.tap(() => page.onNotifyTap());
    const popups = stub.callsOf('requestSubscribeMessage');
    assert.equal(popups.length, 1, 'wx.requestSubscribeMessage calls when the tap handler returned');
    assert.equal(popups[0].inTap, true);
    assert.deepEqual(popups[0].args.tmplIds, ['tpl-lead']);
    await pending;
    assert.deepEqual(page.data.consent, { statusText: '已订阅', credits: 1, alwaysKeep: false, prompt: false });
    assert.deepEqual(stub.callsOf('showToast').map((c) => c.args.title), ['已订阅成功']);
  });

  it('sends the user to the settings when the main switch is off', async () => {
    const { stub } = createWorld({}, { now: Date.now, stub: { modal: { confirm: false } } });
    stub.on('requestSubscribeMessage', () => ({ fail: { errCode: 20004, errMsg: 'requestSubscribeMessage:fail The main switch is switched off' } }));
    const page = loadPage(stub);
    await page.onLoad();
    await stub.tap(() => page.onNotifyTap());
    assert.equal(stub.callsOf('showModal').length, 1);
    assert.equal(page.data.error, '');
  });

  it('sends the user to the settings after a rejection kept for good', async () => {
    const settings = { mainSwitch: true, itemSettings: { 'tpl-lead': 'reject' } };
    const { stub } = createWorld({}, { now: Date.now, stub: { choices: { 'tpl-lead': 'reject' }, settings, modal: { confirm: false } } });
    const page = loadPage(stub);
    await page.onLoad();
    await stub.tap(() => page.onNotifyTap());
    assert.equal(stub.callsOf('showModal').length, 1);
    assert.deepEqual(page.data.consent, { statusText: '已拒绝', credits: 0, alwaysKeep: true, prompt: false });
  });

  it('the login button logs in again and refreshes', async () => {
    const { stub } = createWorld({}, { now: Date.now });
    const page = loadPage(stub);
    await page.onLogin();
    assert.equal(stub.callsOf('login').length, 1);
    assert.equal(page.data.ready, true);
    await page.onLogin();
    assert.equal(stub.callsOf('login').length, 2, 'the button logs in even with a valid session');
  });

  it('shows errors', async () => {
    const { stub, server } = createWorld({}, { now: Date.now });
    server.override('GET /v1/templates', () => ({ statusCode: 503, data: { error: { code: 'wechat_unavailable', message: 'WeChat is busy' } } }));
    const page = loadPage(stub);
    await page.onLoad();
    assert.equal(page.data.error, 'WeChat is busy');
    assert.equal(page.data.ready, false);
  });
});
