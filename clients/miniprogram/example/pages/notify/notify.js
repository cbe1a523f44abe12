// A page that asks for "new lead" notifications through wxnotify.
//
// Drop pages/notify/ into a mini program, add "pages/notify/notify" to the
// pages of app.json, set BASE_URL (it must be in the request domain list of
// the mini program console) and install the kit: npm install
// wxnotify-miniprogram, then 构建 npm (Build npm) in the developer tools; or
// copy its miniprogram_dist/index.js (e.g. to utils/wxnotify.js) and change
// the require below.
const { createClient, isAccepted, SubscribeError } = require('wxnotify-miniprogram');

/** @typedef {import('wxnotify-miniprogram').ConsentState} ConsentState */
/** @typedef {{statusText: string, credits: number, alwaysKeep: boolean, prompt: boolean}} ConsentView */

const BASE_URL = 'https://notify.example.com';
const ALIAS = 'lead_assigned';

// One client for the page. On Tencent Cloud, where each function has its own
// URL, pass the deployment's endpoints instead of baseURL:
//   createClient({ endpoints: { login: '<login URL>', consent: '<consent URL>' } })
// To bind the user to your own account (the seeds' username/password login),
// pass loginWith: (code) => your login API, which checks the password, calls
// POST /v1/bindings and returns its body.
const notify = createClient({ baseURL: BASE_URL });

/** @type {Record<string, string>} */
const STATUS_TEXT = {
  '': '未订阅',
  accept: '已订阅',
  reject: '已拒绝',
  ban: '已被封禁',
  filter: '已被过滤',
};

Page({
  data: {
    ready: false,
    account: '',
    consent: /** @type {ConsentView | null} */ (null),
    error: '',
  },

  // Loads the template ids now, so that the tap can show the popup at once.
  onLoad() {
    return this.refresh();
  },

  refresh() {
    return notify
      .prepare([ALIAS])
      .then(() => notify.consents())
      .then((state) => {
        this.showState(state);
        this.setData({ ready: true });
      })
      .catch((err) => this.showError(err));
  },

  onLogin() {
    return notify
      .login()
      .then(() => this.refresh())
      .catch((err) => this.showError(err));
  },

  // bindtap of the "notify me" button. subscribe() comes first, with nothing
  // awaited before it: WeChat shows the popup only during the tap.
  onNotifyTap() {
    return notify.subscribe([ALIAS]).then(
      (state) => {
        this.showState(state);
        const consent = this.data.consent;
        if (isAccepted(state.statuses[ALIAS])) {
          wx.showToast({ title: '已订阅成功', icon: 'none' });
        } else if (consent && consent.alwaysKeep) {
          // "Always keep this choice" + reject: the popup will not show again.
          return this.openSettings();
        } else {
          wx.showToast({ title: '未订阅,可再次点击订阅', icon: 'none' });
        }
        return undefined;
      },
      (err) => {
        if (err instanceof SubscribeError && err.kind === 'main_switch_off') {
          return this.openSettings();
        }
        return this.showError(err);
      }
    );
  },

  openSettings() {
    return notify
      .openSettingsFlow()
      .then((state) => this.showState(state))
      .catch((err) => this.showError(err));
  },

  /** @param {ConsentState} state */
  showState(state) {
    const session = notify.getSession();
    const c = state.consents.find((x) => x.alias === ALIAS);
    this.setData({
      account: session ? session.userId || session.openid : '',
      consent: c
        ? {
            statusText: STATUS_TEXT[c.status] || c.status,
            credits: c.credits,
            alwaysKeep: c.alwaysKeep,
            prompt: c.prompt,
          }
        : null,
      error: '',
    });
  },

  /** @param {unknown} err */
  showError(err) {
    this.setData({ error: err instanceof Error ? err.message : String(err) });
  },
});
