/* The agent desk in the console: presence and capacity, private notes with @mentions, transfers,
 * and saved replies offered when the reply box starts with "/". See docs/api.md (desk). */
(function () {
  "use strict";
  const A = window.Annae;
  const { t, el, api } = A;
  const me = (A.config.user && A.config.user.username) || "";
  const $ = (id) => document.getElementById(id);
  const ui = {
    presence: $("desk-presence"),
    capacity: $("desk-capacity"),
    open: $("desk-open"),
    teams: $("desk-teams"),
    mention: $("desk-mention"),
    notes: $("note-list"),
    notesEmpty: $("notes-empty"),
    noteForm: $("note-form"),
    note: $("note-input"),
    transferForm: $("transfer-form"),
    transferTo: $("transfer-to"),
    transferNote: $("transfer-note"),
    reply: $("reply-input"),
    suggest: $("reply-suggest"),
    error: $("conv-error"),
  };
  if (!ui.presence) return;
  let current = null; // the open conversation
  let targets = { agents: [], teams: [] };

  function showError(message) {
    ui.error.textContent = message || "";
    ui.error.hidden = !message;
  }

  // ---- presence and capacity ---------------------------------------------------------------

  function renderMe(s) {
    ui.presence.value = s.presence;
    ui.capacity.value = String(s.capacity);
    ui.open.dataset.n = String(s.open);
    ui.open.textContent = t("desk_open_n", { n: s.open });
    ui.teams.textContent = s.teams.length ? t("desk_team") + ": " + s.teams.join(", ") : "";
  }

  async function saveMe(body) {
    try {
      renderMe(await api("PUT", "/api/v1/desk/me", body));
      if (A.console) A.console.refreshLists().catch(() => {});
    } catch (err) {
      showError(err.message);
      renderMe(await api("GET", "/api/v1/desk/me"));
    }
  }
  ui.presence.addEventListener("change", () => saveMe({ presence: ui.presence.value }));
  ui.capacity.addEventListener("change", () => saveMe({ capacity: Number(ui.capacity.value) }));

  // ---- notes --------------------------------------------------------------------------------

  function noteLine(n) {
    const when = A.clock(n.created_at);
    return el("li", { class: "note", dataset: { noteId: String(n.id) } }, [
      el("span", { class: "meta small muted", text: [n.author, when].filter(Boolean).join(" · ") }),
      el("div", { class: "text", text: n.text }),
    ]);
  }

  function renderNotes(list) {
    ui.notes.replaceChildren(...list.map(noteLine));
    ui.notesEmpty.hidden = list.length > 0;
  }

  ui.noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = ui.note.value.trim();
    if (!text || !current) return;
    try {
      await api("POST", "/api/v1/conversations/" + encodeURIComponent(current.id) + "/notes", { text });
      ui.note.value = "";
      showError(null);
      if (A.console) await A.console.reload();
    } catch (err) {
      showError(err.message);
    }
  });

  // ---- transfer -----------------------------------------------------------------------------

  async function loadTargets() {
    const [agents, teams] = await Promise.all([api("GET", "/api/v1/desk/agents"), api("GET", "/api/v1/desk/teams")]);
    targets = { agents: agents.agents, teams: teams.teams };
    renderTargets();
  }

  function renderTargets() {
    const opts = [];
    for (const tm of targets.teams) opts.push(el("option", { value: "team:" + tm.name, text: t("desk_team_opt", { name: tm.name }) }));
    for (const a of targets.agents) {
      if (a.username === me) continue;
      const label = t("desk_agent_opt", { name: a.username }) + " (" + t("desk_" + a.presence) + ")";
      opts.push(el("option", { value: "agent:" + a.username, text: label }));
    }
    const keep = ui.transferTo.value;
    ui.transferTo.replaceChildren(...opts);
    if (keep) ui.transferTo.value = keep;
  }

  ui.transferForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current || !ui.transferTo.value) return;
    const [kind, name] = ui.transferTo.value.split(/:(.*)/s);
    const body = { [kind]: name };
    if (ui.transferNote.value.trim()) body.note = ui.transferNote.value.trim();
    try {
      await api("POST", "/api/v1/conversations/" + encodeURIComponent(current.id) + "/transfer", body);
      ui.transferNote.value = "";
      showError(null);
      if (A.console) {
        await A.console.reload();
        A.console.refreshLists().catch(() => {});
      }
    } catch (err) {
      showError(err.message);
    }
  });

  // ---- saved replies ("/shortcut" in the reply box) -----------------------------------------

  let suggestions = [];
  let active = -1;
  let seq = 0;

  function closeSuggest() {
    suggestions = [];
    active = -1;
    ui.suggest.hidden = true;
    ui.suggest.replaceChildren();
  }

  function pick(i) {
    const s = suggestions[i];
    if (!s) return;
    closeSuggest();
    if (A.console) A.console.useDraft(s.text);
    else ui.reply.value = s.text;
  }

  function renderSuggest() {
    if (!suggestions.length) {
      ui.suggest.replaceChildren(el("li", { class: "muted small", text: t("desk_no_saved") }));
    } else {
      ui.suggest.replaceChildren(
        ...suggestions.map((s, i) =>
          el("li", {
            role: "option",
            class: "saved" + (i === active ? " active" : ""),
            "aria-selected": i === active ? "true" : "false",
            dataset: { shortcut: s.shortcut },
            onmousedown: (e) => {
              e.preventDefault();
              pick(i);
            },
          }, [el("strong", { text: "/" + s.shortcut }), el("span", { class: "small", text: " " + s.text })])
        )
      );
    }
    ui.suggest.hidden = false;
  }

  ui.reply.addEventListener("input", async () => {
    const m = /^\/(\S*)$/u.exec(ui.reply.value);
    if (!m || !current) return closeSuggest();
    const mine = ++seq;
    const q = new URLSearchParams({ q: m[1], conversation_id: current.id });
    try {
      const res = await api("GET", "/api/v1/desk/replies?" + q.toString());
      if (mine !== seq) return;
      suggestions = res.replies;
      active = suggestions.length ? 0 : -1;
      renderSuggest();
    } catch (err) {
      closeSuggest();
    }
  });
  ui.reply.addEventListener("keydown", (e) => {
    if (ui.suggest.hidden || !suggestions.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = suggestions.length;
      active = (active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      renderSuggest();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      e.stopPropagation();
      pick(active);
    } else if (e.key === "Escape") {
      closeSuggest();
    }
  }, true);
  ui.reply.addEventListener("blur", () => setTimeout(closeSuggest, 150));

  // ---- live ---------------------------------------------------------------------------------

  document.addEventListener("annae:conversation", (e) => {
    const changed = !current || current.id !== e.detail.id;
    current = e.detail;
    renderNotes(current.notes || []);
    if (changed) closeSuggest();
    if (changed && ui.reply.value.startsWith("/")) ui.reply.dispatchEvent(new Event("input"));
    const open = current.state === "waiting" || current.state === "agent";
    ui.transferForm.querySelectorAll("select, input, button").forEach((x) => (x.disabled = !open));
    api("GET", "/api/v1/desk/me").then(renderMe).catch(() => {});
  });
  document.addEventListener("annae:agent-event", (e) => {
    const ev = e.detail;
    if (ev.event === "note" && current && ev.conversation_id === current.id && A.console) A.console.reload();
    if (ev.event === "mention" && ev.user === me) {
      ui.mention.textContent = t("desk_mentioned", { author: ev.note.author, text: ev.note.text });
      ui.mention.dataset.conversationId = ev.conversation_id;
      ui.mention.hidden = false;
    }
  });
  document.addEventListener("annae:lang", () => {
    renderTargets();
    api("GET", "/api/v1/desk/me").then(renderMe).catch(() => {});
  });

  api("GET", "/api/v1/desk/me").then(renderMe).catch(() => {});
  loadTargets().catch(() => {});
})();
