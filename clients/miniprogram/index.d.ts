// Type definitions for wxnotify-miniprogram. They use WeChat's official typings (npm install -D
// miniprogram-api-typings; DevTools' TypeScript templates have it).
/// <reference types="miniprogram-api-typings" />

/**
 * The methods of the global `wx` the kit calls, with the signatures of
 * WeChat's official typings (miniprogram-api-typings, global namespace
 * `WechatMiniprogram`). The real `wx` is one, so it can be passed as
 * `options.wx`.
 */
export type WxApi = Pick<
  WechatMiniprogram.Wx,
  | 'login'
  | 'request'
  | 'requestSubscribeMessage'
  | 'getSetting'
  | 'openSetting'
  | 'showModal'
  | 'getStorageSync'
  | 'setStorageSync'
  | 'removeStorageSync'
> &
  /** Needed only for app: 'auto', which reads the mini program's AppID from it. */
  Partial<Pick<WechatMiniprogram.Wx, 'getAccountInfoSync'>>;

/** wxnotify's session body (POST /v1/session, POST /v1/bindings), as kept in storage. */
export interface Session {
  token: string;
  /** RFC 3339. */
  expiresAt: string;
  openid: string;
  /** The app's own account id, when the WeChat user is bound to one. */
  userId?: string;
}

export type TemplateKind = 'one-time' | 'long-term';

/** One entry of GET /v1/templates. */
export interface Template {
  alias: string;
  templateId: string;
  kind: TemplateKind;
  title: string;
  /** Keyword name -> type, e.g. `{"thing4": "thing", "date2": "date"}`. */
  keywords: Record<string, string>;
}

/** A template's status in the success object of wx.requestSubscribeMessage. */
export type SubscribeStatus = 'accept' | 'reject' | 'ban' | 'filter' | 'acceptWithAudio' | 'acceptWithAlert';

/** One entry of GET /v1/consents. */
export interface Consent {
  alias: string;
  templateId: string;
  kind: TemplateKind;
  /** "" when the user was never asked. */
  status: '' | 'accept' | 'reject' | 'ban' | 'filter';
  /** One-time templates: messages that may still be sent. */
  credits: number;
  /** Long-term templates: accepted. */
  accepted?: boolean;
  /** The user ticked "always keep this choice". */
  alwaysKeep: boolean;
  /** Asking again is useful (no credit left, not banned, not rejected for good). */
  prompt: boolean;
}

/** The body of GET and POST /v1/consents. */
export interface ConsentState {
  consents: Consent[];
  /** Reported template ids that are not in the catalog. */
  ignored: string[];
}

export interface SubscribeResult extends ConsentState {
  /** The success object of wx.requestSubscribeMessage, as WeChat gave it. */
  result: WechatMiniprogram.RequestSubscribeMessageSuccessCallbackResult;
  /** Alias -> status, for the aliases of this popup. */
  statuses: Record<string, SubscribeStatus | undefined>;
  /** Aliases that need another popup (another tap): call subscribe(remaining) then. */
  remaining: string[];
}

/** The subscriptionsSetting fields reported to POST /v1/consents. */
export interface ReportedSettings {
  mainSwitch?: boolean;
  itemSettings?: Record<string, string>;
}

export interface SettingsFlowResult extends ConsentState {
  /** The user confirmed the modal and the settings page was opened. */
  opened: boolean;
  /** What was reported, when wx.getSetting gave a subscriptionsSetting. */
  settings?: ReportedSettings;
}

export interface SettingsModalText {
  title?: string;
  content?: string;
  confirmText?: string;
  cancelText?: string;
}

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  header: Record<string, string>;
  /** The JSON object to send as the body (absent for GET). */
  data?: Record<string, unknown>;
  timeout?: number;
}

export interface HttpResponse {
  statusCode: number;
  /** The parsed JSON body (a string is parsed when it is JSON). */
  data: unknown;
  header?: Record<string, string>;
}

/**
 * The URL of each wxnotify function the kit calls, for deployments where every function has its own
 * address (Tencent Cloud's Function URLs, `https://<appid>-<id>.<region>.tencentscf.com`). The kit
 * appends the route's path (e.g. `/v1/session`) to the URL. Each must be in the mini program's request
 * domain list.
 */
export interface Endpoints {
  /** The login function (POST /v1/session); not needed with loginWith, which logs in through the app's backend. */
  login?: string;
  /** The consent function (GET /v1/templates, GET|POST /v1/consents, POST /v1/consents/shown, GET /v1/consents/advice). */
  consent: string;
}

/** The options of createClient besides the address. */
export interface CommonOptions {
  /**
   * The app, for a deployment that serves several mini programs: its id in wxnotify.yaml (e.g. "sales") or
   * its AppID; every request then goes to /v1/apps/<app>/... (e.g. POST /v1/apps/sales/session) under
   * baseURL, or under each function's URL with endpoints. "auto" is this mini program's own AppID, read
   * with wx.getAccountInfoSync() (createClient throws a TypeError when it is unavailable). Without app the
   * kit calls the short routes (/v1/...), which serve the deployment's default app. A session token acts
   * for the app that issued it only: a 403 app_forbidden logs in again once, as a 401 does.
   */
  app?: string;
  /** Storage key of the session (default "wxnotify.session"). */
  storageKey?: string;
  /**
   * Hands a fresh wx.login code to the app's own login API, which checks its
   * user, binds it with POST /v1/bindings and returns that answer (wxnotify's
   * session body). Without it the client calls POST /v1/session.
   */
  loginWith?: (code: string) => Promise<Session>;
  /** Sends one request (default: wx.request). A rejection becomes ApiError code "network". */
  request?: (req: HttpRequest) => Promise<HttpResponse>;
  /** The wx object (default: the global wx). */
  wx?: WxApi;
  /** Clock in milliseconds (default Date.now). */
  now?: () => number;
  /** Renew the session this long before it expires (default 60000). */
  renewBeforeMs?: number;
  /**
   * Template ids per wx.requestSubscribeMessage call: 1 to MAX_TMPL_IDS_PER_CALL (5, WeChat's documented
   * limit), the default. Use 3 for WeChat clients that refuse more (errCode 20003).
   */
  maxPerCall?: number;
  /** Request timeout in milliseconds (default: the app's networkTimeout). */
  timeout?: number;
  /**
   * How often a consent report that got no answer or a 5xx is sent again, with the same
   * Idempotency-Key so that the server counts it once (default 2).
   */
  reportRetries?: number;
  /** Milliseconds before the first resend of a report, growing linearly (default 500). */
  reportRetryDelay?: number;
  /**
   * Report each popup subscribe() opened to POST /v1/consents/shown, after its consent report, for the
   * consent funnel of GET /v1/stats (default true). A failure of that report is ignored.
   */
  reportShown?: boolean;
}

/**
 * Where wxnotify is: exactly one of baseURL (one address serves every route: AWS's HTTP API, a custom
 * domain, `wxnotify dev`) and endpoints (each function's own URL: Tencent Cloud). createClient throws a
 * TypeError for neither or both.
 */
export type ClientOptions = CommonOptions &
  (
    | {
        /** wxnotify's address, e.g. "https://notify.example.com"; it must be in the request domain list. */
        baseURL: string;
        endpoints?: undefined;
      }
    | {
        baseURL?: undefined;
        /** Each function's URL. */
        endpoints: Endpoints;
      }
  );

export interface Client {
  /**
   * wx.login, then POST /v1/session (or options.loginWith); keeps the session
   * in storage. Other calls log in by themselves when the session is missing,
   * expired or about to expire, and once after a 401 (or a 403 app_forbidden: a token of another app).
   */
  login(): Promise<Session>;
  /** The stored session or null; it may be expired. */
  getSession(): Session | null;
  /** Forgets the session. */
  logout(): void;
  /** GET /v1/templates, fetched once per client unless refresh is set. */
  templates(options?: { refresh?: boolean }): Promise<Template[]>;
  /**
   * Loads the template ids of aliases (logging in if needed) so that a later
   * subscribe(aliases) can show the popup within the tap. Call it when the
   * page loads. Rejects with TypeError for an alias not in the catalog.
   */
  prepare(aliases: string[]): Promise<Template[]>;
  /**
   * Asks the user to subscribe and reports the answer to POST /v1/consents.
   *
   * MUST be called from a tap handler, synchronously, before any await:
   * WeChat refuses the popup otherwise ("requestSubscribeMessage:fail can
   * only be invoked by user TAP gesture", SubscribeError kind
   * "tap_required"). Call prepare() first so the template ids are known.
   *
   * One popup: at most maxPerCall ids (MAX_TMPL_IDS_PER_CALL by default), all
   * one-time or all long-term (WeChat refuses a mix); the others are returned
   * in `remaining` for the next tap.
   *
   * Rejects with SubscribeError when WeChat fails, ApiError when wxnotify
   * refuses, TypeError for an alias not in the catalog.
   */
  subscribe(aliases: string[], options?: { settings?: boolean }): Promise<SubscribeResult>;
  /**
   * For users who rejected with "always keep this choice" or switched the
   * main switch off (20004): explains with wx.showModal, opens wx.openSetting
   * from the confirm tap, then reports wx.getSetting's subscriptionsSetting.
   */
  openSettingsFlow(text?: SettingsModalText): Promise<SettingsFlowResult>;
  /** GET /v1/consents. */
  consents(): Promise<ConsentState>;
  /**
   * The server's prompt field for alias: is asking again useful? Uses state
   * when given, else GET /v1/consents. It awaits: never call it in the tap
   * before subscribe().
   */
  shouldPrompt(alias: string, state?: ConsentState): Promise<boolean>;
  /**
   * The template ids worth asking the user for now, best first (GET /v1/consents/advice's suggested): at
   * most limit (1 to maxPerCall, default 3 or maxPerCall when lower), all one-time or all long-term, ready
   * for wx.requestSubscribeMessage; empty when nothing is worth asking. It loads the catalog too: call it
   * when the page loads, then subscribe(ids) first thing in the tap. It awaits: never call it in the tap
   * before subscribe(). Rejects with TypeError for a bad limit, ApiError when wxnotify refuses.
   */
  suggestedTemplates(options?: { limit?: number }): Promise<string[]>;
}

export declare function createClient(options: ClientOptions): Client;

/** accept, acceptWithAudio and acceptWithAlert grant a message. */
export declare function isAccepted(status: unknown): status is 'accept' | 'acceptWithAudio' | 'acceptWithAlert';

export type SubscribeFailKind =
  | 'empty' // 10001
  | 'network' // 10002, 10003
  | 'invalid_id' // 10004
  | 'ui_unavailable' // 10005
  | 'no_template' // 20001
  | 'mixed_types' // 20002
  | 'too_many' // 20003
  | 'main_switch_off' // 20004
  | 'banned' // 20005
  | 'device_template' // 20013
  | 'tap_required' // not called synchronously in a tap
  | 'unknown';

/** A failed wx API call. */
export declare class WxError extends Error {
  constructor(api: string, res?: { errMsg?: string; errCode?: number | string });
  readonly api: string;
  readonly errMsg: string;
  readonly errCode: number | undefined;
}

/** A failed wx.requestSubscribeMessage. */
export declare class SubscribeError extends WxError {
  constructor(res?: { errMsg?: string; errCode?: number | string });
  readonly kind: SubscribeFailKind;
}

export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'invalid_code'
  | 'blocked_user'
  | 'wechat_unavailable'
  | 'internal'
  /** No answer came (status 0). */
  | 'network'
  /** A non-2xx answer without wxnotify's error body: "http_<status>". */
  | (string & {});

/** A failed request to wxnotify: the error body of a non-2xx answer. */
export declare class ApiError extends Error {
  constructor(fields: { status: number; code: string; message?: string; field?: string; wechatErrcode?: number; requestId?: string });
  /** HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly field: string | undefined;
  readonly wechatErrcode: number | undefined;
  readonly requestId: string | undefined;
}

/** errCode of wx.requestSubscribeMessage -> kind. */
export declare const SUBSCRIBE_FAIL_KINDS: Readonly<Record<number, SubscribeFailKind>>;

/** The default text of openSettingsFlow's modal (the seeds' wording). */
export declare const SETTINGS_MODAL: Readonly<Required<SettingsModalText>>;

/**
 * The most template ids one wx.requestSubscribeMessage call takes (5), per WeChat's documentation of the
 * call: "一次调用最多可订阅5条消息". The default and the upper bound of maxPerCall.
 */
export declare const MAX_TMPL_IDS_PER_CALL: number;
