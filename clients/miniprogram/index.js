'use strict';

/**
 * wxnotify-miniprogram: the mini program side of wxnotify.
 *
 * It logs the user in (wx.login -> POST /v1/session, or the app's own login
 * API that binds through POST /v1/bindings), asks for subscribe messages with
 * wx.requestSubscribeMessage and reports the answers to POST /v1/consents, so
 * the consent state lives on the server instead of being asked for on every
 * visit.
 *
 * Plain CommonJS and ES2017, no dependencies: copy this file into a mini
 * program or install the package and build npm in the developer tools.
 * Types are in index.d.ts.
 *
 * THE TAP RULE. WeChat shows the subscribe popup only while the user's tap is
 * being handled: wx.requestSubscribeMessage must be called synchronously in
 * the tap handler, before any await, promise callback or timer, or it fails
 * with "requestSubscribeMessage:fail can only be invoked by user TAP
 * gesture". subscribe() therefore needs the template ids before the tap:
 * call prepare() when the page loads, then call subscribe() as the first
 * thing the tap handler does.
 */

const DEFAULT_STORAGE_KEY = 'wxnotify.session';
const DEFAULT_RENEW_BEFORE_MS = 60 * 1000;
const DEFAULT_MAX_PER_CALL = 3;
const SUBSCRIBE_OK = 'requestSubscribeMessage:ok';
const TAP_ERROR = /TAP gesture/i;

/**
 * The text the seeds show before sending the user to the settings page.
 * @type {Readonly<{title: string, content: string, confirmText: string, cancelText: string}>}
 */
const SETTINGS_MODAL = Object.freeze({
  title: '',
  content: '检测到您没打开此小程序的消息通知权限,为了能更好的接收消息,是否去设置打开?',
  confirmText: '确认',
  cancelText: '取消',
});

/**
 * The kind of each fail code of wx.requestSubscribeMessage.
 * @type {Readonly<Record<number, string>>}
 */
const SUBSCRIBE_FAIL_KINDS = Object.freeze({
  10001: 'empty', // TmplIds can't be empty
  10002: 'network', // Request list fail
  10003: 'network', // Request subscribe fail
  10004: 'invalid_id', // Invalid template id
  10005: 'ui_unavailable', // Cannot show subscribe message UI (app in background)
  20001: 'no_template', // No template data return, verify the template id exist
  20002: 'mixed_types', // Templates type must be same
  20003: 'too_many', // Templates count out of max bounds
  20004: 'main_switch_off', // The main switch is switched off
  20005: 'banned', // This mini program was banned from subscribing messages
  20013: 'device_template', // Reject DeviceMsg Template
});

/**
 * A failure of a wx.* API, with the errMsg and errCode WeChat gave.
 */
class WxError extends Error {
  /**
   * @param {string} api the wx API that failed, e.g. "login"
   * @param {{errMsg?: string, errCode?: number|string}} [res] its fail result
   */
  constructor(api, res) {
    const errMsg = (res && res.errMsg) || api + ':fail';
    super(errMsg);
    this.name = 'WxError';
    /** @type {string} */
    this.api = api;
    /** @type {string} */
    this.errMsg = errMsg;
    const code = res ? Number(res.errCode) : NaN;
    /** @type {number|undefined} */
    this.errCode = Number.isFinite(code) ? code : undefined;
  }
}

/**
 * A failure of wx.requestSubscribeMessage. kind classifies errCode (see
 * SUBSCRIBE_FAIL_KINDS); "tap_required" means the call came too late in the
 * tap (see the tap rule), "unknown" any other failure.
 */
class SubscribeError extends WxError {
  /** @param {{errMsg?: string, errCode?: number|string}} [res] */
  constructor(res) {
    super('requestSubscribeMessage', res);
    this.name = 'SubscribeError';
    let kind = this.errCode !== undefined ? SUBSCRIBE_FAIL_KINDS[this.errCode] : undefined;
    if (!kind) {
      kind = TAP_ERROR.test(this.errMsg) ? 'tap_required' : 'unknown';
    }
    /** @type {string} */
    this.kind = kind;
    if (kind === 'tap_required') {
      this.message = this.errMsg + ' (call prepare() before the tap, then subscribe() first thing in the tap handler)';
    }
  }
}

/**
 * A request to wxnotify that failed: a non-2xx answer parsed from the error
 * body ({"error": {"code", "message", "field", "wechatErrcode",
 * "requestId"}}), or status 0 and code "network" when no answer came.
 */
class ApiError extends Error {
  /**
   * @param {{status: number, code: string, message?: string, field?: string,
   *   wechatErrcode?: number, requestId?: string}} fields
   */
  constructor(fields) {
    super(fields.message || fields.code);
    this.name = 'ApiError';
    /** @type {number} */
    this.status = fields.status;
    /** @type {string} */
    this.code = fields.code;
    /** @type {string|undefined} */
    this.field = fields.field || undefined;
    /** @type {number|undefined} */
    this.wechatErrcode = fields.wechatErrcode || undefined;
    /** @type {string|undefined} */
    this.requestId = fields.requestId || undefined;
  }
}

/**
 * Reports whether a status of the success object grants a message: accept,
 * and newer clients' acceptWithAudio and acceptWithAlert.
 * @param {unknown} status
 * @returns {boolean}
 */
function isAccepted(status) {
  return status === 'accept' || status === 'acceptWithAudio' || status === 'acceptWithAlert';
}

/**
 * Creates a client for one wxnotify deployment.
 *
 * @param {object} options
 * @param {string} options.baseURL wxnotify's address, e.g. "https://notify.example.com"
 *   (it must be in the mini program's request domain list)
 * @param {string} [options.storageKey] where the session is kept with wx.setStorageSync
 *   (default "wxnotify.session")
 * @param {(code: string) => Promise<object>} [options.loginWith] hands a fresh wx.login code to
 *   the app's own login API, which checks its user, binds it with POST /v1/bindings and
 *   returns wxnotify's session body ({token, expiresAt, openid, userId}); without it the
 *   client calls POST /v1/session itself
 * @param {(req: {url: string, method: string, header: Record<string, string>, data?: unknown,
 *   timeout?: number}) => Promise<{statusCode: number, data: unknown, header?: Record<string, string>}>}
 *   [options.request] sends one HTTP request (default: wx.request)
 * @param {object} [options.wx] the wx object (default: the global wx)
 * @param {() => number} [options.now] the clock in milliseconds (default Date.now)
 * @param {number} [options.renewBeforeMs] renew a session this long before it expires (default 60 s)
 * @param {number} [options.maxPerCall] template ids per wx.requestSubscribeMessage call (default 3)
 * @param {number} [options.timeout] request timeout in milliseconds (default: the app's networkTimeout)
 * @param {number} [options.reportRetries] how often a consent report that got no answer or a 5xx is
 *   sent again with the same Idempotency-Key (default 2)
 * @param {number} [options.reportRetryDelay] milliseconds before the first resend, growing linearly
 *   (default 500)
 * @returns {import('./index').Client}
 */
function createClient(options) {
  if (!options || typeof options.baseURL !== 'string' || !/^https?:\/\/[^/]/.test(options.baseURL)) {
    throw new TypeError('wxnotify: createClient needs baseURL, e.g. "https://notify.example.com"');
  }
  const baseURL = options.baseURL.replace(/\/+$/, '');
  const storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  const loginWith = options.loginWith;
  const wxApi = options.wx || globalWx();
  if (!wxApi) {
    throw new TypeError('wxnotify: no wx object: run inside a mini program or pass options.wx');
  }
  const now = options.now || Date.now;
  const renewBeforeMs = options.renewBeforeMs !== undefined ? options.renewBeforeMs : DEFAULT_RENEW_BEFORE_MS;
  const maxPerCall = options.maxPerCall !== undefined ? options.maxPerCall : DEFAULT_MAX_PER_CALL;
  if (!Number.isInteger(maxPerCall) || maxPerCall < 1) {
    throw new TypeError('wxnotify: maxPerCall must be a positive integer');
  }
  const request = options.request || wxRequest(wxApi);
  const timeout = options.timeout;
  const reportRetries = options.reportRetries !== undefined ? options.reportRetries : 2;
  const reportRetryDelay = options.reportRetryDelay !== undefined ? options.reportRetryDelay : 500;
  if (!Number.isInteger(reportRetries) || reportRetries < 0) {
    throw new TypeError('wxnotify: reportRetries must be a non-negative integer');
  }
  let reports = 0;
  // reportKey identifies one report among the user's reports of a day.
  function reportKey() {
    reports++;
    return 'rpt-' + now().toString(36) + '-' + reports.toString(36) + '-' + Math.random().toString(36).slice(2, 10);
  }

  /** @type {null | {token: string, expiresAt: string, openid: string, userId?: string}} */
  let session = null;
  let sessionLoaded = false;
  /** @type {null | Promise<any>} */
  let loggingIn = null;
  /** @type {null | Array<any>} */
  let catalog = null;
  /** @type {null | Promise<Array<any>>} */
  let loadingCatalog = null;

  function currentSession() {
    if (!sessionLoaded) {
      sessionLoaded = true;
      let stored = null;
      try {
        stored = wxApi.getStorageSync(storageKey);
      } catch (err) {
        stored = null;
      }
      session = validSession(stored);
    }
    return session;
  }

  function fresh(s) {
    return s !== null && Date.parse(s.expiresAt) - now() > renewBeforeMs;
  }

  function keep(s) {
    session = s;
    sessionLoaded = true;
    try {
      wxApi.setStorageSync(storageKey, s);
    } catch (err) {
      // Storage full or unavailable: the session still works for this run.
    }
  }

  async function doLogin() {
    const res = await wxCall(wxApi, 'login', {});
    if (!res || typeof res.code !== 'string' || res.code === '') {
      throw new WxError('login', { errMsg: 'login:fail no code in the answer' });
    }
    let body;
    if (loginWith) {
      body = await loginWith(res.code);
    } else {
      body = await send('POST', '/v1/session', { code: res.code }, '');
    }
    const s = validSession(body);
    if (!s) {
      throw new TypeError('wxnotify: the login answer is not a session body {token, expiresAt, openid}');
    }
    keep(s);
    return s;
  }

  /**
   * Logs in: wx.login, then POST /v1/session (or options.loginWith), and
   * keeps the session in storage. Concurrent calls share one login.
   * @returns {Promise<{token: string, expiresAt: string, openid: string, userId?: string}>}
   */
  function login() {
    if (!loggingIn) {
      const done = () => {
        loggingIn = null;
      };
      loggingIn = doLogin();
      loggingIn.then(done, done);
    }
    return loggingIn;
  }

  async function ensureSession() {
    const s = currentSession();
    return fresh(s) ? s : login();
  }

  // renew answers a 401 for staleToken: another call may have renewed the
  // session meanwhile; otherwise log in again.
  async function renew(staleToken) {
    const s = currentSession();
    if (s && s.token !== staleToken && fresh(s)) {
      return s;
    }
    return login();
  }

  async function send(method, path, data, token, extraHeader) {
    const header = Object.assign({ Accept: 'application/json' }, extraHeader);
    if (data !== undefined) {
      header['Content-Type'] = 'application/json';
    }
    if (token) {
      header.Authorization = 'Bearer ' + token;
    }
    const req = { url: baseURL + path, method: method, header: header };
    if (data !== undefined) {
      req.data = data;
    }
    if (timeout !== undefined) {
      req.timeout = timeout;
    }
    let res;
    try {
      res = await request(req);
    } catch (err) {
      if (err instanceof ApiError) {
        throw err;
      }
      const msg = (err && (err.errMsg || err.message)) || 'request failed';
      throw new ApiError({ status: 0, code: 'network', message: msg });
    }
    const status = Number(res && res.statusCode);
    const body = parseBody(res && res.data);
    if (!(status >= 200 && status <= 299)) {
      throw toApiError(status || 0, body, res && res.header);
    }
    return body;
  }

  // call sends an authenticated request; on a 401 it renews the session
  // once and retries once.
  async function call(method, path, data, extraHeader) {
    const s = await ensureSession();
    try {
      return await send(method, path, data, s.token, extraHeader);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) {
        throw err;
      }
    }
    const renewed = await renew(s.token);
    return send(method, path, data, renewed.token, extraHeader);
  }

  // postReport sends one consent report with an Idempotency-Key, and sends
  // it again with the same key when no answer or a 5xx came (up to
  // reportRetries times): the server counts a popup once however often its
  // report arrives, and a report lost on a flaky network is a credit lost.
  async function postReport(report) {
    const header = { 'Idempotency-Key': reportKey() };
    for (let attempt = 0; ; attempt++) {
      try {
        return await call('POST', '/v1/consents', report, header);
      } catch (err) {
        const retryable = err instanceof ApiError && (err.status === 0 || err.status >= 500);
        if (!retryable || attempt >= reportRetries) {
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, reportRetryDelay * (attempt + 1)));
      }
    }
  }

  /**
   * The configured templates (GET /v1/templates), fetched once per client.
   * @param {{refresh?: boolean}} [opts] refresh: fetch again
   * @returns {Promise<Array<object>>}
   */
  function templates(opts) {
    if (opts && opts.refresh) {
      catalog = null;
    }
    if (catalog) {
      return Promise.resolve(catalog.slice());
    }
    if (!loadingCatalog) {
      loadingCatalog = call('GET', '/v1/templates').then(
        (body) => {
          loadingCatalog = null;
          if (!body || !Array.isArray(body.templates)) {
            throw new TypeError('wxnotify: GET /v1/templates answered without a templates list');
          }
          catalog = body.templates;
          return catalog.slice();
        },
        (err) => {
          loadingCatalog = null;
          throw err;
        }
      );
    }
    return loadingCatalog;
  }

  /**
   * Loads the template ids of aliases (calling login() if needed), so that a
   * later subscribe(aliases) can call wx.requestSubscribeMessage
   * synchronously in the tap. Call it when the page loads.
   * @param {string[]} aliases template aliases (or template ids)
   * @returns {Promise<Array<object>>} their templates
   */
  async function prepare(aliases) {
    const names = aliasList(aliases);
    return resolveAliases(names, await templates());
  }

  /**
   * Asks the user to subscribe to aliases and records the answer.
   *
   * MUST be called from a tap handler (bindtap), synchronously, before any
   * await: WeChat refuses the popup otherwise with
   * "requestSubscribeMessage:fail can only be invoked by user TAP gesture".
   * When prepare() has loaded the templates, subscribe() calls
   * wx.requestSubscribeMessage before it returns; when it has not, it must
   * fetch them first and the popup is then usually refused (SubscribeError
   * with kind "tap_required"), although the next tap works.
   *
   * One popup takes at most maxPerCall (3) ids of one kind: one-time and
   * long-term templates cannot be mixed. Only the first call in a tap is
   * allowed, so when the aliases need more than one popup, subscribe asks
   * for the first group and returns the others in `remaining`, for a
   * subscribe(remaining) in the next tap.
   *
   * The success object is reported as is to POST /v1/consents, with the
   * subscriptionsSetting of wx.getSetting({withSubscriptions: true}) unless
   * opts.settings is false.
   *
   * @param {string[]} aliases template aliases (or template ids)
   * @param {{settings?: boolean}} [opts]
   * @returns {Promise<object>} the server's consent state ({consents, ignored}) with
   *   result (the success object), statuses (alias -> status) and remaining (aliases)
   * @throws {SubscribeError} when wx.requestSubscribeMessage fails (kind says why)
   * @throws {ApiError} when wxnotify refuses the report
   * @throws {TypeError} when an alias is not in GET /v1/templates
   */
  function subscribe(aliases, opts) {
    let names;
    try {
      names = aliasList(aliases);
    } catch (err) {
      return Promise.reject(err);
    }
    if (catalog) {
      // Nothing may be awaited before wx.requestSubscribeMessage.
      let plan;
      try {
        plan = planGroups(resolveAliases(names, catalog), maxPerCall);
      } catch (err) {
        return Promise.reject(err);
      }
      return finishSubscribe(plan, requestSubscribe(wxApi, plan.first), opts);
    }
    return templates().then((list) => {
      const plan = planGroups(resolveAliases(names, list), maxPerCall);
      return finishSubscribe(plan, requestSubscribe(wxApi, plan.first), opts);
    });
  }

  async function finishSubscribe(plan, popup, opts) {
    const result = await popup;
    const statuses = {};
    plan.first.forEach((t) => {
      statuses[t.alias] = result ? result[t.templateId] : undefined;
    });
    const report = { result: reportedResult(result) };
    if (!opts || opts.settings !== false) {
      const settings = await readSettings();
      if (settings) {
        report.settings = settings;
      }
    }
    const state = await postReport(report);
    return Object.assign({}, state, {
      result: result,
      statuses: statuses,
      remaining: plan.rest.map((t) => t.alias),
    });
  }

  async function readSettings() {
    let res;
    try {
      res = await wxCall(wxApi, 'getSetting', { withSubscriptions: true });
    } catch (err) {
      return undefined;
    }
    return subscriptionsSetting(res);
  }

  /**
   * Sends the user to the settings page, where subscribe messages can be
   * switched back on: for users who rejected with "always keep this choice"
   * (the popup no longer shows) or switched the main switch off (20004).
   * Explains first with wx.showModal (the seeds' text unless overridden);
   * on confirm opens wx.openSetting from the modal's own callback (it also
   * needs a tap, and the confirm tap counts), then reports the
   * subscriptionsSetting of wx.getSetting({withSubscriptions: true}) to
   * POST /v1/consents.
   * @param {{title?: string, content?: string, confirmText?: string, cancelText?: string}} [opts]
   * @returns {Promise<object>} the server's consent state with opened (the user confirmed)
   *   and, when read, settings
   */
  function openSettingsFlow(opts) {
    const modal = Object.assign({}, SETTINGS_MODAL, opts || {});
    const opened = new Promise((resolve, reject) => {
      const showOpts = {
        content: modal.content,
        confirmText: modal.confirmText,
        cancelText: modal.cancelText,
        success(res) {
          if (!res || !res.confirm) {
            resolve(false);
            return;
          }
          wxApi.openSetting({
            withSubscriptions: true,
            success() {
              resolve(true);
            },
            fail(res) {
              reject(new WxError('openSetting', res));
            },
          });
        },
        fail(res) {
          reject(new WxError('showModal', res));
        },
      };
      if (modal.title) {
        showOpts.title = modal.title;
      }
      wxApi.showModal(showOpts);
    });
    return opened.then(async (ok) => {
      if (!ok) {
        return Object.assign({}, await consents(), { opened: false });
      }
      const settings = await readSettings();
      if (!settings) {
        return Object.assign({}, await consents(), { opened: true });
      }
      const state = await postReport({ result: { errMsg: SUBSCRIBE_OK }, settings: settings });
      return Object.assign({}, state, { opened: true, settings: settings });
    });
  }

  /**
   * The user's consent state (GET /v1/consents): one entry per template.
   * @returns {Promise<{consents: Array<object>, ignored: string[]}>}
   */
  function consents() {
    return call('GET', '/v1/consents');
  }

  /**
   * Whether asking for alias again is useful: the server's prompt field
   * (false when messages can already be sent, or the user banned or
   * rejected with "always keep"). Uses state when given, else
   * GET /v1/consents. Call it when the page loads, never in the tap before
   * subscribe(): it awaits.
   * @param {string} alias a template alias (or template id)
   * @param {{consents: Array<object>}} [state] a state from consents() or subscribe()
   * @returns {Promise<boolean>}
   */
  async function shouldPrompt(alias, state) {
    const s = state || (await consents());
    const list = (s && s.consents) || [];
    for (let i = 0; i < list.length; i++) {
      if (list[i].alias === alias || list[i].templateId === alias) {
        return list[i].prompt === true;
      }
    }
    throw new TypeError('wxnotify: unknown template "' + alias + '": not in GET /v1/consents');
  }

  /**
   * The stored session, or null; it may be expired.
   * @returns {null | {token: string, expiresAt: string, openid: string, userId?: string}}
   */
  function getSession() {
    const s = currentSession();
    return s ? Object.assign({}, s) : null;
  }

  /** Forgets the session (memory and storage). */
  function logout() {
    session = null;
    sessionLoaded = true;
    try {
      wxApi.removeStorageSync(storageKey);
    } catch (err) {
      // Nothing stored.
    }
  }

  return {
    login: login,
    getSession: getSession,
    logout: logout,
    templates: templates,
    prepare: prepare,
    subscribe: subscribe,
    openSettingsFlow: openSettingsFlow,
    consents: consents,
    shouldPrompt: shouldPrompt,
  };
}

function globalWx() {
  // eslint-disable-next-line no-undef
  return typeof wx !== 'undefined' ? wx : undefined;
}

// wxCall calls a callback-style wx API as a promise.
function wxCall(wxApi, api, args) {
  return new Promise((resolve, reject) => {
    wxApi[api](
      Object.assign({}, args, {
        success: resolve,
        fail(res) {
          reject(new WxError(api, res));
        },
      })
    );
  });
}

// requestSubscribe calls wx.requestSubscribeMessage at once (the promise
// executor runs synchronously).
function requestSubscribe(wxApi, group) {
  return new Promise((resolve, reject) => {
    wxApi.requestSubscribeMessage({
      tmplIds: group.map((t) => t.templateId),
      success: resolve,
      fail(res) {
        reject(new SubscribeError(res));
      },
    });
  });
}

function wxRequest(wxApi) {
  return function (req) {
    return new Promise((resolve, reject) => {
      wxApi.request(
        Object.assign({}, req, {
          dataType: 'json',
          responseType: 'text',
          success(res) {
            resolve({ statusCode: res.statusCode, data: res.data, header: res.header });
          },
          fail: reject,
        })
      );
    });
  };
}

function validSession(v) {
  if (!v || typeof v !== 'object' || typeof v.token !== 'string' || v.token === '' ||
      typeof v.expiresAt !== 'string' || Number.isNaN(Date.parse(v.expiresAt))) {
    return null;
  }
  const s = { token: v.token, expiresAt: v.expiresAt, openid: typeof v.openid === 'string' ? v.openid : '' };
  if (typeof v.userId === 'string' && v.userId !== '') {
    s.userId = v.userId;
  }
  return s;
}

function aliasList(aliases) {
  if (typeof aliases === 'string') {
    aliases = [aliases];
  }
  if (!Array.isArray(aliases) || aliases.length === 0 || aliases.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('wxnotify: aliases must be a non-empty array of template aliases');
  }
  return aliases;
}

function resolveAliases(names, list) {
  const out = [];
  const unknown = [];
  names.forEach((name) => {
    const t = list.find((x) => x.alias === name || x.templateId === name);
    if (!t) {
      unknown.push(name);
    } else if (out.indexOf(t) < 0) {
      out.push(t);
    }
  });
  if (unknown.length > 0) {
    throw new TypeError('wxnotify: unknown template ' + unknown.map((n) => '"' + n + '"').join(', ') +
      ': not in GET /v1/templates');
  }
  return out;
}

// planGroups splits templates into popups of at most max ids of one kind,
// in the order the kinds first appear; the first is asked now.
function planGroups(list, max) {
  const kinds = [];
  const byKind = {};
  list.forEach((t) => {
    const k = t.kind || 'one-time';
    if (!byKind[k]) {
      byKind[k] = [];
      kinds.push(k);
    }
    byKind[k].push(t);
  });
  const groups = [];
  kinds.forEach((k) => {
    for (let i = 0; i < byKind[k].length; i += max) {
      groups.push(byKind[k].slice(i, i + max));
    }
  });
  const rest = [];
  groups.slice(1).forEach((g) => {
    g.forEach((t) => rest.push(t));
  });
  return { first: groups[0], rest: rest };
}

// reportedResult is the success object as wxnotify takes it: errMsg and the
// template ids' statuses (all strings).
function reportedResult(result) {
  const out = { errMsg: SUBSCRIBE_OK };
  if (result && typeof result === 'object') {
    Object.keys(result).forEach((k) => {
      if (typeof result[k] === 'string') {
        out[k] = result[k];
      }
    });
  }
  return out;
}

// subscriptionsSetting keeps the fields wxnotify reads from a getSetting
// answer.
function subscriptionsSetting(res) {
  const s = res && res.subscriptionsSetting;
  if (!s || typeof s !== 'object') {
    return undefined;
  }
  const out = {};
  if (typeof s.mainSwitch === 'boolean') {
    out.mainSwitch = s.mainSwitch;
  }
  if (s.itemSettings && typeof s.itemSettings === 'object') {
    const items = {};
    Object.keys(s.itemSettings).forEach((id) => {
      if (typeof s.itemSettings[id] === 'string') {
        items[id] = s.itemSettings[id];
      }
    });
    out.itemSettings = items;
  }
  return out;
}

function parseBody(data) {
  if (typeof data !== 'string') {
    return data === undefined ? null : data;
  }
  if (data === '') {
    return null;
  }
  try {
    return JSON.parse(data);
  } catch (err) {
    return data;
  }
}

function headerValue(header, name) {
  if (!header || typeof header !== 'object') {
    return undefined;
  }
  const want = name.toLowerCase();
  const key = Object.keys(header).find((k) => k.toLowerCase() === want);
  return key === undefined ? undefined : String(header[key]);
}

function toApiError(status, body, header) {
  const e = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
  if (e && typeof e.code === 'string') {
    return new ApiError({
      status: status,
      code: e.code,
      message: typeof e.message === 'string' ? e.message : e.code,
      field: typeof e.field === 'string' ? e.field : undefined,
      wechatErrcode: typeof e.wechatErrcode === 'number' ? e.wechatErrcode : undefined,
      requestId: typeof e.requestId === 'string' ? e.requestId : headerValue(header, 'X-Request-Id'),
    });
  }
  return new ApiError({
    status: status,
    code: 'http_' + status,
    message: 'wxnotify answered HTTP ' + status,
    requestId: headerValue(header, 'X-Request-Id'),
  });
}

module.exports = {
  createClient: createClient,
  isAccepted: isAccepted,
  ApiError: ApiError,
  SubscribeError: SubscribeError,
  WxError: WxError,
  SUBSCRIBE_FAIL_KINDS: SUBSCRIBE_FAIL_KINDS,
  SETTINGS_MODAL: SETTINGS_MODAL,
};
