// Compile-time tests of index.d.ts, run by `make typecheck-js` (tsconfig.json): what a TypeScript mini
// program may write, and, marked @ts-expect-error, what it may not (tsc fails if such a line compiles).
import { createClient, ClientOptions, MAX_TMPL_IDS_PER_CALL, SubscribeError, WxApi } from 'wxnotify-miniprogram';

const byBase: ClientOptions = { baseURL: 'https://notify.example.com' };
const byFunction: ClientOptions = { endpoints: { login: 'https://login.example.com', consent: 'https://consent.example.com' } };
const ownLogin: ClientOptions = {
  endpoints: { consent: 'https://consent.example.com' },
  loginWith: async (code) => ({ token: code, expiresAt: '2099-01-01T00:00:00Z', openid: 'o1' }),
};
// @ts-expect-error neither baseURL nor endpoints
const neither: ClientOptions = {};
// @ts-expect-error both baseURL and endpoints
const both: ClientOptions = { baseURL: 'https://a.example.com', endpoints: { consent: 'https://b.example.com' } };
// @ts-expect-error endpoints without the consent function
const noConsent: ClientOptions = { endpoints: { login: 'https://login.example.com' } };
// @ts-expect-error send is not a function the kit calls
const send: ClientOptions = { endpoints: { consent: 'https://c.example.com', send: 'https://s.example.com' } };
// The app of a deployment of several mini programs: an id, an AppID or "auto".
const byApp: ClientOptions = { baseURL: 'https://notify.example.com', app: 'sales' };
const byAppID: ClientOptions = { endpoints: { login: 'https://login.example.com', consent: 'https://consent.example.com' }, app: 'auto' };
// @ts-expect-error app is a string
const appNumber: ClientOptions = { baseURL: 'https://notify.example.com', app: 42 };
// A wx without getAccountInfoSync (only app: 'auto' needs it) is still a WxApi.
const { getAccountInfoSync, ...withoutAccountInfo } = wx;
const older: WxApi = withoutAccountInfo;
void getAccountInfoSync;

// The real wx is a WxApi.
const real: WxApi = wx;
const client = createClient({ baseURL: 'https://notify.example.com', wx: real, maxPerCall: MAX_TMPL_IDS_PER_CALL });

// suggestedTemplates() gives template ids, the tmplIds of the next popup.
export async function onLoad(): Promise<string[]> {
  const ids: string[] = await client.suggestedTemplates();
  // @ts-expect-error limit is a number
  await client.suggestedTemplates({ limit: '3' });
  return ids.concat(await client.suggestedTemplates({ limit: 2 }));
}

export async function onTap(): Promise<void> {
  try {
    const state = await client.subscribe(['lead_assigned']);
    const answer: string = state.result.errMsg;
    const credits: number = state.consents[0].credits;
    void answer;
    void credits;
  } catch (err) {
    if (err instanceof SubscribeError && err.kind === 'too_many') {
      createClient({ baseURL: 'https://notify.example.com', maxPerCall: 3 });
    }
  }
}

export { byBase, byFunction, ownLogin, neither, both, noConsent, send, byApp, byAppID, appNumber, older };
