/* The customer chat: /chat and the widget's iframe (/chat?embed=1). See docs/api.md. */
(function () {
  "use strict";
  const A = window.Annae;
  const { t, el, api } = A;
  const STORE = "annae.conversation";
  const API = "/api/v1/conversations";

  const log = document.getElementById("chat-log");
  const form = document.getElementById("composer");
  const input = document.getElementById("chat-input");
  const sendBtn = document.getElementById("chat-send");
  const humanBtn = document.getElementById("chat-human");
  const statusBar = document.getElementById("chat-status");
  const errorBox = document.getElementById("chat-error");
  const connLabel = document.getElementById("chat-conn");
  const embedded = !!A.config.embed;
  const identity = readIdentity();

  /** Conversation state: id/token (kept in sessionStorage so a reload continues), messages by id. */
  const state = {
    conv: loadConversation(),
    chatState: "bot",
    items: [], // {key, msg, node}
    byId: new Map(),
    pending: [], // optimistic customer bubbles waiting for their stored id
    sending: false,
    idle: null, // a promise settled when the turn on its way ends (a next message waits for it)
    socket: null,
    lastId: 0,
    queuedShown: false,
  };

  /** The shop's signed identity from the URL fragment (the widget puts it there; never sent to
   * a server in the URL): {customer_id, signature, name?, email?} or null. */
  function readIdentity() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (!p.get("customer_id") || !p.get("signature")) return null;
    const out = { customer_id: p.get("customer_id"), signature: p.get("signature") };
    if (p.get("name")) out.name = p.get("name");
    if (p.get("email")) out.email = p.get("email");
    return out;
  }

  function loadConversation() {
    try {
      const raw = sessionStorage.getItem(STORE);
      const conv = raw ? JSON.parse(raw) : null;
      // a conversation started for another visitor (logged in or out since) is not continued
      const who = identity ? identity.customer_id : "";
      if (conv && (conv.who || "") !== who) return null;
      return conv && conv.id && conv.token ? conv : null;
    } catch (e) {
      return null;
    }
  }

  function saveConversation(conv) {
    state.conv = conv;
    try {
      if (conv) sessionStorage.setItem(STORE, JSON.stringify(conv));
      else sessionStorage.removeItem(STORE);
    } catch (e) {
      /* private mode: the conversation lasts until reload */
    }
  }

  function notifyParent(kind, extra) {
    if (embedded && window.parent !== window) {
      window.parent.postMessage(Object.assign({ annae: kind }, extra || {}), "*");
    }
  }

  // ---- rendering -------------------------------------------------------------------------

  function whoLabel(sender, msg) {
    if (sender === "customer") return t("chat_you");
    if (sender === "agent") return msg.author ? t("chat_agent") + " · " + msg.author : t("chat_agent");
    return t("chat_bot");
  }

  const SYSTEM_TEXT = {
    assigned: "chat_agent_joined",
    resolved: "chat_resolved",
    handback: "chat_handback",
    transferred: "chat_transferred",
  };

  function renderItem(msg) {
    const sender = msg.sender;
    if (sender === "system") {
      const key = SYSTEM_TEXT[msg.text];
      if (!key && msg.text === "reopened") return null;
      const cls = msg.text === "assigned" ? "sys joined" : "sys";
      return el("div", { class: cls, text: key ? t(key) : msg.text });
    }
    if (msg.type === "handoff") {
      // outside business hours the server's text says when people are back
      const closed = Array.isArray(msg.options) && msg.options.some((o) => o && o.closed);
      return el("div", { class: "sys handoff" + (closed ? " closed" : ""), text: closed ? msg.text : t("chat_connecting") });
    }
    if (msg.type === "csat") return renderCsat(msg);
    if (msg.type === "queued") {
      return el("div", { class: "sys", text: t("chat_queued") });
    }
    const bubble = el("div", { class: "bubble", text: msg.text || "" });
    const node = el("div", { class: "msg " + (sender || "bot") }, [
      el("span", { class: "who", text: whoLabel(sender, msg) }),
      bubble,
    ]);
    if (sender === "bot" && msg.type === "answer" && msg.id !== null && msg.id !== undefined) {
      node.append(renderRating(msg));
    }
    if (msg.type === "clarify" && Array.isArray(msg.options) && msg.options.length) {
      const latest = msg === latestClarify();
      const opts = el("div", { class: "options", role: "group", "aria-label": t("chat_clarify") });
      for (const opt of msg.options) {
        const chosen = msg.chosen === opt.entry_id;
        opts.append(
          el("button", {
            type: "button",
            class: "chip" + (chosen ? " chosen" : ""),
            text: opt.question || opt.text || String(opt.entry_id),
            disabled: !latest || msg.chosen !== undefined || state.sending,
            "aria-pressed": chosen ? "true" : undefined,
            dataset: { entryId: String(opt.entry_id) },
            onclick: () => choose(msg, opt),
          })
        );
      }
      node.append(opts);
    }
    if (msg.type === "out_of_scope" && sender === "bot") {
      // out of scope: the bot says what it can help with; a person is one click away
      node.classList.add("out-of-scope");
      node.append(
        el("div", { class: "oos-actions" }, [
          el("button", {
            type: "button",
            class: "btn btn-small oos-human",
            text: t("chat_talk_to_human"),
            "data-i18n": "chat_talk_to_human",
            onclick: () => askForHuman(), // ignored while a message is being sent
          }),
        ])
      );
    }
    const cards = msg.type === "products" ? msg.options : msg.cards;
    if (Array.isArray(cards) && cards.length) node.append(renderCards(msg, cards.slice(0, 3)));
    return node;
  }

  // ---- rating an answer (👍 / 👎, once; see docs/learning.md) ------------------------------

  const RATINGS = [
    { helpful: true, cls: "helpful", icon: "👍", label: "chat_helpful" },
    { helpful: false, cls: "not-helpful", icon: "👎", label: "chat_not_helpful" },
  ];

  function renderRating(msg) {
    // msg.rated: undefined (not rated), true/false (the choice); msg.rating: "sending" | "done"
    const rated = msg.rated !== undefined;
    const box = el("div", { class: "rating", role: "group", "aria-label": t("chat_rate") });
    for (const r of RATINGS) {
      const chosen = rated && msg.rated === r.helpful;
      box.append(
        el("button", {
          type: "button",
          class: "rate " + r.cls + (chosen ? " chosen" : ""),
          "aria-label": t(r.label),
          title: t(r.label),
          "aria-pressed": chosen ? "true" : "false",
          disabled: rated,
          dataset: { helpful: String(r.helpful) },
          onclick: () => rate(msg, r.helpful),
        }, [el("span", { "aria-hidden": "true", text: r.icon })])
      );
    }
    if (msg.rating === "done") {
      box.append(el("span", { class: "rate-thanks", role: "status", text: t("chat_rate_thanks") }));
    }
    return box;
  }

  async function rate(msg, helpful) {
    const conv = state.conv;
    if (!conv || msg.rated !== undefined) return;
    showError(null);
    msg.rated = helpful;
    msg.rating = "sending";
    rerenderItem(msg);
    try {
      const path = API + "/" + conv.id + "/messages/" + encodeURIComponent(msg.id) + "/rating";
      await api("POST", path, { helpful }, { token: conv.token });
      msg.rating = "done";
    } catch (err) {
      delete msg.rated; // let the customer try again
      delete msg.rating;
      const key = errorKey(err);
      showError(key === "chat_error" || key === "chat_error_too_long" ? "chat_rate_error" : key);
    }
    rerenderItem(msg);
  }

  // ---- satisfaction after a resolve (CSAT: 1-5 and a comment; see docs/api.md) -------------

  function renderCsat(msg) {
    const box = el("form", { class: "csat", "aria-label": msg.text || "" });
    box.append(el("p", { class: "bubble", text: msg.text || "" }));
    if (msg.csat === "done") {
      box.append(el("p", { class: "rate-thanks", role: "status", text: t("chat_csat_thanks") }));
      return box;
    }
    const scores = el("div", { class: "csat-scores", role: "radiogroup" });
    for (let n = 1; n <= 5; n++) {
      scores.append(
        el("button", {
          type: "button",
          class: "chip" + (msg.score === n ? " chosen" : ""),
          text: String(n),
          "aria-label": t("chat_csat_score", { n }),
          "aria-pressed": msg.score === n ? "true" : "false",
          dataset: { score: String(n) },
          disabled: msg.csat === "sending",
          onclick: () => {
            msg.score = n;
            rerenderItem(msg);
          },
        })
      );
    }
    const comment = el("textarea", { class: "field", rows: "2", maxlength: "2000", placeholder: t("chat_csat_comment"), "aria-label": t("chat_csat_comment") });
    comment.value = msg.comment || "";
    comment.addEventListener("input", () => (msg.comment = comment.value));
    const send = el("button", { type: "submit", class: "btn btn-primary btn-small", text: t("chat_csat_send"), disabled: !msg.score || msg.csat === "sending" });
    box.append(scores, comment, send);
    box.addEventListener("submit", (e) => {
      e.preventDefault();
      sendCsat(msg);
    });
    return box;
  }

  async function sendCsat(msg) {
    const conv = state.conv;
    if (!conv || !msg.score) return;
    showError(null);
    msg.csat = "sending";
    rerenderItem(msg);
    try {
      const body = { score: msg.score };
      if ((msg.comment || "").trim()) body.comment = msg.comment.trim();
      await api("POST", API + "/" + conv.id + "/csat", body, { token: conv.token });
      msg.csat = "done";
    } catch (err) {
      if (err.status === 409) msg.csat = "done"; // rated already (another tab)
      else {
        delete msg.csat;
        showError("chat_csat_error");
      }
    }
    rerenderItem(msg);
  }

  // ---- product cards (after an answer about a linked entry, or an agent's suggestion) -----

  function price(value) {
    if (value === null || value === undefined) return "";
    return new Intl.NumberFormat(A.lang === "ko" ? "ko-KR" : "en-US", {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(value);
  }

  function renderCards(msg, cards) {
    msg.clicked = msg.clicked || {};
    const list = el("div", { class: "products", role: "list", "aria-label": t("chat_products") });
    for (const c of cards) {
      const clicked = msg.clicked[c.product_id] === "done";
      list.append(
        el("button", {
          type: "button",
          role: "listitem",
          class: "product" + (clicked ? " clicked" : ""),
          dataset: { productId: String(c.product_id), kind: c.kind || "personal" },
          onclick: () => clickCard(msg, c),
        }, [
          el("span", { class: "product-name", text: c.name || String(c.product_id) }),
          el("span", { class: "product-price", text: price(c.price) }),
          el("span", { class: "product-reason", text: clicked ? t("chat_product_thanks") : c.reason || "" }),
        ])
      );
    }
    return list;
  }

  async function clickCard(msg, card) {
    const conv = state.conv;
    if (!conv || msg.clicked[card.product_id]) return;
    msg.clicked[card.product_id] = "sending";
    try {
      const path = API + "/" + conv.id + "/products/" + encodeURIComponent(card.product_id) + "/click";
      await api("POST", path, undefined, { token: conv.token });
      msg.clicked[card.product_id] = "done";
    } catch (err) {
      delete msg.clicked[card.product_id]; // a lost click is not worth an error message
    }
    rerenderItem(msg);
  }

  /** After an answer about an entry: ask for its one row of product cards (personal with
   * marketing consent, else general; empty when the entry has no linked products). */
  async function loadCards(msg) {
    const conv = state.conv;
    if (!conv || !msg.entry_id) return;
    try {
      const path = API + "/" + conv.id + "/products?entry_id=" + encodeURIComponent(msg.entry_id);
      const data = await api("GET", path, undefined, { token: conv.token });
      if (data.items && data.items.length) {
        msg.cards = data.items;
        rerenderItem(msg);
        scrollDown();
      }
    } catch (err) {
      /* cards are optional */
    }
  }

  function latestClarify() {
    for (let i = state.items.length - 1; i >= 0; i--) {
      const m = state.items[i].msg;
      if (m.sender === "customer") return null;
      if (m.type === "clarify") return m;
    }
    return null;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function append(msg) {
    const node = renderItem(msg);
    const item = { msg, node };
    state.items.push(item);
    if (node) log.insertBefore(node, typingNode.isConnected ? typingNode : null);
    refreshClarifyButtons();
    scrollDown();
    return item;
  }

  function rerenderAll() {
    for (const item of state.items) {
      const node = renderItem(item.msg);
      if (item.node && node) item.node.replaceWith(node);
      else if (node) log.insertBefore(node, typingNode.isConnected ? typingNode : null);
      else if (item.node) item.node.remove();
      item.node = node;
    }
    showState(state.chatState);
  }

  function refreshClarifyButtons() {
    const latest = latestClarify();
    log.querySelectorAll(".options .chip").forEach((b) => {
      const item = state.items.find((i) => i.node && i.node.contains(b));
      const m = item && item.msg;
      b.disabled = !m || m !== latest || m.chosen !== undefined || state.sending;
    });
  }

  /** Add a stored message (from a POST reply, the transcript or the WebSocket) unless already shown. */
  function addStored(msg) {
    if (msg.id !== null && msg.id !== undefined) {
      if (state.byId.has(msg.id)) return;
      state.lastId = Math.max(state.lastId, msg.id);
    }
    if (msg.sender === "customer") {
      const idx = state.pending.findIndex(
        (p) =>
          p.msg.type === msg.type &&
          (p.msg.text === msg.text || (msg.entry_id != null && p.msg.entry_id === msg.entry_id))
      );
      if (idx >= 0) {
        const item = state.pending.splice(idx, 1)[0];
        item.msg.id = msg.id;
        state.byId.set(msg.id, item);
        return;
      }
      if (msg.type === "choice") {
        // a choice made on another tab: mark it on the latest clarify
        const c = latestClarify();
        if (c) {
          const opt = (c.options || []).find((o) => o.entry_id === msg.entry_id);
          if (opt) c.chosen = opt.entry_id;
        }
      }
    }
    if (msg.sender === "agent" || msg.sender === "bot") notifyParent("message", { sender: msg.sender });
    const item = append(msg);
    if (msg.id !== null && msg.id !== undefined) state.byId.set(msg.id, item);
  }

  // typing indicator ("…" while the bot thinks)
  const typingNode = el("div", { class: "typing", "aria-label": t("chat_typing"), role: "status" }, [
    el("span", { class: "dots", "aria-hidden": "true" }, [el("i"), el("i"), el("i")]),
  ]);

  let settleIdle = null;
  function setSending(on) {
    state.sending = on;
    if (on && !settleIdle) state.idle = new Promise((resolve) => (settleIdle = resolve));
    if (!on && settleIdle) {
      settleIdle();
      settleIdle = null;
    }
    sendBtn.disabled = on;
    humanBtn.disabled = on;
    input.setAttribute("aria-busy", on ? "true" : "false");
    if (on) {
      typingNode.setAttribute("aria-label", t("chat_typing"));
      log.append(typingNode);
      scrollDown();
    } else {
      typingNode.remove();
    }
    refreshClarifyButtons();
  }

  function showError(key) {
    if (!key) {
      errorBox.hidden = true;
      errorBox.textContent = "";
      return;
    }
    errorBox.textContent = t(key);
    errorBox.hidden = false;
  }

  function showState(s, reason) {
    state.chatState = s || "bot";
    document.body.dataset.state = state.chatState;
    statusBar.classList.toggle("agent", state.chatState === "agent");
    if (state.chatState === "waiting") {
      statusBar.textContent = t("chat_connecting");
      statusBar.hidden = false;
    } else if (state.chatState === "agent") {
      statusBar.textContent = t("chat_agent_joined");
      statusBar.hidden = false;
    } else {
      statusBar.hidden = true;
      state.queuedShown = false;
    }
    humanBtn.hidden = state.chatState === "waiting" || state.chatState === "agent";
    if (reason !== undefined) document.body.dataset.reason = reason || "";
  }

  // ---- talking to the API ----------------------------------------------------------------

  async function ensureConversation() {
    if (state.conv) return state.conv;
    const created = await api("POST", API, Object.assign({ language: A.lang }, identity || {}));
    saveConversation({ id: created.id, token: created.token, who: identity ? identity.customer_id : "" });
    showState(created.state || "bot");
    openSocket();
    return state.conv;
  }

  function errorKey(err) {
    if (err.status === 0) return "chat_error_offline";
    if (err.status === 429) return "chat_error_busy";
    if (err.status === 413) return "chat_error_too_long";
    if (err.status === 422 && /long|4000|length/i.test(err.message)) return "chat_error_too_long";
    return "chat_error";
  }

  /** POST one body ({text} | {choice} | {handoff}) and show the reply; retries once on a lost conversation. */
  async function post(body, retried) {
    const conv = await ensureConversation();
    try {
      return await api("POST", API + "/" + conv.id + "/messages", body, { token: conv.token });
    } catch (err) {
      if (!retried && [401, 403, 404].includes(err.status)) {
        forgetConversation();
        return post(body, true);
      }
      throw err;
    }
  }

  function handleReply(reply, pendingItem) {
    if (pendingItem && reply.message_id !== null && reply.message_id !== undefined) {
      const i = state.pending.indexOf(pendingItem);
      if (i >= 0) state.pending.splice(i, 1);
      if (!state.byId.has(reply.message_id)) {
        pendingItem.msg.id = reply.message_id;
        state.byId.set(reply.message_id, pendingItem);
        state.lastId = Math.max(state.lastId, reply.message_id);
      }
    }
    if (reply.type === "queued") {
      // the bot stays silent while a person handles the conversation; say so once while waiting
      if (!state.queuedShown && reply.state !== "agent") {
        append({ sender: "notice", type: "queued" });
        state.queuedShown = true;
      }
    } else {
      addStored({
        id: reply.id,
        sender: "bot",
        type: reply.type,
        text: reply.text,
        entry_id: reply.entry_id,
        confidence: reply.confidence,
        options: reply.options,
        created_at: reply.created_at,
      });
      const shown = reply.id !== null && reply.id !== undefined ? state.byId.get(reply.id) : null;
      if (reply.type === "answer" && reply.entry_id && shown) loadCards(shown.msg);
    }
    if (reply.state) showState(reply.state, reply.reason);
  }

  async function send(text) {
    const clean = text.trim();
    if (!clean) return;
    showError(null);
    const item = append({ sender: "customer", type: "text", text: clean });
    state.pending.push(item);
    input.value = "";
    autosize();
    // a message written while the last turn (or the hand-off) is on its way follows it: the
    // state event can show "Connecting you…" before that turn's reply has come back
    while (state.sending) await state.idle;
    setSending(true);
    try {
      handleReply(await post({ text: clean }), item);
    } catch (err) {
      if (item.node) item.node.classList.add("failed");
      removePending(item);
      input.value = clean;
      autosize();
      showError(errorKey(err));
    } finally {
      setSending(false);
      input.focus();
    }
  }

  function removePending(item) {
    const i = state.pending.indexOf(item);
    if (i >= 0) state.pending.splice(i, 1);
    const j = state.items.indexOf(item);
    if (j >= 0) state.items.splice(j, 1);
    if (item.node) item.node.remove();
  }

  async function choose(clarifyMsg, opt) {
    if (state.sending || clarifyMsg.chosen !== undefined) return;
    showError(null);
    clarifyMsg.chosen = opt.entry_id;
    const item = append({ sender: "customer", type: "choice", text: opt.question, entry_id: opt.entry_id });
    state.pending.push(item);
    rerenderItem(clarifyMsg);
    setSending(true);
    try {
      handleReply(await post({ choice: opt.entry_id }), item);
    } catch (err) {
      delete clarifyMsg.chosen;
      removePending(item);
      rerenderItem(clarifyMsg);
      showError(errorKey(err));
    } finally {
      setSending(false);
    }
  }

  function rerenderItem(msg) {
    const item = state.items.find((i) => i.msg === msg);
    if (!item || !item.node) return;
    const node = renderItem(msg);
    item.node.replaceWith(node);
    item.node = node;
    refreshClarifyButtons();
  }

  async function askForHuman() {
    if (state.sending) return;
    showError(null);
    setSending(true);
    try {
      handleReply(await post({ handoff: true }), null);
    } catch (err) {
      showError(errorKey(err));
    } finally {
      setSending(false);
    }
  }

  // ---- live updates ----------------------------------------------------------------------

  function openSocket() {
    if (state.socket || !state.conv || !("WebSocket" in window)) return;
    const conv = state.conv;
    let opened = false;
    const socket = A.liveSocket(
      () => A.wsUrl(API + "/" + conv.id + "/ws?token=" + encodeURIComponent(conv.token)),
      onEvent,
      (open, code, retrying) => {
        if (state.socket !== socket) return; // an old conversation's socket
        // "Reconnecting…" only while a reconnect is really pending; cleared once connected
        connLabel.textContent = open || !retrying ? "" : t("chat_reconnecting");
        connLabel.dataset.reconnecting = open || !retrying ? "" : "1";
        if (open && opened) sync(); // catch up on anything missed while disconnected
        if (open) opened = true;
        if (!open && [4401, 4403, 4404].includes(code)) {
          connLabel.textContent = "";
          forgetConversation();
        }
      },
      (code) => ![4401, 4403, 4404, 1008].includes(code)
    );
    state.socket = socket;
  }

  function onEvent(ev) {
    if (ev.event === "message" && ev.message) {
      addStored(ev.message);
    } else if (ev.event === "state" || ev.event === "hello") {
      showState(ev.state, ev.reason);
    } else if (ev.event === "resync") {
      // the server may have missed events (its event bus reconnected): refetch from the last id
      // it delivered while whole (later ones we saw may have gaps before them)
      sync(ev.after).catch(() => {});
    }
  }

  async function sync(after) {
    const conv = state.conv;
    if (!conv) return;
    const from = typeof after === "number" ? Math.min(after, state.lastId || 0) : state.lastId;
    const q = from ? "?after=" + from : "";
    const data = await api("GET", API + "/" + conv.id + "/messages" + q, undefined, { token: conv.token });
    for (const m of data.messages || []) {
      if (m.sender === "customer" && m.type === "choice") markChoice(m);
      addStored(m);
    }
    showState(data.state, data.reason);
  }

  function markChoice(m) {
    // in a restored transcript, the clarify before this choice was answered
    for (let i = state.items.length - 1; i >= 0; i--) {
      const prev = state.items[i].msg;
      if (prev.type === "clarify") {
        if (prev.chosen === undefined) {
          prev.chosen = m.entry_id;
          rerenderItem(prev);
        }
        return;
      }
    }
  }

  function forgetConversation() {
    if (state.socket) state.socket.close();
    state.socket = null;
    saveConversation(null);
  }

  function newConversation() {
    forgetConversation();
    state.items.forEach((i) => i.node && i.node.remove());
    state.items = [];
    state.byId.clear();
    state.pending = [];
    state.lastId = 0;
    showError(null);
    showState("bot");
    input.focus();
  }

  // ---- wiring ----------------------------------------------------------------------------

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send(input.value);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send(input.value);
    }
  });
  input.addEventListener("input", autosize);
  input.disabled = false; // the page serves them disabled until this script listens
  sendBtn.disabled = false;
  humanBtn.addEventListener("click", askForHuman);
  document.querySelectorAll("[data-new-chat]").forEach((b) => b.addEventListener("click", newConversation));
  document.querySelectorAll("[data-close-chat]").forEach((b) =>
    b.addEventListener("click", () => notifyParent("close"))
  );
  document.addEventListener("annae:lang", () => {
    rerenderAll();
    if (connLabel.dataset.reconnecting) connLabel.textContent = t("chat_reconnecting");
  });
  window.addEventListener("message", (e) => {
    if (e.data && e.data.annae === "focus") input.focus();
  });

  async function start() {
    if (state.conv) {
      try {
        await sync();
        openSocket();
      } catch (err) {
        if ([401, 403, 404].includes(err.status)) forgetConversation();
        else showError(errorKey(err));
      }
    }
    document.body.dataset.ready = "1";
  }
  start();
})();
