// The dashboard's only door to havmd: the REST API (/v1/...) with the session
// cookie set by POST /v1/login, and its event stream (SSE).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Fetch a JSON API path; a 401 (no or expired session) goes back to the login page.
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "unreachable", `havmd does not answer (${e.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { message: text } }; }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    if (resp.status === 401 && !path.startsWith("/v1/login")) toLogin();
    throw new ApiError(resp.status, err.code || "http-" + resp.status, err.message || resp.statusText);
  }
  return data;
}

export function toLogin() {
  const back = location.pathname + location.search;
  location.assign("/login" + (back && back !== "/" ? "?next=" + encodeURIComponent(back) : ""));
}

const ROLE_KEY = "havm.role";

// Who we are: the API's answer if it has one, else what login told us.
export async function whoami() {
  try {
    const me = await api("/v1/whoami");
    if (me && me.role) {
      sessionStorage.setItem(ROLE_KEY, me.role);
      return me;
    }
  } catch (e) {
    if (e.status === 401) throw e;
  }
  return { role: sessionStorage.getItem(ROLE_KEY) || "read" };
}

export async function login(token) {
  const res = await api("/v1/login", { method: "POST", body: { token } });
  sessionStorage.setItem(ROLE_KEY, (res && res.role) || "read");
  return res;
}

export async function logout() {
  sessionStorage.removeItem(ROLE_KEY);
  try { await api("/v1/logout", { method: "POST" }); } catch { /* the cookie expires anyway */ }
  location.assign("/login");
}

// The live stream: status documents and events pushed by havmd. Reconnects
// with exponential backoff (1 s .. 30 s); onState sees "live", "connecting" or
// "disconnected" (with the seconds until the next attempt). havmd sends a status
// every second: a stream silent for STALE_AFTER seconds (a frozen node, a
// network cut that reset nothing) is taken as lost too.
const STALE_AFTER = 10;
export class LiveStream {
  constructor({ onStatus, onEvent, onState }) {
    this.onStatus = onStatus;
    this.onEvent = onEvent;
    this.onState = onState;
    this.delay = 1;
    this.source = null;
    this.timer = null;
    this.lastMessage = 0;
    this.watchdog = null;
  }

  start() {
    this.onState("connecting");
    const src = new EventSource("/v1/events/stream", { withCredentials: true });
    this.source = src;
    const heard = () => { this.lastMessage = Date.now(); };
    src.onopen = () => { this.delay = 1; heard(); this.onState("live"); };
    src.addEventListener("status", (m) => { heard(); this.onStatus(JSON.parse(m.data)); });
    src.addEventListener("event", (m) => { heard(); this.onEvent(JSON.parse(m.data)); });
    src.onmessage = (m) => { heard(); this.dispatch(JSON.parse(m.data)); };
    src.onerror = () => this.lost();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (this.source === src && src.readyState === EventSource.OPEN && Date.now() - this.lastMessage > STALE_AFTER * 1000) {
        this.lost();
      }
    }, 1000);
  }

  dispatch(data) {
    if (data && data.schema !== undefined && data.nodes) this.onStatus(data);
    else if (data && data.kind) this.onEvent(data);
  }

  lost() {
    clearInterval(this.watchdog);
    if (this.source) this.source.close();
    this.source = null;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, 30);
    this.onState("disconnected", wait);
    clearTimeout(this.timer);
    // A session that expired shows as a stream error: check before retrying.
    this.timer = setTimeout(async () => {
      try { await api("/v1/status"); } catch (e) { if (e.status === 401) return; }
      this.start();
    }, wait * 1000);
  }
}
