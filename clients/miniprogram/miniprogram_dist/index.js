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
 * Plain CommonJS and ES2017, no dependencies: install the package and build
 * npm (构建 npm) in the developer tools, or copy this file into a mini
 * program. Types are in ../index.d.ts; the JSDoc below names them and
 * WeChat's official typings (miniprogram-api-typings), and `make test`
 * checks this file against both with tsc --strict.
 *
 * THE TAP RULE. WeChat shows the subscribe popup only while the user's tap is
 * being handled: wx.requestSubscribeMessage must be called synchronously in
 * the tap handler, before any await, promise callback or timer, or it fails
 * with "requestSubscribeMessage:fail can only be invoked by user TAP
 * gesture". subscribe() therefore needs the template ids before the tap:
 * call prepare() when the page loads, then call subscribe() as the first
 * thing the tap handler does.
 *
 * APPS. One wxnotify deployment may serve several mini programs; the app
 * option picks this one's routes: `app: 'sales'` (its id in wxnotify.yaml)
 * or its AppID sends every request to /v1/apps/<app>/..., and
 * `app: 'auto'` reads the mini program's own AppID with
 * wx.getAccountInfoSync(). Without app the kit calls the short routes
 * (/v1/...), which serve the deployment's default app.
 */

/** @typedef {import('../index').ClientOptions} ClientOptions */
/** @typedef {import('../index').Client} Client */
/** @typedef {import('../index').Endpoints} Endpoints */
/** @typedef {import('../index').WxApi} WxApi */
/** @typedef {import('../index').Session} Session */
/** @typedef {import('../index').Template} Template */
/** @typedef {import('../index').ConsentState} ConsentState */
/** @typedef {import('../index').SubscribeResult} SubscribeResult */
/** @typedef {import('../index').SubscribeStatus} SubscribeStatus */
/** @typedef {import('../index').SubscribeFailKind} SubscribeFailKind */
/** @typedef {import('../index').SettingsFlowResult} SettingsFlowResult */
/** @typedef {import('../index').SettingsModalText} SettingsModalText */
/** @typedef {import('../index').ReportedSettings} ReportedSettings */
/** @typedef {import('../index').HttpRequest} HttpRequest */
/** @typedef {import('../index').HttpResponse} HttpResponse */
/** @typedef {WechatMiniprogram.RequestSubscribeMessageSuccessCallbackResult} SubscribeSuccess */
/** @typedef {{errMsg?: string, errCode?: number | string}} WxFail */
/** @typedef {{result: Record<string, string>, settings?: ReportedSettings}} Report */

const DEFAULT_STORAGE_KEY = 'wxnotify.session';
const DEFAULT_RENEW_BEFORE_MS = 60 * 1000;
const SUBSCRIBE_OK = 'requestSubscribeMessage:ok';
const TAP_ERROR = /TAP gesture/i;

/**
 * The most template ids one wx.requestSubscribeMessage call takes, and the
 * default of maxPerCall. WeChat's documentation of the call
 * (https://developers.weixin.qq.com/miniprogram/dev/api/open-api/subscribe-message/wx.requestSubscribeMessage.html)
 * says of tmplIds: "一次调用最多可订阅5条消息" (at most 5 messages per call);
 * more fail with errCode 20003 "Templates count out of max bounds". Earlier
 * versions of the page said 3: maxPerCall may lower the limit for WeChat
 * clients that still refuse more than 3, never raise it.
 */
const MAX_TMPL_IDS_PER_CALL = 5;

/**
 * How many template ids suggestedTemplates() asks for by default (when
 * maxPerCall allows it): every WeChat client takes 3 in one popup, and the
 * server suggests 3 by default (GET /v1/consents/advice).
 */
const SUGGESTED_PER_POPUP = 3;

/**
 * The routes the kit calls, by the wxnotify function that serves them. With
 * baseURL one address serves every function (AWS, `wxnotify dev`); with
 * endpoints each function has its own URL (Tencent Cloud's Function URLs).
 * wxnotify's other functions (send, wxpush, leads, batch) are for servers.
 * @type {Readonly<Record<keyof Endpoints, string>>}
 */
const KIT_FUNCTIONS = Object.freeze({
  login: 'POST /v1/session',
  consent: 'GET /v1/templates, GET|POST /v1/consents, POST /v1/consents/shown, GET /v1/consents/advice',
});

/**
 * The text the seeds show before sending the user to the settings page.
 * @type {Readonly<Required<SettingsModalText>>}
 */
const SETTINGS_MODAL = Object.freeze({
  title: '',
  content: '检测到您没打开此小程序的消息通知权限,为了能更好的接收消息,是否去设置打开?',
  confirmText: '确认',
  cancelText: '取消',
});

/**
 * The kind of each fail code of wx.requestSubscribeMessage.
 * @type {Readonly<Record<number, SubscribeFailKind>>}
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
   * @param {WxFail} [res] its fail result
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
  /** @param {WxFail} [res] */
  constructor(res) {
    super('requestSubscribeMessage', res);
    this.name = 'SubscribeError';
    /** @type {SubscribeFailKind | undefined} */
    let kind = this.errCode !== undefined ? SUBSCRIBE_FAIL_KINDS[this.errCode] : undefined;
    if (!kind) {
      kind = TAP_ERROR.test(this.errMsg) ? 'tap_required' : 'unknown';
    }
    /** @type {SubscribeFailKind} */
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
 * @returns {status is 'accept' | 'acceptWithAudio' | 'acceptWithAlert'}
 */
function isAccepted(status) {
  return status === 'accept' || status === 'acceptWithAudio' || status === 'acceptWithAlert';
}

/**
 * Creates a client for one wxnotify deployment, addressed by baseURL (one
 * address for every route) or endpoints (each function's URL); see
 * ClientOptions in index.d.ts for every option.
 *
 * @param {ClientOptions} options
 * @returns {Client}
 * @throws {TypeError} for options that cannot work, naming the one to fix
 */
function createClient(options) {
  if (!options || typeof options !== 'object') {
    throw new TypeError('wxnotify: createClient needs options: {baseURL} or {endpoints: {login, consent}}');
  }
  const loginWith = options.loginWith;
  const urls = functionURLs(options.baseURL, options.endpoints, loginWith !== undefined);
  const storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
  const givenWx = options.wx || globalWx();
  if (!givenWx) {
    throw new TypeError('wxnotify: no wx object: run inside a mini program or pass options.wx');
  }
  /** @type {WxApi} */
  const wxApi = givenWx;
  const routes = appRoutes(options.app, wxApi);
  const now = options.now || Date.now;
  const renewBeforeMs = options.renewBeforeMs !== undefined ? options.renewBeforeMs : DEFAULT_RENEW_BEFORE_MS;
  const maxPerCall = options.maxPerCall !== undefined ? options.maxPerCall : MAX_TMPL_IDS_PER_CALL;
  if (!Number.isInteger(maxPerCall) || maxPerCall < 1 || maxPerCall > MAX_TMPL_IDS_PER_CALL) {
    throw new TypeError('wxnotify: maxPerCall must be an integer from 1 to ' + MAX_TMPL_IDS_PER_CALL +
      ' (WeChat takes at most ' + MAX_TMPL_IDS_PER_CALL + ' template ids per wx.requestSubscribeMessage), got ' +
      String(maxPerCall));
  }
  const request = options.request || wxRequest(wxApi);
  const timeout = options.timeout;
  const reportRetries = options.reportRetries !== undefined ? options.reportRetries : 2;
  const reportRetryDelay = options.reportRetryDelay !== undefined ? options.reportRetryDelay : 500;
  if (!Number.isInteger(reportRetries) || reportRetries < 0) {
    throw new TypeError('wxnotify: reportRetries must be a non-negative integer');
  }
  const reportShown = options.reportShown !== undefined ? options.reportShown : true;
  if (typeof reportShown !== 'boolean') {
    throw new TypeError('wxnotify: reportShown must be a boolean');
  }
  let reports = 0;
  // reportKey identifies one report among the user's reports of a day.
  function reportKey(prefix = 'rpt-') {
    reports++;
    return prefix + now().toString(36) + '-' + reports.toString(36) + '-' + Math.random().toString(36).slice(2, 10);
  }

  /** @type {Session | null} */
  let session = null;
  let sessionLoaded = false;
  /** @type {Promise<Session> | null} */
  let loggingIn = null;
  /** @type {Template[] | null} */
  let catalog = null;
  /** @type {Promise<Template[]> | null} */
  let loadingCatalog = null;

  /** @returns {Session | null} */
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

  /**
   * @param {Session | null} s
   * @returns {s is Session}
   */
  function fresh(s) {
    return s !== null && Date.parse(s.expiresAt) - now() > renewBeforeMs;
  }

  /** @param {Session} s */
  function keep(s) {
    session = s;
    sessionLoaded = true;
    try {
      wxApi.setStorageSync(storageKey, s);
    } catch (err) {
      // Storage full or unavailable: the session still works for this run.
    }
  }

  /** @returns {Promise<Session>} */
  async function doLogin() {
    const res = await wxLogin(wxApi);
    if (!res || typeof res.code !== 'string' || res.code === '') {
      throw new WxError('login', { errMsg: 'login:fail no code in the answer' });
    }
    /** @type {unknown} */
    let body;
    if (loginWith) {
      body = await loginWith(res.code);
    } else {
      // functionURLs guarantees urls.login when loginWith is absent.
      body = await send('POST', /** @type {string} */ (urls.login), routes.session, { code: res.code }, '');
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
   * @returns {Promise<Session>}
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

  /** @returns {Promise<Session>} */
  async function ensureSession() {
    const s = currentSession();
    return fresh(s) ? s : login();
  }

  /**
   * Answers a 401 for staleToken: another call may have renewed the session
   * meanwhile; otherwise log in again.
   * @param {string} staleToken
   * @returns {Promise<Session>}
   */
  async function renew(staleToken) {
    const s = currentSession();
    if (fresh(s) && s.token !== staleToken) {
      return s;
    }
    return login();
  }

  /**
   * Sends one request to base + path and returns the parsed body of a 2xx
   * answer.
   * @param {'GET' | 'POST'} method
   * @param {string} base the function's URL, without a trailing slash
   * @param {string} path
   * @param {Record<string, unknown> | undefined} data the JSON body
   * @param {string} token the session token, "" for none
   * @param {Record<string, string>} [extraHeader]
   * @returns {Promise<unknown>}
   * @throws {ApiError}
   */
  async function send(method, base, path, data, token, extraHeader) {
    /** @type {Record<string, string>} */
    const header = Object.assign({ Accept: 'application/json' }, extraHeader);
    if (data !== undefined) {
      header['Content-Type'] = 'application/json';
    }
    if (token) {
      header.Authorization = 'Bearer ' + token;
    }
    /** @type {HttpRequest} */
    const req = { url: base + path, method: method, header: header };
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
      throw new ApiError({ status: 0, code: 'network', message: errorText(err) || 'request failed' });
    }
    const status = Number(res && res.statusCode);
    const body = parseBody(res && res.data);
    if (!(status >= 200 && status <= 299)) {
      throw toApiError(status || 0, body, res && res.header);
    }
    return body;
  }

  /**
   * Sends an authenticated request to the consent function; on a 401, or
   * a 403 app_forbidden (a stored token another app issued, e.g. after the
   * app option changed), it renews the session once and retries once.
   * @param {'GET' | 'POST'} method
   * @param {string} path
   * @param {Record<string, unknown>} [data]
   * @param {Record<string, string>} [extraHeader]
   * @returns {Promise<unknown>}
   */
  async function call(method, path, data, extraHeader) {
    const s = await ensureSession();
    try {
      return await send(method, urls.consent, path, data, s.token, extraHeader);
    } catch (err) {
      if (!(err instanceof ApiError) || !(err.status === 401 || (err.status === 403 && err.code === 'app_forbidden'))) {
        throw err;
      }
    }
    const renewed = await renew(s.token);
    return send(method, urls.consent, path, data, renewed.token, extraHeader);
  }

  /**
   * Sends one consent report with an Idempotency-Key, and sends it again
   * with the same key when no answer or a 5xx came (up to reportRetries
   * times): the server counts a popup once however often its report
   * arrives, and a report lost on a flaky network is a credit lost.
   * @param {Report} report
   * @returns {Promise<ConsentState>}
   */
  async function postReport(report) {
    return /** @type {ConsentState} */ (await postKeyed(routes.consents, report, reportKey()));
  }

  /**
   * Reports the popup the kit opened (POST /v1/consents/shown), for the
   * consent funnel of GET /v1/stats, retried as a consent report is. It
   * never fails: a failure loses one count of the funnel, nothing else.
   * @param {string[]} templateIds the templates the popup asked for
   * @returns {Promise<void>}
   */
  async function postShown(templateIds) {
    try {
      await postKeyed(routes.shown, { templates: templateIds }, reportKey('shown-'));
    } catch (_err) {
      // The funnel misses one popup; the subscription itself is recorded.
    }
  }

  /**
   * POSTs data to path with the Idempotency-Key key, sending it again with
   * the same key when no answer or a 5xx came (up to reportRetries times).
   * @param {string} path
   * @param {Record<string, unknown>} data
   * @param {string} key
   * @returns {Promise<unknown>}
   */
  async function postKeyed(path, data, key) {
    const header = { 'Idempotency-Key': key };
    for (let attempt = 0; ; attempt++) {
      try {
        return await call('POST', path, data, header);
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
   * @returns {Promise<Template[]>}
   */
  function templates(opts) {
    if (opts && opts.refresh) {
      catalog = null;
    }
    if (catalog) {
      return Promise.resolve(catalog.slice());
    }
    if (!loadingCatalog) {
      loadingCatalog = call('GET', routes.templates).then(
        (body) => {
          loadingCatalog = null;
          const list = body && typeof body === 'object' ? /** @type {{templates?: unknown}} */ (body).templates : undefined;
          if (!Array.isArray(list)) {
            throw new TypeError('wxnotify: GET /v1/templates answered without a templates list');
          }
          catalog = /** @type {Template[]} */ (list);
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
   * @returns {Promise<Template[]>} their templates
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
   * One popup takes at most maxPerCall (MAX_TMPL_IDS_PER_CALL, 5) ids of one
   * kind: one-time and long-term templates cannot be mixed. Only the first
   * call in a tap is allowed, so when the aliases need more than one popup,
   * subscribe asks for the first group and returns the others in
   * `remaining`, for a subscribe(remaining) in the next tap.
   *
   * The success object is reported as is to POST /v1/consents, with the
   * subscriptionsSetting of wx.getSetting({withSubscriptions: true}) unless
   * opts.settings is false; then, unless the client's reportShown option is
   * false, the popup is reported to POST /v1/consents/shown (the consent
   * funnel's "shown"; a failure there is ignored). A popup that failed is
   * reported nowhere.
   *
   * @param {string[]} aliases template aliases (or template ids)
   * @param {{settings?: boolean}} [opts]
   * @returns {Promise<SubscribeResult>} the server's consent state ({consents, ignored}) with
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
    const list = names;
    return templates().then((all) => {
      const plan = planGroups(resolveAliases(list, all), maxPerCall);
      return finishSubscribe(plan, requestSubscribe(wxApi, plan.first), opts);
    });
  }

  /**
   * @param {{first: Template[], rest: Template[]}} plan
   * @param {Promise<SubscribeSuccess>} popup
   * @param {{settings?: boolean}} [opts]
   * @returns {Promise<SubscribeResult>}
   */
  async function finishSubscribe(plan, popup, opts) {
    const result = await popup;
    /** @type {Record<string, SubscribeStatus | undefined>} */
    const statuses = {};
    plan.first.forEach((t) => {
      statuses[t.alias] = result ? /** @type {SubscribeStatus | undefined} */ (result[t.templateId]) : undefined;
    });
    /** @type {Report} */
    const report = { result: reportedResult(result) };
    if (!opts || opts.settings !== false) {
      const settings = await readSettings();
      if (settings) {
        report.settings = settings;
      }
    }
    const state = await postReport(report);
    if (reportShown) {
      await postShown(plan.first.map((t) => t.templateId));
    }
    return Object.assign({}, state, {
      result: result,
      statuses: statuses,
      remaining: plan.rest.map((t) => t.alias),
    });
  }

  /** @returns {Promise<ReportedSettings | undefined>} */
  async function readSettings() {
    let res;
    try {
      res = await wxGetSetting(wxApi);
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
   * @param {SettingsModalText} [opts]
   * @returns {Promise<SettingsFlowResult>} the server's consent state with opened (the user
   *   confirmed) and, when read, settings
   */
  function openSettingsFlow(opts) {
    const modal = Object.assign({}, SETTINGS_MODAL, opts || {});
    /** @type {Promise<boolean>} */
    const opened = new Promise((resolve, reject) => {
      /** @type {WechatMiniprogram.ShowModalOption} */
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
   * @returns {Promise<ConsentState>}
   */
  async function consents() {
    return /** @type {ConsentState} */ (await call('GET', routes.consents));
  }

  /**
   * Whether asking for alias again is useful: the server's prompt field
   * (false when messages can already be sent, or the user banned or
   * rejected with "always keep"). Uses state when given, else
   * GET /v1/consents. Call it when the page loads, never in the tap before
   * subscribe(): it awaits.
   * @param {string} alias a template alias (or template id)
   * @param {ConsentState} [state] a state from consents() or subscribe()
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
   * The template ids worth asking the user for now, best first, ready for
   * wx.requestSubscribeMessage: GET /v1/consents/advice's suggested (at most
   * limit ids, all of one kind; none for templates the user rejected with
   * "always keep this choice", banned, or accepted for good, nor for those
   * whose credits cover their recent use). It also loads the catalog, so a
   * later subscribe(ids) shows the popup within the tap: call it when the
   * page loads, then subscribe(ids) first thing in the tap, unless ids is
   * empty (nothing is worth asking).
   * @param {{limit?: number}} [opts] limit: at most this many ids, 1 to
   *   maxPerCall (default 3, or maxPerCall when lower)
   * @returns {Promise<string[]>}
   * @throws {TypeError} for a limit that cannot be, or an answer without a suggested list
   * @throws {ApiError} when wxnotify refuses
   */
  async function suggestedTemplates(opts) {
    const limit = opts && opts.limit !== undefined ? opts.limit : Math.min(SUGGESTED_PER_POPUP, maxPerCall);
    if (!Number.isInteger(limit) || limit < 1 || limit > maxPerCall) {
      throw new TypeError('wxnotify: suggestedTemplates limit must be an integer from 1 to maxPerCall (' + maxPerCall +
        '), got ' + String(limit));
    }
    const answers = await Promise.all([call('GET', routes.advice + '?limit=' + limit), templates()]);
    const body = answers[0];
    const list = answers[1];
    const ids = body && typeof body === 'object' ? /** @type {{suggested?: unknown}} */ (body).suggested : undefined;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
      throw new TypeError('wxnotify: GET /v1/consents/advice answered without a suggested list of template ids');
    }
    // Only ids of the catalog, so that subscribe(ids) resolves them all.
    return /** @type {string[]} */ (ids).filter((id) => list.some((t) => t.templateId === id)).slice(0, limit);
  }

  /**
   * The stored session, or null; it may be expired.
   * @returns {Session | null}
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
    suggestedTemplates: suggestedTemplates,
  };
}

/**
 * The URL of each function the kit calls, from exactly one of baseURL and
 * endpoints, without trailing slashes.
 * @param {unknown} baseURL
 * @param {unknown} endpoints
 * @param {boolean} ownLogin options.loginWith is set: the kit never calls the login function
 * @returns {{login: string | undefined, consent: string}}
 * @throws {TypeError} naming what to fix
 */
function functionURLs(baseURL, endpoints, ownLogin) {
  const functions = Object.keys(KIT_FUNCTIONS).join(', ');
  if (baseURL !== undefined && endpoints !== undefined) {
    throw new TypeError('wxnotify: give either baseURL (one address for every route) or endpoints ' +
      '(one URL per function), not both');
  }
  if (baseURL !== undefined) {
    const base = checkedURL('baseURL', baseURL);
    return { login: base, consent: base };
  }
  if (endpoints === undefined) {
    throw new TypeError('wxnotify: createClient needs baseURL, one address for every route (e.g. ' +
      '"https://notify.example.com"), or endpoints, the URL of each function the kit calls ({' + functions +
      '}, e.g. the Function URLs of a Tencent Cloud deployment)');
  }
  if (!endpoints || typeof endpoints !== 'object' || Array.isArray(endpoints)) {
    throw new TypeError('wxnotify: endpoints must be an object {' + functions + '} of function URLs');
  }
  const given = /** @type {Record<string, unknown>} */ (endpoints);
  Object.keys(given).forEach((name) => {
    if (!Object.prototype.hasOwnProperty.call(KIT_FUNCTIONS, name)) {
      throw new TypeError('wxnotify: endpoints.' + name + ' is not a function the kit calls: it calls ' +
        Object.keys(KIT_FUNCTIONS).map((f) => f + ' (' + KIT_FUNCTIONS[/** @type {keyof Endpoints} */ (f)] + ')').join(' and '));
    }
  });
  if (given.consent === undefined) {
    throw new TypeError('wxnotify: endpoints.consent is required: the consent function\'s URL (' +
      KIT_FUNCTIONS.consent + ')');
  }
  const consent = checkedURL('endpoints.consent', given.consent);
  if (given.login === undefined) {
    if (!ownLogin) {
      throw new TypeError('wxnotify: endpoints.login is required unless loginWith is given: the login ' +
        'function\'s URL (' + KIT_FUNCTIONS.login + ')');
    }
    return { login: undefined, consent: consent };
  }
  return { login: checkedURL('endpoints.login', given.login), consent: consent };
}

/**
 * What an app id or AppID may be in a route: 1 to 64 letters, digits, '-'
 * and '_' (wxnotify answers any other {app} 404 app_not_found).
 */
const APP_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The paths of the routes the kit calls, for options.app: the short routes
 * (the deployment's default app) without it, else /v1/apps/<app>/...;
 * 'auto' is the mini program's own AppID (wx.getAccountInfoSync). The
 * paths go under baseURL, or under each function's URL with endpoints.
 * @param {unknown} app
 * @param {WxApi} wxApi
 * @returns {{session: string, templates: string, consents: string, shown: string, advice: string}}
 * @throws {TypeError} for an app that cannot be one, or 'auto' without an AppID
 */
function appRoutes(app, wxApi) {
  if (app === undefined) {
    return { session: '/v1/session', templates: '/v1/templates', consents: '/v1/consents', shown: '/v1/consents/shown',
      advice: '/v1/consents/advice' };
  }
  let name = app;
  if (app === 'auto') {
    name = ownAppID(wxApi);
  } else if (typeof app !== 'string' || !APP_PATTERN.test(app)) {
    throw new TypeError('wxnotify: app must be the app\'s id in wxnotify.yaml (e.g. "sales"), its AppID ' +
      '(e.g. "wx5f2a9c3e1b7d4a60") or "auto", got ' + (typeof app === 'string' ? JSON.stringify(app) : typeof app));
  }
  const base = '/v1/apps/' + encodeURIComponent(/** @type {string} */ (name));
  return { session: base + '/session', templates: base + '/templates', consents: base + '/consents',
    shown: base + '/consents/shown', advice: base + '/consents/advice' };
}

/**
 * The mini program's own AppID, for app: 'auto'.
 * @param {WxApi} wxApi
 * @returns {string}
 * @throws {TypeError} when wx.getAccountInfoSync is missing or gives no AppID
 */
function ownAppID(wxApi) {
  if (typeof wxApi.getAccountInfoSync !== 'function') {
    throw new TypeError('wxnotify: app "auto" needs wx.getAccountInfoSync (base library 2.2.2 or later) to read ' +
      'the mini program\'s AppID: give app the app\'s id or AppID instead');
  }
  /** @type {unknown} */
  let appID;
  try {
    const info = wxApi.getAccountInfoSync();
    appID = info && info.miniProgram && info.miniProgram.appId;
  } catch (err) {
    throw new TypeError('wxnotify: app "auto": wx.getAccountInfoSync failed (' + (errorText(err) || 'no reason') +
      '): give app the app\'s id or AppID instead');
  }
  if (typeof appID !== 'string' || !APP_PATTERN.test(appID)) {
    throw new TypeError('wxnotify: app "auto": wx.getAccountInfoSync gave no AppID (got ' +
      (typeof appID === 'string' ? JSON.stringify(appID) : typeof appID) + '): give app the app\'s id or AppID instead');
  }
  return appID;
}

/**
 * @param {string} name the option, for the error
 * @param {unknown} value
 * @returns {string} value without trailing slashes
 */
function checkedURL(name, value) {
  if (typeof value !== 'string' || !/^https?:\/\/[^/\s]/.test(value)) {
    throw new TypeError('wxnotify: ' + name + ' must be an http(s) URL, e.g. "https://notify.example.com", got ' +
      (typeof value === 'string' ? JSON.stringify(value) : typeof value));
  }
  return value.replace(/\/+$/, '');
}

/** @returns {WxApi | undefined} */
function globalWx() {
  return typeof wx !== 'undefined' ? wx : undefined;
}

/**
 * wx.login as a promise.
 * @param {WxApi} wxApi
 * @returns {Promise<WechatMiniprogram.LoginSuccessCallbackResult>}
 */
function wxLogin(wxApi) {
  return new Promise((resolve, reject) => {
    wxApi.login({
      success: resolve,
      fail(res) {
        reject(new WxError('login', res));
      },
    });
  });
}

/**
 * wx.getSetting({withSubscriptions: true}) as a promise.
 * @param {WxApi} wxApi
 * @returns {Promise<WechatMiniprogram.GetSettingSuccessCallbackResult>}
 */
function wxGetSetting(wxApi) {
  return new Promise((resolve, reject) => {
    wxApi.getSetting({
      withSubscriptions: true,
      success: resolve,
      fail(res) {
        reject(new WxError('getSetting', res));
      },
    });
  });
}

/**
 * Calls wx.requestSubscribeMessage at once (the promise executor runs
 * synchronously).
 * @param {WxApi} wxApi
 * @param {Template[]} group at most MAX_TMPL_IDS_PER_CALL templates of one kind
 * @returns {Promise<SubscribeSuccess>}
 */
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

/**
 * The default request option: wx.request, with the body as text (parsed by
 * parseBody, so that a non-JSON answer is kept).
 * @param {WxApi} wxApi
 * @returns {(req: HttpRequest) => Promise<HttpResponse>}
 */
function wxRequest(wxApi) {
  return function (req) {
    return new Promise((resolve, reject) => {
      /** @type {WechatMiniprogram.RequestOption} */
      const option = {
        url: req.url,
        method: req.method,
        header: req.header,
        dataType: 'json',
        responseType: 'text',
        success(res) {
          resolve({ statusCode: res.statusCode, data: res.data, header: res.header });
        },
        fail: reject,
      };
      if (req.data !== undefined) {
        option.data = req.data;
      }
      if (req.timeout !== undefined) {
        option.timeout = req.timeout;
      }
      wxApi.request(option);
    });
  };
}

/**
 * The errMsg of a wx failure or the message of an Error.
 * @param {unknown} err
 * @returns {string}
 */
function errorText(err) {
  if (err && typeof err === 'object') {
    const e = /** @type {{errMsg?: unknown, message?: unknown}} */ (err);
    if (typeof e.errMsg === 'string' && e.errMsg !== '') {
      return e.errMsg;
    }
    if (typeof e.message === 'string') {
      return e.message;
    }
  }
  return '';
}

/**
 * A session body, or null when v is not one.
 * @param {unknown} v
 * @returns {Session | null}
 */
function validSession(v) {
  if (!v || typeof v !== 'object') {
    return null;
  }
  const b = /** @type {Record<string, unknown>} */ (v);
  if (typeof b.token !== 'string' || b.token === '' || typeof b.expiresAt !== 'string' ||
      Number.isNaN(Date.parse(b.expiresAt))) {
    return null;
  }
  /** @type {Session} */
  const s = { token: b.token, expiresAt: b.expiresAt, openid: typeof b.openid === 'string' ? b.openid : '' };
  if (typeof b.userId === 'string' && b.userId !== '') {
    s.userId = b.userId;
  }
  return s;
}

/**
 * @param {unknown} aliases an alias or a list of them
 * @returns {string[]}
 */
function aliasList(aliases) {
  const list = typeof aliases === 'string' ? [aliases] : aliases;
  if (!Array.isArray(list) || list.length === 0 || list.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('wxnotify: aliases must be a non-empty array of template aliases');
  }
  return list;
}

/**
 * The templates of names (aliases or template ids), each once.
 * @param {string[]} names
 * @param {Template[]} list the catalog
 * @returns {Template[]}
 */
function resolveAliases(names, list) {
  /** @type {Template[]} */
  const out = [];
  /** @type {string[]} */
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

/**
 * Splits templates into popups of at most max ids of one kind, in the order
 * the kinds first appear: WeChat refuses one-time and long-term ids in one
 * call (20002). The first popup is asked now, the rest in later taps.
 * @param {Template[]} list at least one template
 * @param {number} max ids per popup
 * @returns {{first: Template[], rest: Template[]}}
 */
function planGroups(list, max) {
  /** @type {string[]} */
  const kinds = [];
  /** @type {Record<string, Template[]>} */
  const byKind = {};
  list.forEach((t) => {
    const k = t.kind || 'one-time';
    if (!byKind[k]) {
      byKind[k] = [];
      kinds.push(k);
    }
    byKind[k].push(t);
  });
  /** @type {Template[][]} */
  const groups = [];
  kinds.forEach((k) => {
    for (let i = 0; i < byKind[k].length; i += max) {
      groups.push(byKind[k].slice(i, i + max));
    }
  });
  /** @type {Template[]} */
  const rest = [];
  groups.slice(1).forEach((g) => {
    g.forEach((t) => rest.push(t));
  });
  return { first: groups[0], rest: rest };
}

/**
 * The success object as wxnotify takes it: errMsg and the template ids'
 * statuses (all strings).
 * @param {SubscribeSuccess} result
 * @returns {Record<string, string>}
 */
function reportedResult(result) {
  /** @type {Record<string, string>} */
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

/**
 * The fields wxnotify reads from a getSetting answer.
 * @param {WechatMiniprogram.GetSettingSuccessCallbackResult} res
 * @returns {ReportedSettings | undefined}
 */
function subscriptionsSetting(res) {
  const s = res && res.subscriptionsSetting;
  if (!s || typeof s !== 'object') {
    return undefined;
  }
  /** @type {ReportedSettings} */
  const out = {};
  if (typeof s.mainSwitch === 'boolean') {
    out.mainSwitch = s.mainSwitch;
  }
  const given = s.itemSettings;
  if (given && typeof given === 'object') {
    /** @type {Record<string, string>} */
    const items = {};
    Object.keys(given).forEach((id) => {
      if (typeof given[id] === 'string') {
        items[id] = given[id];
      }
    });
    out.itemSettings = items;
  }
  return out;
}

/**
 * A response body: JSON text parsed, other text kept, nothing as null.
 * @param {unknown} data
 * @returns {unknown}
 */
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

/**
 * @param {Record<string, string> | undefined} header
 * @param {string} name
 * @returns {string | undefined} the value of name, matched case-insensitively
 */
function headerValue(header, name) {
  if (!header || typeof header !== 'object') {
    return undefined;
  }
  const want = name.toLowerCase();
  const key = Object.keys(header).find((k) => k.toLowerCase() === want);
  return key === undefined ? undefined : String(header[key]);
}

/**
 * The ApiError of a non-2xx answer.
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string> | undefined} header
 * @returns {ApiError}
 */
function toApiError(status, body, header) {
  const b = body && typeof body === 'object' ? /** @type {{error?: unknown}} */ (body) : null;
  const e = b && b.error && typeof b.error === 'object' ? /** @type {Record<string, unknown>} */ (b.error) : null;
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
  MAX_TMPL_IDS_PER_CALL: MAX_TMPL_IDS_PER_CALL,
};

// The exports as index.d.ts declares them: tsc fails here when the two part.
/** @type {typeof import('../index')} */
const declared = module.exports; // eslint-disable-line no-unused-vars
