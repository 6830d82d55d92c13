/* The agent console: live queue, conversation view, suggestions, replies. See docs/api.md. */
(function () {
  "use strict";
  const A = window.Annae;
  const { t, el, api } = A;
  const me = (A.config.user && A.config.user.username) || "";
  const $ = (id) => document.getElementById(id);

  const ui = {
    live: $("live"),
    liveText: $("live-text"),
    notifyBtn: $("notify-btn"),
    queueList: $("queue-list"),
    queueCount: $("queue-count"),
    queueEmpty: $("queue-empty"),
    mineList: $("mine-list"),
    mineCount: $("mine-count"),
    mineEmpty: $("mine-empty"),
    placeholder: $("conv-placeholder"),
    conv: $("conv"),
    title: $("conv-title"),
    meta: $("conv-meta"),
    error: $("conv-error"),
    transcript: $("transcript"),
    suggList: $("sugg-list"),
    suggEmpty: $("sugg-empty"),
    previous: $("previous"),
    previousList: $("previous-list"),
    assign: $("btn-assign"),
    handback: $("btn-handback"),
    resolve: $("btn-resolve"),
    suggestProducts: $("btn-suggest-products"),
    replyForm: $("reply-form"),
    reply: $("reply-input"),
    send: $("reply-send"),
  };

  const state = {
    queue: [],
    mine: [],
    current: null, // the open conversation (API object)
    shown: new Set(), // message ids in the transcript
    unread: new Set(),
    since: new Map(), // conversation id -> ms timestamp it started waiting (client clock)
    knownWaiting: null, // ids seen in the queue (to spot new hand-offs when polling)
    busy: false,
  };
  const baseTitle = document.title;

  // ---- helpers -----------------------------------------------------------------------------

  const shortId = (id) => "#" + String(id).slice(0, 6);
  const reasonText = (r) => (r ? t("reason_" + r) : t("reason_none"));
  const reasonLabel = (r) => {
    const s = reasonText(r);
    return s === "reason_" + r ? r : s;
  };
  const stateTagClass = { waiting: "tag tag-warn", agent: "tag tag-ok", resolved: "tag", bot: "tag" };
  const previewOf = (m) => (m == null ? "" : typeof m === "string" ? m : m.text || "");

  function rememberSince(item) {
    if (item.waiting_seconds !== undefined && item.waiting_seconds !== null) {
      state.since.set(item.id, Date.now() - item.waiting_seconds * 1000);
    } else if (item.waiting_since) {
      const d = A.parseTime(item.waiting_since);
      if (d) state.since.set(item.id, d.getTime());
    }
  }

  function waitLabel(id) {
    const since = state.since.get(id);
    return since ? A.duration((Date.now() - since) / 1000) : "";
  }

  function tickWaiting() {
    document.querySelectorAll("[data-wait-for]").forEach((node) => {
      const label = waitLabel(node.dataset.waitFor);
      node.textContent = label ? t("console_waiting_for") + " " + label : "";
    });
  }

  function showError(message) {
    ui.error.hidden = !message;
    ui.error.textContent = message || "";
  }

  // ---- notifications -----------------------------------------------------------------------

  let audio = null;
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
  }
  document.addEventListener("pointerdown", unlockAudio, { once: false, passive: true });
  document.addEventListener("keydown", unlockAudio, { passive: true });

  /** Two short tones (Web Audio; silent until the page has had a click or key press). */
  function beep() {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    [880, 660].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.18);
      osc.stop(now + i * 0.18 + 0.17);
    });
  }

  function notifyHandoff(convId, reason) {
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        const n = new Notification(t("console_new_handoff"), {
          body: shortId(convId) + " · " + reasonLabel(reason),
          tag: "annae-" + convId,
        });
        n.onclick = () => {
          window.focus();
          select(convId);
          n.close();
        };
        document.body.dataset.notified = String(Number(document.body.dataset.notified || 0) + 1);
      } catch (e) {
        /* some browsers only allow notifications from a service worker: the beep and badge remain */
      }
    }
  }

  function setupNotifyButton() {
    if (!("Notification" in window) || Notification.permission !== "default") {
      ui.notifyBtn.hidden = true;
      return;
    }
    ui.notifyBtn.hidden = false;
    ui.notifyBtn.onclick = async () => {
      unlockAudio();
      try {
        await Notification.requestPermission();
      } finally {
        setupNotifyButton();
      }
    };
  }

  function updateTitle() {
    const n = state.queue.length;
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
    ui.queueCount.textContent = String(n);
    ui.queueCount.classList.toggle("hot", n > 0);
  }

  // ---- lists ---------------------------------------------------------------------------------

  function convButton(item, withWait) {
    const current = state.current && state.current.id === item.id;
    const tags = el("div", { class: "tags" }, [
      item.reason ? el("span", { class: "tag tag-warn", text: reasonLabel(item.reason) }) : null,
      item.language ? el("span", { class: "tag", text: item.language }) : null,
      item.customer_id ? el("span", { class: "tag", text: item.customer_id }) : null,
      item.verified ? el("span", { class: "tag tag-ok", text: "✓ " + t("console_verified") }) : null,
      item.team ? el("span", { class: "tag tag-team", text: item.team }) : null,
    ]);
    return el("li", {}, [
      el(
        "button",
        {
          type: "button",
          class: "conv-item" + (state.unread.has(item.id) ? " unread" : ""),
          "aria-current": current ? "true" : "false",
          dataset: { convId: item.id },
          onclick: () => select(item.id),
        },
        [
          el("div", { class: "row" }, [
            el("span", { class: "cid", text: shortId(item.id) }),
            withWait ? el("span", { class: "wait", dataset: { waitFor: item.id } }) : null,
          ]),
          el("div", { class: "preview", text: previewOf(item.last_message) }),
          tags,
        ]
      ),
    ]);
  }

  function renderLists() {
    ui.queueList.replaceChildren(...state.queue.map((q) => convButton(q, true)));
    ui.queueEmpty.hidden = state.queue.length > 0;
    ui.mineList.replaceChildren(...state.mine.map((c) => convButton(c, false)));
    ui.mineEmpty.hidden = state.mine.length > 0;
    ui.mineCount.textContent = String(state.mine.length);
    updateTitle();
    tickWaiting();
  }

  async function refreshLists() {
    const [queue, mine] = await Promise.all([
      api("GET", "/api/v1/queue"),
      api("GET", "/api/v1/conversations?state=agent&mine=true&limit=50"),
    ]);
    state.queue = queue.queue || [];
    state.queue.forEach(rememberSince);
    state.mine = mine.conversations || [];
    // when polling without a socket, a queue entry we have not seen before is a new hand-off
    const ids = new Set(state.queue.map((q) => q.id));
    if (state.knownWaiting && !socketOpen) {
      for (const q of state.queue) if (!state.knownWaiting.has(q.id)) notifyHandoff(q.id, q.reason);
    }
    state.knownWaiting = ids;
    renderLists();
  }

  let refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refreshLists().catch(() => {}), 120);
  }

  // ---- conversation view --------------------------------------------------------------------

  function senderLabel(m) {
    if (m.sender === "customer") return t("console_customer");
    if (m.sender === "agent") return t("chat_agent") + (m.author ? " · " + m.author : "");
    if (m.sender === "bot") return t("chat_bot");
    return "";
  }

  function lineFor(m) {
    const cls = ["line", m.sender];
    if (m.type === "handoff") cls.push("handoff");
    const bits = [senderLabel(m)];
    if (m.sender === "bot" && m.type === "answer" && typeof m.confidence === "number") bits.push(Math.round(m.confidence * 100) + "%");
    const time = A.clock(m.created_at);
    if (time) bits.push(time);
    let text = m.text || "";
    if (m.sender === "system") text = systemText(m.text);
    if (m.sender === "customer" && m.type === "choice") text = "☑ " + text;
    if (m.type === "products" && Array.isArray(m.options)) {
      text += ": " + m.options.map((p) => p.name || p.product_id).join(", ");
    }
    return el("div", { class: cls.join(" "), dataset: { messageId: String(m.id) } }, [
      m.sender === "system" ? null : el("span", { class: "meta", text: bits.filter(Boolean).join(" · ") }),
      el("div", { class: "text", text }),
    ]);
  }

  function systemText(code) {
    const s = t("sys_" + code);
    return s === "sys_" + code ? code : s;
  }

  function addLine(m) {
    if (m.id !== undefined && m.id !== null) {
      if (state.shown.has(m.id)) return;
      state.shown.add(m.id);
    }
    const stick = ui.transcript.scrollHeight - ui.transcript.scrollTop - ui.transcript.clientHeight < 60;
    ui.transcript.append(lineFor(m));
    if (stick) ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  function renderSuggestions(list) {
    const items = (list || []).map((s) =>
      el("li", { class: "sugg" }, [
        el("div", { class: "q", text: s.question || s.key }),
        el("div", { class: "a", text: s.answer || "" }),
        el("div", { class: "foot" }, [
          el("span", { class: "conf", title: t("chat_confidence") }, [
            el("span", { class: "meter", "aria-hidden": "true" }, [
              el("span", { style: "width:" + Math.round((s.confidence || 0) * 100) + "%" }),
            ]),
            el("span", { class: "visually-hidden", text: t("chat_confidence") + " " }),
            document.createTextNode(" " + Math.round((s.confidence || 0) * 100) + "%"),
          ]),
          el("button", {
            type: "button",
            class: "btn btn-small use-suggestion",
            text: t("console_use"),
            dataset: { entryId: String(s.entry_id) },
            onclick: () => useDraft(s.answer || ""),
          }),
        ]),
      ])
    );
    ui.suggList.replaceChildren(...items);
    ui.suggEmpty.hidden = items.length > 0;
  }

  /** The same customer's earlier conversations (only for identified customers). */
  function renderPrevious(list) {
    const items = (list || []).map((p) =>
      el("li", {}, [
        el("button", { type: "button", class: "link-btn previous-item", dataset: { convId: p.id }, onclick: () => select(p.id) }, [
          el("span", { class: "cid", text: shortId(p.id) }),
          el("span", { class: "muted small", text: " " + new Date(p.created_at).toLocaleDateString(A.lang === "ko" ? "ko-KR" : "en-US") + " · " + t("status_" + p.state) }),
        ]),
      ])
    );
    ui.previousList.replaceChildren(...items);
    ui.previous.hidden = items.length === 0;
  }

  function useDraft(text) {
    ui.reply.value = text;
    ui.reply.classList.add("drafted");
    ui.reply.focus();
    ui.reply.setSelectionRange(text.length, text.length);
  }

  function renderHeader(c) {
    ui.title.textContent = t("console_conversation") + " " + shortId(c.id);
    const meta = [
      el("span", { class: stateTagClass[c.state] || "tag", text: t("status_" + c.state) }),
      c.reason ? el("span", { class: "tag tag-warn", text: reasonLabel(c.reason) }) : null,
      c.language ? el("span", { class: "tag", text: c.language }) : null,
      c.customer_id ? el("span", { class: "tag", text: c.customer_id }) : null,
      c.verified
        ? el("span", { class: "tag tag-ok verified", title: t("console_verified_help"), text: "✓ " + t("console_verified") })
        : null,
      c.customer_name ? el("span", { class: "muted customer-name", text: c.customer_name }) : null,
      c.customer_email ? el("span", { class: "muted customer-email", text: c.customer_email }) : null,
      c.team ? el("span", { class: "tag tag-team", text: t("desk_team") + ": " + c.team }) : null,
      c.agent ? el("span", { class: "muted", text: t("chat_agent") + ": " + c.agent }) : null,
      c.state === "waiting" ? el("span", { class: "muted", dataset: { waitFor: c.id } }) : null,
    ];
    ui.meta.replaceChildren(...meta.filter(Boolean));
    const mineNow = c.state === "agent" && c.agent === me;
    ui.assign.hidden = !(c.state === "waiting" || c.state === "bot" || (c.state === "agent" && !mineNow));
    ui.handback.hidden = !(c.state === "waiting" || c.state === "agent");
    ui.resolve.hidden = c.state === "resolved";
    // only an identified customer can get products (the API also checks their marketing consent)
    ui.suggestProducts.hidden = !c.customer_id || c.state === "resolved";
    ui.suggestProducts.disabled = state.busy;
    const closed = c.state === "resolved";
    ui.reply.disabled = closed;
    ui.send.disabled = closed || state.busy;
    tickWaiting();
  }

  async function load(id, keepDraft) {
    const c = await api("GET", "/api/v1/conversations/" + encodeURIComponent(id));
    if (!state.current || state.current.id !== c.id) {
      state.shown.clear();
      ui.transcript.replaceChildren();
      if (!keepDraft) {
        ui.reply.value = "";
        ui.reply.classList.remove("drafted");
      }
    }
    state.current = c;
    rememberSince(c);
    for (const m of c.messages || []) addLine(m);
    renderHeader(c);
    renderSuggestions(c.suggestions);
    renderPrevious(c.previous);
    document.dispatchEvent(new CustomEvent("annae:conversation", { detail: c })); // desk.js
    ui.placeholder.hidden = true;
    ui.conv.hidden = false;
    return c;
  }

  async function select(id) {
    showError(null);
    state.unread.delete(id);
    if (location.hash !== "#c=" + id) history.replaceState(null, "", "#c=" + id);
    try {
      await load(id);
      ui.transcript.scrollTop = ui.transcript.scrollHeight;
    } catch (err) {
      showError(err.message);
    }
    renderLists();
  }

  async function action(path, body) {
    if (!state.current || state.busy) return;
    state.busy = true;
    renderHeader(state.current); // Send waits while another action is in flight
    showError(null);
    const id = state.current.id;
    try {
      const res = await api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + path, body);
      await load(id, true);
      scheduleRefresh();
      return res;
    } catch (err) {
      showError(err.message);
      return null;
    } finally {
      state.busy = false;
      if (state.current) renderHeader(state.current);
    }
  }

  ui.assign.addEventListener("click", () => {
    const c = state.current;
    action("/assign", c && c.state === "agent" && c.agent !== me ? { force: true } : undefined);
  });
  ui.resolve.addEventListener("click", () => action("/resolve"));
  ui.handback.addEventListener("click", () => action("/handback"));
  ui.suggestProducts.addEventListener("click", async () => {
    const msg = await action("/suggest-products");
    if (msg) addLine(msg);
  });

  ui.replyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = ui.reply.value.trim();
    if (!text || !state.current) return;
    ui.send.disabled = true;
    const msg = await action("/replies", { text });
    if (msg) {
      addLine(msg);
      ui.reply.value = "";
      ui.reply.classList.remove("drafted");
    }
    ui.send.disabled = state.current && state.current.state === "resolved";
    ui.reply.focus();
  });
  ui.reply.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) ui.replyForm.requestSubmit();
  });
  ui.reply.addEventListener("input", () => {
    if (!ui.reply.value) ui.reply.classList.remove("drafted");
  });

  // ---- live events --------------------------------------------------------------------------

  let socketOpen = false;
  let reloadTimer = null;
  function reloadCurrentSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => {
      if (state.current) load(state.current.id, true).catch(() => {});
    }, 120);
  }

  function onEvent(ev) {
    const cid = ev.conversation_id;
    const isCurrent = state.current && cid === state.current.id;
    switch (ev.event) {
      case "hello":
        scheduleRefresh();
        break;
      case "resync":
        // events may have been missed (the server's event bus reconnected): reload what we show
        scheduleRefresh();
        if (state.current) reloadCurrentSoon();
        break;
      case "handoff":
        notifyHandoff(cid, ev.reason);
        if (state.knownWaiting) state.knownWaiting.add(cid);
        scheduleRefresh();
        if (isCurrent) reloadCurrentSoon();
        break;
      case "state":
        scheduleRefresh();
        if (isCurrent) reloadCurrentSoon();
        break;
      case "message":
        if (isCurrent) {
          addLine(ev.message);
          // a new customer question brings fresh suggestions
          if (ev.message && ev.message.sender === "customer") reloadCurrentSoon();
        } else if (ev.message && ev.message.sender === "customer") {
          // waiting conversations are unseen by definition; mark new words in your own ones
          if (state.mine.some((c) => c.id === cid)) state.unread.add(cid);
          scheduleRefresh();
        }
        break;
      default:
        document.dispatchEvent(new CustomEvent("annae:agent-event", { detail: ev })); // desk.js
        break;
    }
  }

  let pollTimer = null;
  function setLive(open) {
    socketOpen = open;
    ui.live.dataset.state = open ? "on" : "off";
    ui.liveText.dataset.i18n = open ? "console_live" : "console_offline";
    ui.liveText.textContent = t(ui.liveText.dataset.i18n);
    clearInterval(pollTimer);
    if (open) {
      scheduleRefresh();
      reloadCurrentSoon();
    } else {
      // fall back to polling while the socket is down
      pollTimer = setInterval(() => refreshLists().catch(() => {}), 5000);
    }
  }

  document.addEventListener("annae:lang", () => {
    renderLists();
    if (state.current) {
      const id = state.current.id;
      state.current = null;
      load(id, true).catch(() => {});
    }
  });

  // ---- start --------------------------------------------------------------------------------

  A.console = { reload: () => (state.current ? load(state.current.id, true) : null), useDraft, refreshLists };

  async function start() {
    setupNotifyButton();
    setLive(false);
    try {
      await refreshLists();
    } catch (err) {
      if (err.status === 401) location.href = "/console/login?next=/console";
    }
    A.liveSocket(
      () => A.wsUrl("/api/v1/agents/ws"),
      onEvent,
      (open, code) => {
        setLive(open);
        if (!open && code === 4401) location.href = "/console/login?next=/console";
      },
      (code) => code !== 4401
    );
    const m = /^#c=([0-9a-fA-F]+)$/.exec(location.hash);
    if (m) await select(m[1]);
    setInterval(tickWaiting, 1000);
    document.body.dataset.ready = "1";
  }
  start();
})();
