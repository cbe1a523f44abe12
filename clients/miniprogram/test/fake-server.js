'use strict';

// An in-memory model of wxnotify's mini program routes (docs/openapi.yaml),
// for the stub's wx.request: sessions that expire on the test clock, the
// template catalog, and a consent ledger with the server's prompt rule. It
// checks request bodies as strictly as wxnotify does, so a kit that sends
// the wrong shape gets the 400 the real server would give. As deployed on
// Tencent Cloud, each function serves only its own routes:
// server.functionHandler('login' | 'consent') answers the others 404.
// Like a deployment of several apps, it serves every route also as
// /v1/apps/{app}/... ({app} an app's id or AppID; none such: 404
// app_not_found), the short routes serving the first app, and a session
// token acts for the app that issued it only (403 app_forbidden).

const TEMPLATES = [
  { alias: 'lead_assigned', templateId: 'tpl-lead', kind: 'one-time', title: 'Lead assigned',
    keywords: { thing4: 'thing', date2: 'date', character_string9: 'character_string' } },
  { alias: 'lead_digest', templateId: 'tpl-digest', kind: 'one-time', title: 'Lead digest', keywords: { thing1: 'thing' } },
  { alias: 'visit_reminder', templateId: 'tpl-visit', kind: 'one-time', title: 'Visit reminder', keywords: { time3: 'time' } },
  { alias: 'order_paid', templateId: 'tpl-paid', kind: 'one-time', title: 'Order paid', keywords: { amount1: 'amount' } },
  { alias: 'order_shipped', templateId: 'tpl-shipped', kind: 'one-time', title: 'Order shipped', keywords: { thing1: 'thing' } },
  { alias: 'visit_summary', templateId: 'tpl-summary', kind: 'one-time', title: 'Visit summary', keywords: { thing5: 'thing' } },
  { alias: 'service_status', templateId: 'tpl-status', kind: 'long-term', title: 'Service status', keywords: { phrase1: 'phrase' } },
  { alias: 'outage', templateId: 'tpl-outage', kind: 'long-term', title: 'Outage', keywords: { thing2: 'thing' } },
];

const ACCEPTS = ['accept', 'acceptWithAudio', 'acceptWithAlert'];

// The routes each wxnotify function serves (shared/httpapi's groups) that
// the fake models.
const FUNCTION_ROUTES = {
  login: ['POST /v1/session'],
  consent: ['GET /v1/templates', 'GET /v1/consents', 'POST /v1/consents', 'POST /v1/consents/shown', 'GET /v1/consents/advice'],
};

// The apps of the fake deployment unless options.apps says otherwise: the
// first is the default app.
const APPS = [
  { id: 'sales', appId: 'wx5f2a9c3e1b7d4a60' },
  { id: 'customer', appId: 'wx0c1d2e3f4a5b6c7d' },
];

/**
 * @param {{now: () => number, ttlMs?: number, templates?: Array<object>,
 *   apps?: Array<{id: string, appId: string}>}} options
 */
function createFakeServer(options) {
  const now = options.now;
  const apps = options.apps || APPS;
  const ttlMs = options.ttlMs || 60 * 60 * 1000;
  const templates = options.templates || TEMPLATES;
  const tokens = new Map(); // token -> {openid, exp}
  const ledgers = new Map(); // openid -> Map(templateId -> entry)
  const overrides = {};
  const reportKeys = new Set(); // openid + ' ' + Idempotency-Key of applied reports
  const shownKeys = new Set(); // openid + ' ' + Idempotency-Key of shown popups counted
  const shown = new Map(); // openid + ' ' + templateId -> popups shown
  let issued = 0;
  let requestIds = 0;

  const server = {
    templates,
    tokens,
    apps,
    /** Replaces one route ("GET /v1/templates") with fn(req) -> response. */
    override(route, fn) {
      overrides[route] = fn;
    },
    /** Issues a session for openid of app (an id, default the first app), as POST /v1/session would. */
    issue(openid, userId, app) {
      issued++;
      const token = 'tok-' + issued;
      const exp = now() + ttlMs;
      tokens.set(token, { openid, exp, app: app || apps[0].id });
      const body = { token, expiresAt: new Date(exp).toISOString(), openid };
      if (userId) body.userId = userId;
      return body;
    },
    /** The ledger entry of openid for templateId. */
    entry(openid, templateId) {
      if (!ledgers.has(openid)) ledgers.set(openid, new Map());
      const l = ledgers.get(openid);
      if (!l.has(templateId)) l.set(templateId, { status: '', credits: 0, longTerm: false, alwaysKeep: false });
      return l.get(templateId);
    },
    state(openid, ignored) {
      return {
        consents: templates.map((t) => {
          const e = server.entry(openid, t.templateId);
          const sendable = t.kind === 'long-term' ? e.longTerm : e.credits > 0;
          const blocked = e.status === 'ban' || (e.alwaysKeep && e.status === 'reject');
          const c = { alias: t.alias, templateId: t.templateId, kind: t.kind, status: e.status,
            credits: t.kind === 'long-term' ? 0 : e.credits, alwaysKeep: e.alwaysKeep, prompt: !blocked && !sendable };
          if (t.kind === 'long-term') c.accepted = e.longTerm;
          return c;
        }),
        ignored: ignored || [],
      };
    },
    /**
     * A handler for one function's own URL: it serves that function's
     * routes and answers 404 to the others, as a Tencent Cloud Function URL
     * does.
     */
    functionHandler(name) {
      const routes = FUNCTION_ROUTES[name];
      if (!routes) throw new Error('fake server: no function ' + name);
      return (req) => {
        const { route } = resolve(req);
        return routes.includes(route) ? server.handle(req) : error(404, 'not_found', 'no route ' + route + ' on ' + name);
      };
    },
    /** Handles one wx.request call. */
    handle(req) {
      const { route, app, name } = resolve(req);
      if (!app) return error(404, 'app_not_found', 'no app "' + name + '" in this deployment');
      if (overrides[route]) return overrides[route](req);
      if (route === 'POST /v1/session') return login(req, app);
      if (route === 'GET /healthz') return ok({ ok: true });
      const sess = authenticate(req);
      if (!sess) return error(401, 'unauthorized', 'invalid or expired session token');
      if (sess.app !== app.id) {
        return error(403, 'app_forbidden', 'this session token is of another app than "' + app.id + '"');
      }
      switch (route) {
        case 'GET /v1/templates':
          return ok({ templates });
        case 'GET /v1/consents':
          return ok(server.state(sess.openid));
        case 'POST /v1/consents': {
          // Like wxnotify: a report's Idempotency-Key is applied once.
          const key = req.header && req.header['Idempotency-Key'];
          if (key && reportKeys.has(sess.openid + ' ' + key)) return ok(server.state(sess.openid, []));
          const res = report(sess.openid, req.data);
          if (key && res.statusCode === 200) reportKeys.add(sess.openid + ' ' + key);
          return res;
        }
        case 'POST /v1/consents/shown': {
          // Like wxnotify: counted once per Idempotency-Key, templates
          // outside the catalog ignored.
          const ids = req.data && req.data.templates;
          if (!Array.isArray(ids) || ids.length === 0 || ids.length > 10 || ids.some((id) => typeof id !== 'string')) {
            return error(400, 'bad_request', 'must name 1 to 10 template ids', 'templates');
          }
          const key = req.header && req.header['Idempotency-Key'];
          const ignored = ids.filter((id) => !templates.some((t) => t.templateId === id));
          if (!key || !shownKeys.has(sess.openid + ' ' + key)) {
            if (key) shownKeys.add(sess.openid + ' ' + key);
            for (const id of new Set(ids)) {
              if (!ignored.includes(id)) shown.set(sess.openid + ' ' + id, (shown.get(sess.openid + ' ' + id) || 0) + 1);
            }
          }
          return ok({ ok: true, ignored });
        }
        case 'GET /v1/consents/advice':
          return advice(sess.openid, new URL(req.url).searchParams);
        default:
          return error(404, 'not_found', 'no route ' + route);
      }
    },
    // shownCount is how many popups the kit reported shown for openid and
    // templateId.
    shownCount(openid, templateId) {
      return shown.get(openid + ' ' + templateId) || 0;
    },
  };

  // resolve names the request's route in its short form ("GET
  // /v1/templates") and its app: the {app} of /v1/apps/{app}/... by id or
  // AppID (undefined when none is such), else the default app.
  function resolve(req) {
    const path = new URL(req.url).pathname;
    const m = /^\/v1\/apps\/([^/]+)(\/.*)$/.exec(path);
    if (!m) return { route: req.method + ' ' + path, app: apps[0] };
    const name = decodeURIComponent(m[1]);
    return { route: req.method + ' /v1' + m[2], app: apps.find((a) => a.id === name || a.appId === name), name };
  }

  function ok(data) {
    return { statusCode: 200, data, header: { 'Content-Type': 'application/json; charset=utf-8' } };
  }

  function error(status, code, message, field) {
    requestIds++;
    const body = { error: { code, message, requestId: 'req-' + requestIds } };
    if (field) body.error.field = field;
    return { statusCode: status, data: body, header: { 'X-Request-Id': 'req-' + requestIds } };
  }

  function authenticate(req) {
    const h = req.header && req.header.Authorization;
    const m = /^Bearer (.+)$/.exec(h || '');
    if (!m) return null;
    const s = tokens.get(m[1]);
    if (!s || s.exp <= now()) return null;
    return s;
  }

  function login(req, app) {
    const body = req.data;
    if (!body || typeof body.code !== 'string' || body.code === '') {
      return error(400, 'bad_request', 'code is required', 'code');
    }
    if (req.header && req.header.Authorization) {
      return error(400, 'bad_request', 'POST /v1/session takes no Authorization');
    }
    return ok(server.issue('o-' + body.code.replace(/^code-\d+$/, 'user'), undefined, app.id));
  }

  // advice answers GET /v1/consents/advice as wxnotify does for a user
  // without send history (the fake sends nothing): templates rejected with
  // "always keep", banned or long-term and accepted are excluded; those
  // without credit (tier 5, no_credit or not_accepted) rank before those
  // with credits (tier 6, credit_covers_demand), in catalog order; suggested
  // is the first `limit` of tier 5 of the first one's kind. It checks its
  // parameters as wxnotify does.
  function advice(openid, params) {
    for (const k of params.keys()) {
      if (k !== 'limit') return error(400, 'bad_request', k === 'userId' ? 'not with a session token' : 'unknown parameter', k);
      if (params.getAll(k).length > 1) return error(400, 'bad_request', 'given more than once', k);
    }
    let limit = 3;
    if (params.has('limit')) {
      if (!/^[1-5]$/.test(params.get('limit'))) return error(400, 'bad_request', 'must be a number from 1 to 5', 'limit');
      limit = Number(params.get('limit'));
    }
    const ranked = [];
    const excluded = [];
    templates.forEach((t) => {
      const e = server.entry(openid, t.templateId);
      let reason = '';
      if (e.status === 'ban') reason = 'banned';
      else if (e.status === 'reject' && e.alwaysKeep) reason = 'always_reject';
      else if (t.kind === 'long-term' && e.longTerm) reason = 'long_term_accepted';
      if (reason) {
        excluded.push({ alias: t.alias, templateId: t.templateId, kind: t.kind, reason });
        return;
      }
      const credits = t.kind === 'long-term' ? 0 : e.credits;
      const tier = credits > 0 ? 6 : 5;
      const first = tier === 6 ? 'credit_covers_demand' : t.kind === 'long-term' ? 'not_accepted' : 'no_credit';
      ranked.push({ alias: t.alias, templateId: t.templateId, kind: t.kind, tier, reasons: [first], suggested: false,
        held: 0, unmetDemand: 0, recentDemand: 0, credits, appDemand: 0 });
    });
    ranked.sort((a, b) => a.tier - b.tier);
    const suggested = [];
    ranked.forEach((a, i) => {
      a.rank = i + 1;
      if (a.tier <= 5 && suggested.length < limit && a.kind === ranked[0].kind) {
        a.suggested = true;
        suggested.push(a.templateId);
      }
    });
    return ok({ openid, suggested, limit, since: new Date(now() - 30 * 86400000).toISOString(), templates: ranked, excluded });
  }

  function report(openid, body) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return error(400, 'bad_request', 'the body is empty, a JSON object is expected');
    }
    let result = body;
    let settings = null;
    if ('result' in body) {
      for (const k of Object.keys(body)) {
        if (k !== 'result' && k !== 'settings') return error(400, 'bad_request', 'unknown field', k);
      }
      result = body.result;
      settings = body.settings || null;
      if (!result || typeof result !== 'object') return error(400, 'bad_request', 'must be an object', 'result');
    }
    for (const k of Object.keys(result)) {
      if (typeof result[k] !== 'string') return error(400, 'bad_request', 'must be a string', 'result.' + k);
    }
    if (result.errMsg !== 'requestSubscribeMessage:ok') {
      return error(400, 'bad_request', 'report only successful results', 'result.errMsg');
    }
    if (settings) {
      for (const k of Object.keys(settings)) {
        if (k !== 'mainSwitch' && k !== 'itemSettings') return error(400, 'bad_request', 'unknown field', 'settings.' + k);
      }
    }
    const ignored = [];
    for (const id of Object.keys(result)) {
      if (id === 'errMsg') continue;
      const t = templates.find((x) => x.templateId === id);
      if (!t) {
        ignored.push(id);
        continue;
      }
      const e = server.entry(openid, id);
      const status = ACCEPTS.includes(result[id]) ? 'accept' : result[id];
      e.status = status;
      if (status === 'accept') {
        if (t.kind === 'long-term') e.longTerm = true;
        else e.credits++;
      } else if (t.kind === 'long-term' && status === 'reject') {
        e.longTerm = false;
      }
    }
    if (settings && settings.itemSettings) {
      for (const id of Object.keys(settings.itemSettings)) {
        const t = templates.find((x) => x.templateId === id);
        if (!t) continue;
        const e = server.entry(openid, id);
        e.alwaysKeep = true;
        const s = settings.itemSettings[id];
        if (s === 'reject' || s === 'ban') e.status = s;
        if (s === 'accept' && e.status !== 'accept' && !(id in result)) e.status = 'accept';
      }
    }
    return ok(server.state(openid, ignored));
  }

  return server;
}

module.exports = { createFakeServer, TEMPLATES, FUNCTION_ROUTES, APPS };

/**
 * A test world: a manual clock, the wx stub, the fake server answering its
 * wx.request, and a client using both. Options go to createClient.
 * @param {object} [clientOptions]
 * @param {{stub?: object, ttlMs?: number, now?: () => number, apps?: Array<{id: string, appId: string}>}} [worldOptions]
 *   now: a clock for the server (default a manual clock starting 2026-11-21T09:00Z)
 */
function createWorld(clientOptions, worldOptions) {
  const { createWxStub } = require('./wx-stub');
  const { createClient } = require('..');
  const w = worldOptions || {};
  let t = Date.parse('2026-11-21T09:00:00Z');
  const clock = {
    now: w.now || (() => t),
    advance(ms) {
      t += ms;
    },
  };
  const kinds = {};
  TEMPLATES.forEach((tpl) => {
    kinds[tpl.templateId] = tpl.kind;
  });
  const stub = createWxStub(Object.assign({ kinds }, w.stub));
  const server = createFakeServer({ now: clock.now, ttlMs: w.ttlMs, apps: w.apps });
  stub.on('request', (req) => server.handle(req));
  const address = clientOptions && clientOptions.endpoints ? {} : { baseURL: 'https://notify.example.com' };
  const client = createClient(Object.assign(address, { wx: stub.wx, now: clock.now }, clientOptions));
  return { clock, stub, server, client };
}

module.exports.createWorld = createWorld;

// Run as a test file (node --test runs every file under test/), this checks
// that the fake refuses what wxnotify refuses.
if (require.main === module) {
  const { test } = require('node:test');
  const assert = require('node:assert/strict');

  test('fake server: POST /v1/consents validates like wxnotify', () => {
    const server = createFakeServer({ now: () => 0 });
    const { token } = server.issue('o1');
    const post = (data) =>
      server.handle({ method: 'POST', url: 'https://x/v1/consents', header: { Authorization: 'Bearer ' + token }, data });
    const cases = [
      { data: { result: { errMsg: 'requestSubscribeMessage:ok' }, extra: 1 }, status: 400, field: 'extra' },
      { data: { result: { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': 1 } }, status: 400, field: 'result.tpl-lead' },
      { data: { result: { errMsg: 'requestSubscribeMessage:fail' } }, status: 400, field: 'result.errMsg' },
      { data: { result: { errMsg: 'requestSubscribeMessage:ok' }, settings: { mainSwitch: true, x: 1 } }, status: 400, field: 'settings.x' },
      { data: { errMsg: 'requestSubscribeMessage:ok', 'tpl-lead': 'accept' }, status: 200 },
      { data: { result: { errMsg: 'requestSubscribeMessage:ok', nope: 'accept' } }, status: 200, ignored: ['nope'] },
    ];
    for (const tc of cases) {
      const res = post(tc.data);
      assert.equal(res.statusCode, tc.status, JSON.stringify(tc.data));
      if (tc.field) assert.equal(res.data.error.field, tc.field);
      if (tc.ignored) assert.deepEqual(res.data.ignored, tc.ignored);
    }
    assert.equal(server.entry('o1', 'tpl-lead').credits, 1);
  });

  test('fake server: sessions expire', () => {
    let t = 0;
    const server = createFakeServer({ now: () => t, ttlMs: 1000 });
    const { token } = server.issue('o1');
    const get = () => server.handle({ method: 'GET', url: 'https://x/v1/templates', header: { Authorization: 'Bearer ' + token } });
    assert.equal(get().statusCode, 200);
    t = 1000;
    assert.equal(get().statusCode, 401);
  });
}
