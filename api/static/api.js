// The viewer's messages, its HTTP helpers and the signed-in session: API client or user
// sign-in, the tokens, their refresh, sign-out.
//
// The access and refresh tokens live only in `session`, inside this closure: never in
// localStorage, sessionStorage, cookies or a URL (integration guide §7), and not on
// `window` either. viewer.js calls `vasApi({onSessionLost})` once (and removes the factory
// from `window`); the helpers it gets send the token in the Authorization header.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

  window.vasApi = ({ onSessionLost }) => {
    let session = null; // {clientId, user, scopes, accessToken, refreshToken, refreshTimer}
    let refreshing = null; // the refresh in flight, shared by every caller that needs it

    // --- messages ---------------------------------------------------------------------------

    function say(text) {
      $('status').textContent = text;
    }

    // An answer of the API other than 2xx, with the guide's `detail` (string or object).
    class ApiError extends Error {
      constructor(status, detail) {
        const structured = detail && typeof detail === 'object' && !Array.isArray(detail);
        const message = structured ? detail.message ?? JSON.stringify(detail) : String(detail);
        super(message);
        this.status = status;
        this.code = structured ? detail.error_code ?? null : null;
        this.more = structured ? detail.detail ?? null : null;
      }

      describe() {
        const head = this.code ? `${this.code} (HTTP ${this.status})` : `HTTP ${this.status}`;
        return `${head}: ${this.message}${this.more ? ` — ${this.more}` : ''}`;
      }
    }

    function showError(error) {
      const box = $('error');
      box.textContent = error instanceof ApiError ? error.describe() : String(error.message ?? error);
      box.dataset.code = error.code ?? '';
      box.dataset.status = error.status ?? '';
      box.hidden = false;
    }

    function clearError() {
      const box = $('error');
      box.hidden = true;
      box.textContent = '';
      box.dataset.code = '';
      box.dataset.status = '';
    }

    // --- HTTP -------------------------------------------------------------------------------

    async function errorOf(response) {
      let detail = response.statusText || 'request failed';
      try {
        const body = await response.json();
        // The VAS family answers {detail}; the OmniSight one {error: {code, message, details}}.
        detail = body.error ? { error_code: body.error.code, message: body.error.message }
          : body.detail ?? detail;
      } catch {
        // not JSON (a proxy's page, an empty body): keep the status text
      }
      return new ApiError(response.status, detail);
    }

    // fetch with the Bearer header. A 401 is answered once by refreshing the tokens and
    // sending the request again (guide §2.6): the access token may have expired meanwhile.
    async function request(path, { method = 'GET', json, body, headers = {}, retry = true } = {}) {
      const sent = { ...headers };
      if (session) sent.Authorization = `Bearer ${session.accessToken}`;
      if (json !== undefined) {
        sent['Content-Type'] = 'application/json';
        body = JSON.stringify(json);
      }
      const response = await fetch(path, { method, headers: sent, body, cache: 'no-store' });
      if (response.status === 401 && retry && session) {
        await refreshTokens();
        return request(path, { method, body, headers: sent, retry: false });
      }
      return response;
    }

    // The parsed JSON body (null for 204), or an ApiError.
    async function api(path, options) {
      const response = await request(path, options);
      if (!response.ok) throw await errorOf(response);
      return response.status === 204 ? null : response.json();
    }

    async function apiBlob(path) {
      const response = await request(path);
      if (!response.ok) throw await errorOf(response);
      return response.blob();
    }

    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

    // Poll a snapshot or bookmark until its job made it: `ready` returns it, `failed` throws.
    async function untilReady(path, deadline, everyMs) {
      for (;;) {
        const item = await api(path);
        if (item.status === 'ready') return item;
        if (item.status === 'failed') throw new Error(`${path} failed: ${item.error ?? 'no reason given'}`);
        if (Date.now() > deadline) throw new Error(`${path} still ${item.status}; giving up`);
        await sleep(everyMs);
      }
    }

    // --- session ----------------------------------------------------------------------------

    async function postJson(path, payload) {
      const response = await fetch(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
        cache: 'no-store',
      });
      if (!response.ok) throw await errorOf(response);
      return response.json();
    }

    async function signIn(clientId, clientSecret) {
      const tokens = await postJson('/v2/auth/token', { client_id: clientId, client_secret: clientSecret });
      session = { clientId, user: false, scopes: tokens.scopes ?? [], refreshTimer: null };
      adoptTokens(tokens);
    }

    // A user's sign-in (OmniSight API): the same kind of access token, its scopes from the
    // user's role; the answer names them only inside the token, so they are read from there.
    function userTokens(answer) {
      const part = answer.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
      return {
        access_token: answer.token,
        refresh_token: answer.refreshToken,
        expires_in: claims.exp - claims.iat,
        scopes: (claims.scope ?? '').split(' ').filter(Boolean),
      };
    }

    async function signInUser(email, password) {
      const answer = await postJson('/api/v1/auth/login', { email, password });
      const tokens = userTokens(answer);
      session = { clientId: answer.user.email, user: true, scopes: tokens.scopes, refreshTimer: null };
      adoptTokens(tokens);
    }

    function postRefresh(current) {
      if (current.user) {
        return postJson('/api/v1/auth/refresh-token', { refreshToken: current.refreshToken })
          .then(userTokens);
      }
      return postJson('/v2/auth/token/refresh', { refresh_token: current.refreshToken });
    }

    function adoptTokens(tokens) {
      session.accessToken = tokens.access_token;
      session.refreshToken = tokens.refresh_token;
      clearTimeout(session.refreshTimer);
      // Guide §2.6: refresh once ~80% of the access token's lifetime has passed.
      const dueMs = tokens.expires_in * 1000 * 0.8;
      session.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), dueMs);
    }

    // One refresh at a time: the server rotates the refresh token, so a second refresh with
    // the old one would fail and end a session that is fine.
    function refreshTokens() {
      if (!refreshing) {
        const current = session;
        refreshing = postRefresh(current)
          .then((tokens) => {
            if (session === current) adoptTokens(tokens);
          })
          .catch(async (error) => {
            if (session === current) {
              await onSessionLost(error);
            }
            throw error;
          })
          .finally(() => {
            refreshing = null;
          });
      }
      return refreshing;
    }

    // End the session: no more refreshes; a user's session ends on the server too (its
    // refresh token stops working).
    async function signOut() {
      if (!session) return;
      const ending = session;
      session = null;
      clearTimeout(ending.refreshTimer);
      if (ending.user) {
        await postJson('/api/v1/auth/logout', { refreshToken: ending.refreshToken }).catch(() => {});
      }
    }

    return {
      say, showError, clearError, errorOf, request, api, apiBlob, untilReady, sleep,
      signIn, signInUser, signOut,
      signedIn: () => session !== null,
      who: () => ({ name: session.clientId, scopes: [...session.scopes] }),
      accessToken: () => session?.accessToken,
    };
  };
})();
