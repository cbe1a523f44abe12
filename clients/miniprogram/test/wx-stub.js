'use strict';

// A scripted stand-in for the mini program's wx object, for tests.
//
// Every call is recorded in stub.calls as {api, args, inTap} (args without
// the callbacks). Answers come from handlers that tests replace with
// stub.on(api, handler): a handler gets the args and returns {ok: result}
// or {fail: {errMsg, errCode}}, or a promise of it (request handlers return
// {statusCode, data, header} or {fail}). Callbacks run asynchronously, as
// in WeChat.
//
// The tap-gesture rule: stub.tap(fn) opens a tap window, runs fn
// synchronously and closes the window when fn returns, so whatever fn does
// after its first await runs outside the window. requestSubscribeMessage
// and openSetting fail with WeChat's TAP error outside a window, and only
// the first requestSubscribeMessage of a window may show a popup. The
// confirm/cancel tap of showModal opens a window for its success callback.
//
// The default requestSubscribeMessage also enforces WeChat's own rules:
// at most WECHAT_MAX_TMPL_IDS ids (20003), no mix of one-time and long-term
// ids (20002, given options.kinds: {templateId: kind}), no empty list
// (10001).
//
// getAccountInfoSync answers the mini program's AppID (options.appId,
// default DEFAULT_APP_ID) through its handler, which a test may replace
// (or delete stub.wx.getAccountInfoSync, as on a base library without it).

const TAP_FAIL = 'can only be invoked by user TAP gesture.';

// WeChat's documentation of wx.requestSubscribeMessage says of tmplIds:
// "一次调用最多可订阅5条消息" (at most 5 per call). Kept apart from the kit's
// own constant so that a kit asking for more fails here as it would in WeChat.
const WECHAT_MAX_TMPL_IDS = 5;

// The AppID of the stub's mini program unless options.appId says otherwise.
const DEFAULT_APP_ID = 'wx5f2a9c3e1b7d4a60';

/**
 * @param {{kinds?: Record<string, string>, choices?: Record<string, string>,
 *   settings?: object, modal?: {confirm: boolean}, appId?: string}} [options]
 */
function createWxStub(options) {
  const opts = options || {};
  const calls = [];
  const storage = new Map();
  let inTap = false;
  let popupShown = false;
  let codes = 0;

  const stub = {
    calls,
    storage,
    // WeChat's per-template choice for the default popup (default accept).
    choices: Object.assign({}, opts.choices),
    // The subscriptionsSetting getSetting reports (undefined: none).
    settings: opts.settings,
    // What the user taps in showModal.
    modal: Object.assign({ confirm: true }, opts.modal),
    kinds: Object.assign({}, opts.kinds),
    handlers: {},
    /** Replaces the answer of one wx API. */
    on(api, handler) {
      stub.handlers[api] = handler;
      return stub;
    },
    /** Runs fn inside a tap window and returns what fn returns. */
    tap(fn) {
      inTap = true;
      popupShown = false;
      try {
        return fn();
      } finally {
        inTap = false;
      }
    },
    /** The recorded calls of one API. */
    callsOf(api) {
      return calls.filter((c) => c.api === api);
    },
    /** The recorded wx.request calls as {method, path, header, data}. */
    requests() {
      return stub.callsOf('request').map((c) => {
        const u = new URL(c.args.url);
        return { method: c.args.method, path: u.pathname + u.search, header: c.args.header, data: c.args.data };
      });
    },
  };

  stub.handlers.login = () => {
    codes++;
    return { ok: { errMsg: 'login:ok', code: 'code-' + codes } };
  };
  stub.handlers.requestSubscribeMessage = (args) => {
    const ids = args.tmplIds || [];
    if (ids.length === 0) {
      return { fail: { errCode: 10001, errMsg: "requestSubscribeMessage:fail TmplIds can't be empty" } };
    }
    if (ids.length > WECHAT_MAX_TMPL_IDS) {
      return { fail: { errCode: 20003, errMsg: 'requestSubscribeMessage:fail Templates count out of max bounds' } };
    }
    const kinds = new Set(ids.map((id) => stub.kinds[id]).filter(Boolean));
    if (kinds.size > 1) {
      return { fail: { errCode: 20002, errMsg: 'requestSubscribeMessage:fail Templates type must be same' } };
    }
    const res = { errMsg: 'requestSubscribeMessage:ok' };
    ids.forEach((id) => {
      res[id] = stub.choices[id] || 'accept';
    });
    return { ok: res };
  };
  stub.handlers.getSetting = (args) => {
    const res = { errMsg: 'getSetting:ok', authSetting: {} };
    if (args.withSubscriptions && stub.settings) {
      res.subscriptionsSetting = JSON.parse(JSON.stringify(stub.settings));
    }
    return { ok: res };
  };
  stub.handlers.openSetting = () => ({ ok: { errMsg: 'openSetting:ok', authSetting: {} } });
  stub.handlers.showModal = () => ({
    ok: { errMsg: 'showModal:ok', confirm: stub.modal.confirm, cancel: !stub.modal.confirm },
  });
  stub.handlers.showToast = () => ({ ok: { errMsg: 'showToast:ok' } });
  stub.handlers.getAccountInfoSync = () => ({
    miniProgram: { appId: opts.appId || DEFAULT_APP_ID, envVersion: 'develop', version: '' },
  });
  stub.handlers.request = () => ({ statusCode: 404, data: { error: { code: 'not_found', message: 'no route' } } });

  function record(api, args) {
    const clean = {};
    Object.keys(args || {}).forEach((k) => {
      if (typeof args[k] !== 'function') {
        clean[k] = args[k];
      }
    });
    const call = { api, args: clean, inTap };
    calls.push(call);
    return call;
  }

  function later(fn) {
    setTimeout(fn, 0);
  }

  // answer delivers an outcome (or a promise of one) to the callbacks.
  function answer(args, outcome, tapCallback) {
    Promise.resolve(outcome).then((o) => later(() => deliver(args, o, tapCallback)));
  }

  // deliver runs the callbacks; tapCallback: the user's tap (a modal
  // button) opens a tap window for the success callback.
  function deliver(args, outcome, tapCallback) {
    if (outcome.fail) {
      if (args.fail) args.fail(outcome.fail);
    } else if (tapCallback) {
      inTap = true;
      popupShown = false;
      try {
        if (args.success) args.success(outcome.ok);
      } finally {
        inTap = false;
      }
    } else if (args.success) {
      args.success(outcome.ok);
    }
    if (args.complete) args.complete(outcome.fail || outcome.ok);
  }

  function simple(api, tapCallback) {
    return (args) => {
      const a = args || {};
      record(api, a);
      answer(a, stub.handlers[api](a), tapCallback);
    };
  }

  const wx = {
    login: simple('login'),
    getSetting: simple('getSetting'),
    showModal: simple('showModal', true),
    showToast: simple('showToast'),
    requestSubscribeMessage(args) {
      const a = args || {};
      record('requestSubscribeMessage', a);
      if (!inTap || popupShown) {
        answer(a, { fail: { errMsg: 'requestSubscribeMessage:fail ' + TAP_FAIL } });
        return;
      }
      popupShown = true;
      answer(a, stub.handlers.requestSubscribeMessage(a));
    },
    openSetting(args) {
      const a = args || {};
      record('openSetting', a);
      if (!inTap) {
        answer(a, { fail: { errMsg: 'openSetting:fail ' + TAP_FAIL } });
        return;
      }
      answer(a, stub.handlers.openSetting(a));
    },
    request(args) {
      const a = args || {};
      record('request', a);
      Promise.resolve()
        .then(() => stub.handlers.request(a))
        .then((res) => {
          later(() => {
            if (res && res.fail) {
              if (a.fail) a.fail(res.fail);
              return;
            }
            if (a.success) {
              a.success({ statusCode: res.statusCode, data: res.data, header: res.header || {}, errMsg: 'request:ok' });
            }
          });
        });
    },
    getAccountInfoSync() {
      record('getAccountInfoSync', {});
      return stub.handlers.getAccountInfoSync();
    },
    getStorageSync(key) {
      return storage.has(key) ? JSON.parse(storage.get(key)) : '';
    },
    setStorageSync(key, value) {
      storage.set(key, JSON.stringify(value));
    },
    removeStorageSync(key) {
      storage.delete(key);
    },
  };
  stub.wx = wx;
  return stub;
}

/** Waits until every pending stub callback has run. */
function flush() {
  return new Promise((resolve) => setTimeout(resolve, 5));
}

module.exports = { createWxStub, flush, TAP_FAIL, DEFAULT_APP_ID };

// Run as a test file (node --test runs every file under test/), this checks
// the stub itself: the tests of the kit rely on its tap rule.
if (require.main === module) {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');
  const subscribeOnce = (wx, tmplIds) =>
    new Promise((resolve) => {
      wx.requestSubscribeMessage({ tmplIds, success: (res) => resolve({ ok: res }), fail: (res) => resolve({ fail: res }) });
    });

  test('wx stub: requestSubscribeMessage works in a tap and only there', async () => {
    const stub = createWxStub();
    const inside = await stub.tap(() => subscribeOnce(stub.wx, ['a']));
    assert.deepEqual(inside, { ok: { errMsg: 'requestSubscribeMessage:ok', a: 'accept' } });
    const outside = await subscribeOnce(stub.wx, ['a']);
    assert.deepEqual(outside, { fail: { errMsg: 'requestSubscribeMessage:fail ' + TAP_FAIL } });
  });

  test('wx stub: an await in the tap handler leaves the tap window', async () => {
    const stub = createWxStub();
    const got = await stub.tap(async () => {
      await Promise.resolve();
      return subscribeOnce(stub.wx, ['a']);
    });
    assert.equal(got.fail.errMsg, 'requestSubscribeMessage:fail ' + TAP_FAIL);
  });

  test('wx stub: only the first popup of a tap is shown', async () => {
    const stub = createWxStub();
    const [first, second] = await stub.tap(() => Promise.all([subscribeOnce(stub.wx, ['a']), subscribeOnce(stub.wx, ['b'])]));
    assert.ok(first.ok, 'first popup');
    assert.ok(second.fail, 'second popup');
  });

  test("wx stub: WeChat's own limits", async () => {
    const stub = createWxStub({ kinds: { a: 'one-time', b: 'long-term' } });
    const cases = [[[], 10001], [['a', 'c', 'd', 'e', 'f', 'g'], 20003], [['a', 'b'], 20002], [['a', 'c', 'd', 'e', 'f'], null]];
    for (const [ids, code] of cases) {
      const got = await stub.tap(() => subscribeOnce(stub.wx, ids));
      assert.equal(got.fail ? got.fail.errCode : null, code, JSON.stringify(ids));
    }
  });

  test('wx stub: the confirm tap of showModal allows openSetting', async () => {
    const stub = createWxStub();
    const got = await new Promise((resolve) => {
      stub.wx.showModal({
        content: 'x',
        success: () => stub.wx.openSetting({ success: () => resolve('opened'), fail: (res) => resolve(res.errMsg) }),
      });
    });
    assert.equal(got, 'opened');
    const late = await new Promise((resolve) => {
      stub.wx.openSetting({ success: () => resolve('opened'), fail: (res) => resolve(res.errMsg) });
    });
    assert.equal(late, 'openSetting:fail ' + TAP_FAIL);
  });

  test('wx stub: getAccountInfoSync', () => {
    assert.equal(createWxStub().wx.getAccountInfoSync().miniProgram.appId, DEFAULT_APP_ID);
    const stub = createWxStub({ appId: 'wx0000000000000001' });
    assert.equal(stub.wx.getAccountInfoSync().miniProgram.appId, 'wx0000000000000001');
    assert.equal(stub.callsOf('getAccountInfoSync').length, 1);
  });

  test('wx stub: storage', () => {
    const stub = createWxStub();
    assert.equal(stub.wx.getStorageSync('k'), '');
    stub.wx.setStorageSync('k', { a: 1 });
    assert.deepEqual(stub.wx.getStorageSync('k'), { a: 1 });
    stub.wx.removeStorageSync('k');
    assert.equal(stub.wx.getStorageSync('k'), '');
  });
}
