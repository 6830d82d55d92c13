/*
 * Annae chat widget. Put this on any page:
 *   <script src="https://support.example.com/widget.js"
 *           data-annae-url="https://support.example.com" data-lang="ko"></script>
 * It adds a floating chat button; the chat itself runs in an iframe served by Annae
 * (/chat?embed=1), so the shop page needs no CORS set-up and its CSS cannot clash with ours.
 * Optional attributes: data-lang="ko|en" (default: the browser's language),
 * data-position="right|left", data-color="#2457d6", data-open="true".
 * Signed identity (docs/ui.md): data-customer-id="<the shop's id>" and
 * data-signature="<hex HMAC-SHA256(widget secret, customer id)>" computed on the shop's server,
 * optionally data-name and data-email for the agent. They travel in the iframe URL's fragment,
 * which browsers never send to a server; without a valid signature the chat stays anonymous.
 */
(function () {
  "use strict";
  if (window.AnnaeWidget) return;

  const script =
    document.currentScript ||
    Array.from(document.getElementsByTagName("script")).find((s) => /\/widget\.js(\?|$)/.test(s.src));
  const ds = (script && script.dataset) || {};
  const base = (ds.annaeUrl || (script ? new URL(script.src, location.href).origin : location.origin)).replace(/\/+$/, "");
  const origin = new URL(base, location.href).origin;
  const browserLang = (navigator.language || "en").toLowerCase();
  const lang = ds.lang === "ko" || ds.lang === "en" ? ds.lang : browserLang.startsWith("ko") ? "ko" : "en";
  const side = ds.position === "left" ? "left" : "right";
  const color = /^#[0-9a-fA-F]{3,8}$/.test(ds.color || "") ? ds.color : "#2457d6";
  const identity = new URLSearchParams();
  if (ds.customerId && ds.signature) {
    identity.set("customer_id", ds.customerId);
    identity.set("signature", ds.signature);
    if (ds.name) identity.set("name", ds.name);
    if (ds.email) identity.set("email", ds.email);
  }
  const LABELS = {
    en: { open: "Chat with us", close: "Close chat", title: "Customer support chat", unread: "new message" },
    ko: { open: "채팅 상담", close: "채팅 닫기", title: "고객센터 채팅", unread: "새 메시지" },
  }[lang];

  const host = document.createElement("div");
  host.id = "annae-widget";
  const root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    ".btn{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483646;width:60px;height:60px;border-radius:50%;" +
    "border:0;background:" + color + ";color:#fff;cursor:pointer;box-shadow:0 6px 20px rgba(16,24,40,.25);" +
    "display:flex;align-items:center;justify-content:center;transition:transform .15s}" +
    ".btn:hover{transform:scale(1.05)}.btn:focus-visible{outline:3px solid rgba(36,87,214,.45);outline-offset:3px}" +
    ".btn svg{width:28px;height:28px}.btn .i-close,.btn[aria-expanded=true] .i-open{display:none}" +
    ".btn[aria-expanded=true] .i-close{display:block}" +
    ".badge{position:absolute;top:2px;right:2px;min-width:18px;height:18px;border-radius:9px;background:#d92d20;" +
    "color:#fff;font:700 11px/18px system-ui,sans-serif;text-align:center;padding:0 5px;display:none}" +
    ".badge.on{display:block}" +
    ".panel{position:fixed;bottom:92px;" + side + ":20px;z-index:2147483647;width:380px;height:600px;" +
    "max-height:calc(100vh - 112px);border-radius:16px;overflow:hidden;background:#fff;" +
    "box-shadow:0 12px 40px rgba(16,24,40,.28);display:none}" +
    ".panel.open{display:block}" +
    ".panel iframe{width:100%;height:100%;border:0;display:block}" +
    "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0}" +
    ".panel.open+.btn,.btn.hide{display:none}}" +
    "</style>" +
    '<div class="panel" role="dialog" aria-modal="false"></div>' +
    '<button class="btn" type="button" aria-expanded="false">' +
    '<svg class="i-open" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
    'stroke-linejoin="round" aria-hidden="true"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/></svg>' +
    '<svg class="i-close" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" ' +
    'aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>' +
    '<span class="badge" aria-hidden="true"></span></button>';

  const panel = root.querySelector(".panel");
  const button = root.querySelector(".btn");
  const badge = root.querySelector(".badge");
  panel.setAttribute("aria-label", LABELS.title);
  button.setAttribute("aria-label", LABELS.open);
  let frame = null;
  let loaded = false;
  let isOpen = false;
  let unread = 0;

  function ensureFrame() {
    if (frame) return;
    frame = document.createElement("iframe");
    frame.title = LABELS.title;
    frame.src = base + "/chat?embed=1&lang=" + lang + (identity.toString() ? "#" + identity.toString() : "");
    frame.setAttribute("allow", "clipboard-write");
    frame.addEventListener("load", () => {
      loaded = true;
      if (isOpen) focusFrame();
    });
    panel.append(frame);
  }

  function setUnread(n) {
    unread = n;
    badge.textContent = n > 9 ? "9+" : String(n);
    badge.classList.toggle("on", n > 0);
    button.setAttribute("aria-label", n > 0 ? LABELS.open + " (" + n + " " + LABELS.unread + ")" : LABELS.open);
  }

  function open() {
    ensureFrame();
    isOpen = true;
    panel.classList.add("open");
    button.setAttribute("aria-expanded", "true");
    button.setAttribute("aria-label", LABELS.close);
    button.classList.add("hide");
    setUnread(0);
    try {
      sessionStorage.setItem("annae.widget.open", "1");
    } catch (e) {
      /* ignore */
    }
    if (loaded) focusFrame();
  }

  function focusFrame() {
    frame.contentWindow.postMessage({ annae: "focus" }, origin);
  }

  function close() {
    isOpen = false;
    panel.classList.remove("open");
    button.setAttribute("aria-expanded", "false");
    button.classList.remove("hide");
    setUnread(unread);
    try {
      sessionStorage.removeItem("annae.widget.open");
    } catch (e) {
      /* ignore */
    }
    button.focus();
  }

  button.addEventListener("click", () => (isOpen ? close() : open()));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isOpen) close();
  });
  window.addEventListener("message", (e) => {
    if (e.origin !== origin || !e.data || typeof e.data.annae !== "string") return;
    if (e.data.annae === "close") close();
    else if (e.data.annae === "message" && !isOpen) setUnread(unread + 1);
  });

  function mount() {
    document.body.append(host);
    let reopen = ds.open === "true";
    try {
      reopen = reopen || sessionStorage.getItem("annae.widget.open") === "1";
    } catch (e) {
      /* ignore */
    }
    if (reopen) open();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.AnnaeWidget = { open, close, toggle: () => (isOpen ? close() : open()) };
})();
