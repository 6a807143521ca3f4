// The session service's REST API from the browser: ARR's 2021-01-01 session routes and the
// token exchange. The account key is used once, to get an access token, and is not kept; the
// token lives in this object only (never in storage or URLs).

export const API_VERSION = "2021-01-01";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function errorOf(res) {
  let code = `HTTP${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const text = await res.text();
    const body = JSON.parse(text);
    if (body && body.error) ({ code, message } = body.error);
  } catch (e) { /* not JSON: keep the status line */ }
  if (res.status === 401) message = "the access token was refused (expired?): sign in again";
  return new ApiError(res.status, code, message);
}

export class FarviewApi {
  constructor(base = "") {
    this.base = base;
    this.account = null;
    this.token = null;
  }

  get signedIn() { return this.token !== null; }

  async signIn(accountId, accountKey) {
    const res = await fetch(`${this.base}/accounts/${encodeURIComponent(accountId)}/token`, {
      headers: { Authorization: `Bearer ${accountKey}` }, cache: "no-store",
    });
    if (res.status === 401) throw new ApiError(401, "Unauthorized", "wrong account id or key");
    if (!res.ok) throw await errorOf(res);
    const body = await res.json();
    this.account = accountId;
    this.token = body.AccessToken;
  }

  signOut() {
    this.account = null;
    this.token = null;
  }

  path(rest) { return `${this.base}/accounts/${encodeURIComponent(this.account)}${rest}`; }

  async call(method, rest, body) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const sep = rest.includes("?") ? "&" : "?";
    const res = await fetch(`${this.path(rest)}${sep}api-version=${API_VERSION}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
    if (!res.ok) throw await errorOf(res);
    return res.status === 204 ? null : res.json();
  }

  // ARR's list: the Starting and Ready sessions (ended ones are not listed), every page
  async listSessions() {
    let page = await this.call("GET", "/sessions");
    const out = [...page.sessions];
    for (let i = 0; page["@nextLink"] && i < 100; i++) {
      const res = await fetch(page["@nextLink"], { headers: { Authorization: `Bearer ${this.token}` } });
      if (!res.ok) break;
      page = await res.json();
      out.push(...page.sessions);
    }
    return out;
  }
  getSession(id) { return this.call("GET", `/sessions/${encodeURIComponent(id)}`); }
  createSession({ leaseMinutes = 60, size = "Standard" } = {}) {
    return this.call("PUT", `/sessions/${crypto.randomUUID()}`, { maxLeaseTimeMinutes: leaseMinutes, size });
  }
  renewSession(id, leaseMinutes) {
    return this.call("PATCH", `/sessions/${encodeURIComponent(id)}`, { maxLeaseTimeMinutes: leaseMinutes });
  }
  stopSession(id) { return this.call("POST", `/sessions/${encodeURIComponent(id)}/:stop`); }
  whepUrl(id) { return this.path(`/sessions/${encodeURIComponent(id)}/whep`); }
}

// STUN/TURN servers from a WHEP resource's Link headers ("ice-server" links: the WHEP draft, as RFC 9725 for WHIP)
export function iceServersFromLinks(header) {
  if (!header) return [];
  const servers = [];
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = part.match(/<([^>]+)>(.*)/);
    if (!m || !/rel="?ice-server"?/.test(m[2])) continue;
    const server = { urls: m[1] };
    const user = m[2].match(/username="([^"]*)"/);
    const cred = m[2].match(/credential="([^"]*)"/);
    if (user) server.username = user[1];
    if (cred) server.credential = cred[1];
    servers.push(server);
  }
  return servers;
}
