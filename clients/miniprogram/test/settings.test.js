'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createWorld } = require('./fake-server');
const { WxError, SETTINGS_MODAL } = require('..');

const SEED_TEXT = '检测到您没打开此小程序的消息通知权限,为了能更好的接收消息,是否去设置打开?';

describe('openSettingsFlow', () => {
  it('explains, opens the settings from the confirm tap and reports the new setting', async () => {
    const { client, stub } = createWorld({}, { stub: { settings: { mainSwitch: false, itemSettings: {} } } });
    // The user switches subscribe messages back on in the settings page.
    stub.on('openSetting', () => {
      stub.settings = { mainSwitch: true, itemSettings: { 'tpl-lead': 'accept' } };
      return { ok: { errMsg: 'openSetting:ok', authSetting: {} } };
    });
    const state = await client.openSettingsFlow();

    assert.deepEqual(stub.callsOf('showModal').map((c) => c.args), [{ content: SEED_TEXT, confirmText: '确认', cancelText: '取消' }]);
    const open = stub.callsOf('openSetting');
    assert.equal(open.length, 1);
    assert.equal(open[0].inTap, true, 'wx.openSetting must run in the confirm tap');
    assert.deepEqual(stub.callsOf('getSetting').map((c) => c.args), [{ withSubscriptions: true }]);
    const post = stub.requests().find((r) => r.method === 'POST' && r.path === '/v1/consents');
    assert.deepEqual(post.data, {
      result: { errMsg: 'requestSubscribeMessage:ok' },
      settings: { mainSwitch: true, itemSettings: { 'tpl-lead': 'accept' } },
    });
    assert.equal(state.opened, true);
    assert.deepEqual(state.settings, { mainSwitch: true, itemSettings: { 'tpl-lead': 'accept' } });
    const c = state.consents.find((x) => x.alias === 'lead_assigned');
    assert.equal(c.alwaysKeep, true);
    assert.equal(c.status, 'accept');
  });

  it('cancel returns the current state without opening the settings', async () => {
    const { client, stub } = createWorld({}, { stub: { modal: { confirm: false } } });
    const state = await client.openSettingsFlow();
    assert.equal(state.opened, false);
    assert.ok(Array.isArray(state.consents));
    assert.equal(stub.callsOf('openSetting').length, 0);
    assert.deepEqual(stub.requests().map((r) => r.method + ' ' + r.path), ['POST /v1/session', 'GET /v1/consents']);
  });

  it('takes its own text', async () => {
    const { client, stub } = createWorld({}, { stub: { modal: { confirm: false } } });
    await client.openSettingsFlow({ title: '通知', content: 'Turn notifications on?', confirmText: '去设置' });
    assert.deepEqual(stub.callsOf('showModal')[0].args, {
      title: '通知', content: 'Turn notifications on?', confirmText: '去设置', cancelText: SETTINGS_MODAL.cancelText,
    });
  });

  it('without a subscriptionsSetting it returns the current state', async () => {
    const { client, stub } = createWorld();
    const state = await client.openSettingsFlow();
    assert.equal(state.opened, true);
    assert.deepEqual(stub.requests().map((r) => r.method + ' ' + r.path), ['POST /v1/session', 'GET /v1/consents']);
  });

  it('rejects with WxError when wx.openSetting fails', async () => {
    const { client, stub } = createWorld();
    stub.on('openSetting', () => ({ fail: { errMsg: 'openSetting:fail cancel' } }));
    await assert.rejects(client.openSettingsFlow(), (err) => err instanceof WxError && err.api === 'openSetting');
  });

  it('follows a 20004 (main switch off) from subscribe', async () => {
    const { client, stub } = createWorld({}, { stub: { settings: { mainSwitch: false } } });
    await client.prepare(['lead_assigned']);
    stub.on('requestSubscribeMessage', () => ({ fail: { errCode: 20004, errMsg: 'requestSubscribeMessage:fail The main switch is switched off' } }));
    stub.on('openSetting', () => {
      stub.settings = { mainSwitch: true };
      return { ok: { errMsg: 'openSetting:ok' } };
    });
    let state;
    await stub.tap(() => client.subscribe(['lead_assigned']).catch((err) => {
      assert.equal(err.kind, 'main_switch_off');
      return client.openSettingsFlow().then((s) => {
        state = s;
      });
    }));
    assert.equal(state.opened, true);
    assert.deepEqual(stub.requests().find((r) => r.method === 'POST' && r.path === '/v1/consents').data.settings, { mainSwitch: true });
  });
});
