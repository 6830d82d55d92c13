/* Annae: helpers shared by the chat, the console and the KB editor (plain JS, no build step). */
(function () {
  "use strict";

  const configEl = document.getElementById("annae-config");
  const config = configEl ? JSON.parse(configEl.textContent) : {};
  const strings = config.strings || { en: {}, ko: {} };
  let lang = config.lang || "en";

  /** The interface string `key` in the current language, with {name} placeholders filled. */
  function t(key, vars) {
    let s = (strings[lang] && strings[lang][key]) || (strings.en && strings.en[key]) || key;
    if (vars) {
      for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    }
    return s;
  }

  /** Fill every [data-i18n], [data-i18n-placeholder], [data-i18n-label], [data-i18n-title] under root. */
  function applyI18n(root) {
    const scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.dataset.i18n);
    });
    scope.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    });
    scope.querySelectorAll("[data-i18n-label]").forEach((el) => {
      el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    });
    scope.querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.title = t(el.dataset.i18nTitle);
    });
    document.documentElement.lang = lang;
  }

  /** Switch the interface language, remember it, and re-label the page. */
  function setLang(next) {
    if (!strings[next]) return;
    lang = next;
    try {
      localStorage.setItem("annae.lang", next);
    } catch (e) {
      /* storage may be blocked in third-party frames */
    }
    document.cookie = "annae_lang=" + next + "; path=/; max-age=31536000; SameSite=Lax";
    applyI18n();
    document.dispatchEvent(new CustomEvent("annae:lang", { detail: next }));
  }

  function getCookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
  }

  /** An error from the API: HTTP status plus the server's message. */
  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function errorMessage(body, status) {
    if (!body) return "HTTP " + status;
    const d = body.detail !== undefined ? body.detail : body.error !== undefined ? body.error : body.message;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((x) => x.msg || JSON.stringify(x)).join("; ");
    if (d && typeof d === "object") return d.message || JSON.stringify(d);
    return "HTTP " + status;
  }

  /**
   * Call the JSON API. `opts.token` sends a bearer token; otherwise the session cookie is used
   * and the CSRF cookie is echoed in X-CSRF-Token for unsafe methods.
   */
  async function api(method, path, body, opts) {
    const o = opts || {};
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (o.token) headers.Authorization = "Bearer " + o.token;
    if (!o.token && method !== "GET") {
      const csrf = getCookie(config.csrfCookie || "annae_csrf");
      if (csrf) headers["X-CSRF-Token"] = csrf;
    }
    let res;
    try {
      res = await fetch((config.base || "") + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (e) {
      throw new ApiError(0, "network", null);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = { detail: text };
    }
    if (!res.ok) throw new ApiError(res.status, errorMessage(data, res.status), data);
    return data;
  }

  /** ws:// or wss:// URL for an API path on this origin. */
  function wsUrl(path) {
    const base = new URL((config.base || "") + path, location.href);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    return base.toString();
  }

  /**
   * A WebSocket that reconnects with backoff. `onMessage(data)` gets parsed JSON;
   * `onState(open, code, retrying)` reports connectivity (not after close()). Returns {close(), send(obj)}.
   */
  function liveSocket(urlFn, onMessage, onState, shouldRetry) {
    let ws = null;
    let closed = false;
    let delay = 500;
    let timer = null;
    function connect() {
      if (closed) return;
      ws = new WebSocket(urlFn());
      ws.onopen = () => {
        delay = 500;
        if (onState) onState(true);
      };
      ws.onmessage = (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        onMessage(data);
      };
      ws.onclose = (ev) => {
        if (closed) return; // closed on purpose: nothing to report, nothing to retry
        const retry = !shouldRetry || shouldRetry(ev.code);
        if (onState) onState(false, ev.code, retry);
        if (!retry) return;
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
      ws.onerror = () => {
        /* onclose follows */
      };
    }
    connect();
    return {
      close() {
        closed = true;
        clearTimeout(timer);
        if (ws) ws.close();
      },
      send(obj) {
        if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
      },
    };
  }

  /** Small element builder: el("div", {class: "x", text: "hi"}, [children]). */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children || []) if (c) node.append(c);
    return node;
  }

  /** "45s", "3m 05s", "1h 02m" for a number of seconds. */
  function duration(seconds) {
    const u = lang === "ko" ? { s: "초", m: "분", h: "시간" } : { s: "s", m: "m", h: "h" };
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + u.s;
    const m = Math.floor(s / 60);
    if (m < 60) return m + u.m + " " + String(s % 60).padStart(2, "0") + u.s;
    return Math.floor(m / 60) + u.h + " " + String(m % 60).padStart(2, "0") + u.m;
  }

  /** Parse an ISO timestamp from the API (treating a missing zone as UTC). */
  function parseTime(value) {
    if (!value) return null;
    if (typeof value === "number") return new Date(value * (value < 1e12 ? 1000 : 1));
    const s = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z";
    const d = new Date(s);
    return isNaN(d) ? null : d;
  }

  function clock(value) {
    const d = parseTime(value);
    return d ? d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }) : "";
  }

  /** A styled yes/no question (never the browser's confirm box); resolves to true on "yes". */
  function confirmDialog(message) {
    let d = document.getElementById("confirm-dialog");
    if (!d) {
      d = document.createElement("dialog");
      d.id = "confirm-dialog";
      d.className = "modal";
      d.setAttribute("aria-labelledby", "confirm-title");
      d.innerHTML =
        '<form method="dialog" class="modal-form"><h2 id="confirm-title" data-i18n="confirm_title"></h2>' +
        '<p id="confirm-text"></p><div class="modal-actions">' +
        '<button class="btn" value="cancel" id="confirm-cancel" data-i18n="confirm_cancel"></button>' +
        '<button class="btn btn-primary" value="ok" id="confirm-ok" data-i18n="confirm_ok"></button></div></form>';
      document.body.appendChild(d);
    }
    applyI18n(d);
    d.querySelector("#confirm-text").textContent = message;
    d.returnValue = "";
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
      d.showModal();
    });
  }

  window.Annae = {
    config,
    confirmDialog,
    t,
    applyI18n,
    setLang,
    get lang() {
      return lang;
    },
    api,
    ApiError,
    wsUrl,
    liveSocket,
    el,
    duration,
    parseTime,
    clock,
    getCookie,
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-lang-toggle]").forEach((btn) => {
      btn.addEventListener("click", () => setLang(lang === "ko" ? "en" : "ko"));
    });
  });
})();
