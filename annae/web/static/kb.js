/* The knowledge-base editor (/console/kb, admins): browse, search, edit, examples, retrain. */
(function () {
  "use strict";
  const A = window.Annae;
  const { t, el, api } = A;
  const $ = (id) => document.getElementById(id);
  const ADMIN = "/api/v1/admin";

  const ui = {
    list: $("entry-list"),
    count: $("entry-count"),
    q: $("kb-q"),
    newBtn: $("kb-new"),
    placeholder: $("kb-placeholder"),
    form: $("entry-form"),
    title: $("entry-title"),
    msg: $("entry-msg"),
    key: $("f-key"),
    language: $("f-language"),
    question: $("f-question"),
    answer: $("f-answer"),
    tags: $("f-tags"),
    products: $("f-products"),
    productsRow: $("products-row"),
    active: $("f-active"),
    save: $("entry-save"),
    examples: $("examples"),
    exampleList: $("example-list"),
    exampleCount: $("example-count"),
    exampleInput: $("f-example"),
    exampleAdd: $("example-add"),
    model: $("model-version"),
    retrain: $("retrain-btn"),
    retrainStatus: $("retrain-status"),
  };

  const state = { entries: [], current: null, products: "" };

  function flash(kind, text) {
    ui.msg.className = "notice notice-" + kind;
    ui.msg.textContent = text;
    ui.msg.hidden = !text;
  }

  function matches(entry, q) {
    if (!q) return true;
    const hay = [entry.key, entry.question, entry.answer, ...(entry.tags || []), ...(entry.examples || []).map((e) => e.text)]
      .join("\n")
      .toLowerCase();
    return q
      .toLowerCase()
      .split(/\s+/)
      .filter(Boolean)
      .every((w) => hay.includes(w));
  }

  function renderList() {
    const q = ui.q.value.trim();
    const shown = state.entries.filter((e) => matches(e, q));
    ui.list.replaceChildren(
      ...shown.map((e) =>
        el("li", {}, [
          el(
            "button",
            {
              type: "button",
              class: "conv-item" + (e.active ? "" : " off"),
              "aria-current": state.current && state.current.id === e.id ? "true" : "false",
              dataset: { entryId: String(e.id), key: e.key },
              onclick: () => select(e.id),
            },
            [
              el("div", { class: "row" }, [
                el("span", { class: "cid", text: e.key }),
                el("span", { class: "tags" }, [
                  e.active ? null : el("span", { class: "tag tag-danger", text: t("kb_disabled") }),
                  el("span", { class: "tag", text: e.language }),
                ]),
              ]),
              el("div", { class: "preview", text: e.question }),
            ]
          ),
        ])
      )
    );
    ui.count.textContent = q ? shown.length + "/" + state.entries.length : String(state.entries.length);
  }

  async function loadEntries() {
    const data = await api("GET", ADMIN + "/entries");
    state.entries = data.entries || [];
    renderList();
  }

  function fill(entry) {
    state.current = entry;
    ui.placeholder.hidden = true;
    ui.form.hidden = false;
    flash("info", "");
    const isNew = !entry.id;
    ui.title.textContent = isNew ? t("kb_new") : entry.key;
    ui.key.value = entry.key || "";
    ui.key.readOnly = !isNew;
    ui.language.value = entry.language || A.lang;
    ui.question.value = entry.question || "";
    ui.answer.value = entry.answer || "";
    ui.tags.value = (entry.tags || []).join(", ");
    ui.active.checked = entry.active !== false;
    ui.examples.hidden = isNew;
    loadProducts(entry);
    const examples = entry.examples || [];
    ui.exampleCount.textContent = String(examples.length);
    ui.exampleList.replaceChildren(
      ...examples.map((ex) =>
        el("li", {}, [
          el("span", { text: ex.text }),
          ex.source ? el("span", { class: "tag", text: ex.source.split(":")[0], title: ex.source }) : null,
          el("button", {
            type: "button",
            class: "btn btn-quiet btn-small",
            text: t("kb_delete"),
            "aria-label": t("kb_delete") + ": " + ex.text,
            onclick: () => deleteExample(ex.id),
          }),
        ])
      )
    );
    if (!isNew) history.replaceState(null, "", "#e=" + entry.id);
    renderList();
  }

  async function select(id) {
    try {
      fill(await api("GET", ADMIN + "/entries/" + id));
    } catch (err) {
      flash("error", err.message);
    }
  }

  /** The products linked to an entry (for product cards in the chat); hidden for a new entry. */
  async function loadProducts(entry) {
    ui.productsRow.hidden = !entry.id;
    ui.products.value = "";
    state.products = "";
    if (!entry.id) return;
    try {
      const data = await api("GET", ADMIN + "/entries/" + entry.id + "/products");
      if (!state.current || state.current.id !== entry.id) return;
      state.products = data.products.map((p) => p.product_id).join(", ");
      ui.products.value = state.products;
    } catch (err) {
      ui.productsRow.hidden = true; // no recommendations on this server
    }
  }

  function productIds() {
    return ui.products.value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  }

  async function saveProducts(entryId) {
    if (ui.productsRow.hidden || productIds().join(", ") === state.products) return;
    const data = await api("PUT", ADMIN + "/entries/" + entryId + "/products", { product_ids: productIds() });
    state.products = data.products.map((p) => p.product_id).join(", ");
  }

  function replaceEntry(entry) {
    const i = state.entries.findIndex((e) => e.id === entry.id);
    if (i >= 0) state.entries[i] = entry;
    else state.entries.push(entry);
  }

  ui.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      question: ui.question.value,
      answer: ui.answer.value,
      language: ui.language.value,
      tags: ui.tags.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      active: ui.active.checked,
    };
    ui.save.disabled = true;
    try {
      let entry;
      if (state.current && state.current.id) {
        await saveProducts(state.current.id); // first: a wrong product id changes nothing
        entry = await api("PATCH", ADMIN + "/entries/" + state.current.id, body);
      } else {
        const { active, ...rest } = body;
        entry = await api("POST", ADMIN + "/entries", { key: ui.key.value.trim(), ...rest });
        if (!active) entry = await api("PATCH", ADMIN + "/entries/" + entry.id, { active: false });
      }
      replaceEntry(entry);
      fill(entry);
      flash("ok", t("kb_saved"));
    } catch (err) {
      flash("error", err.message);
    } finally {
      ui.save.disabled = false;
    }
  });

  async function addExample() {
    const text = ui.exampleInput.value.trim();
    if (!text || !state.current || !state.current.id) return;
    ui.exampleAdd.disabled = true;
    try {
      await api("POST", ADMIN + "/entries/" + state.current.id + "/examples", { texts: [text] });
      ui.exampleInput.value = "";
      const entry = await api("GET", ADMIN + "/entries/" + state.current.id);
      replaceEntry(entry);
      fill(entry);
      flash("ok", t("kb_saved"));
      ui.exampleInput.focus();
    } catch (err) {
      flash("error", err.message);
    } finally {
      ui.exampleAdd.disabled = false;
    }
  }

  async function deleteExample(id) {
    try {
      await api("DELETE", ADMIN + "/examples/" + id);
      const entry = await api("GET", ADMIN + "/entries/" + state.current.id);
      replaceEntry(entry);
      fill(entry);
    } catch (err) {
      flash("error", err.message);
    }
  }

  ui.exampleAdd.addEventListener("click", addExample);
  ui.exampleInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      addExample();
    }
  });
  ui.q.addEventListener("input", renderList);
  ui.newBtn.addEventListener("click", () => {
    history.replaceState(null, "", location.pathname);
    fill({ key: "", question: "", answer: "", language: A.lang, tags: [], active: true, examples: [] });
    ui.key.focus();
  });

  // ---- model and retraining ------------------------------------------------------------------

  const pct = (v) => (v == null ? "—" : (v * 100).toFixed(1) + " %");

  async function showModel() {
    try {
      const m = await api("GET", ADMIN + "/model");
      ui.model.textContent = m.version || "—";
    } catch (err) {
      ui.model.textContent = "?";
    }
  }

  /** The gate's comparison: live (before) and challenger (after) on the same held-out questions. */
  function renderGate(g) {
    const box = $("retrain-gate");
    box.textContent = "";
    box.hidden = !g;
    if (!g) return;
    const live = g.live_metrics || {};
    const ch = g.challenger_metrics || {};
    const before = g.before || {};
    const after = g.after || {};
    const kb = g.kb_changes || {};
    const num = (v) => (v == null ? "—" : String(v));
    const head = A.el("p", { class: g.promoted ? "notice" : "notice notice-error" });
    head.dataset.gate = g.promoted ? "promoted" : "refused";
    const why = (g.reasons || []).filter((r) => r.includes("below")).join("; ");
    head.textContent = g.promoted
      ? t("gate_promoted", { version: g.challenger, live: g.live || "—", n: g.n_evaluated })
      : t("gate_refused", { live: g.live || "—", why: why });
    box.appendChild(head);
    const table = A.el("table", { class: "data gate-table" });
    const hr = A.el("tr");
    [t("gate_metric"), t("gate_before"), t("gate_after")].forEach((x) => hr.appendChild(A.el("th", { text: x })));
    table.appendChild(A.el("thead")).appendChild(hr);
    const body = A.el("tbody");
    const rows = [
      ["gate_accuracy", live.accuracy, ch.accuracy, pct],
      ["gate_coverage", live.coverage, ch.coverage, pct],
      ["gate_precision", live.answered_precision, ch.answered_precision, pct],
      ["gate_threshold", before.threshold, after.threshold != null ? after.threshold : ch.threshold, num],
      ["gate_examples", before.n_examples, after.n_examples != null ? after.n_examples : kb.n_examples, num],
    ];
    rows.forEach(([key, a, b, f]) => {
      const tr = A.el("tr");
      tr.dataset.metric = key;
      tr.append(A.el("td", { text: t(key) }), A.el("td", { text: f(a) }), A.el("td", { text: f(b) }));
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.appendChild(table);
    box.appendChild(
      A.el("p", {
        class: "muted",
        text: t("gate_kb_changes", {
          added: kb.examples_added || 0,
          removed: kb.examples_removed || 0,
          from: kb.kb_revision_from || 0,
          to: kb.kb_revision_to || 0,
          n: g.n_evaluated,
        }),
      })
    );
    (kb.added_texts || []).slice(0, 5).forEach((x) => box.appendChild(A.el("p", { class: "muted", text: "+ " + x })));
  }

  // ---- operating point: the live model's curve, expected against observed precision ---------

  function renderOperatingPoint(op) {
    const box = $("op");
    box.hidden = !op.version;
    if (!op.version) return;
    const live = op.points.find((p) => p.live);
    $("op-live").textContent = live ? op.target.toFixed(2) : op.threshold.toFixed(3);
    const body = $("op-points");
    body.textContent = "";
    op.points.forEach((p) => {
      const tr = el("tr");
      tr.dataset.target = p.target.toFixed(2);
      const target = el("td", { text: p.target.toFixed(2) + (p.live ? " (" + t("op_live") + ")" : "") });
      target.title = p.reached_target
        ? t("op_threshold") + " " + p.threshold.toFixed(3) + " · " + t("op_expected_precision") + " " + pct(p.expected_precision)
        : t("op_unreachable");
      const cell = el("td");
      if (p.reached_target && !p.live) {
        const b = el("button", { class: "btn btn-small", type: "button", text: t("op_use") });
        b.dataset.useTarget = p.target.toFixed(2);
        b.addEventListener("click", () => switchPoint({ target: p.target }));
        cell.appendChild(b);
      }
      tr.append(
        target,
        el("td", { text: p.reached_target ? pct(p.expected_coverage) : t("op_unreachable") }),
        el("td", { text: p.reached_target ? pct(p.expected_containment) : "—" }),
        cell
      );
      body.appendChild(tr);
    });
    const tr = op.traffic || {};
    $("op-observed").textContent =
      tr.observed_precision_live == null || tr.n_labelled < op.min_labelled
        ? t("op_observed_none", { expected: pct(op.expected_precision), n: tr.n_labelled || 0, min: op.min_labelled })
        : t("op_observed", {
            expected: pct(op.expected_precision),
            observed: pct(tr.observed_precision_live),
            n: tr.n_labelled,
            rated: tr.n_rated_answers,
            handoffs: tr.n_labelled_handoffs,
          });
    const source = op.oos_share_source || "default";
    $("op-share").hidden = op.oos_share_assumed == null;
    if (op.oos_share_assumed != null)
      $("op-share").textContent = t("op_share_" + source, {
        share: pct(op.oos_share_assumed),
        min: op.oos_share_min_labelled,
      });
    const supports = tr.proposed_threshold != null && Math.abs(tr.proposed_threshold - op.threshold) > 1e-4;
    $("op-traffic").hidden = !supports;
    if (supports)
      $("op-traffic-text").textContent = t("op_traffic_supports", {
        threshold: tr.proposed_threshold.toFixed(3),
        precision: pct(tr.proposed_precision),
      });
  }

  async function showOperatingPoint() {
    renderOperatingPoint(await api("GET", "/api/v1/learning/operating-point"));
  }

  async function switchPoint(body) {
    const status = $("op-status");
    try {
      const r = await api("POST", "/api/v1/learning/operating-point", body);
      status.className = "notice";
      status.textContent = t("op_switched", { version: r.version, target: r.target.toFixed(2), previous: r.previous });
      await Promise.all([showModel(), showOperatingPoint()]);
    } catch (err) {
      status.className = "notice notice-error";
      status.textContent = "⚠ " + err.message;
    }
  }

  $("op-use-traffic").addEventListener("click", () => switchPoint({ from_traffic: true }));

  function showRetrain(r) {
    renderGate(r.gate);
    const running = r.status === "running";
    ui.retrain.disabled = running;
    ui.retrain.textContent = running ? t("kb_retraining") : t("kb_retrain");
    document.body.dataset.retrain = r.status;
    if (r.status === "done" && r.version) ui.retrainStatus.textContent = t("kb_retrained", { version: r.version });
    else if (r.status === "failed") ui.retrainStatus.textContent = "⚠ " + (r.error || "failed");
    else if (r.status === "rejected") ui.retrainStatus.textContent = "⚠ " + t("kb_refused", { why: r.error || "" });
    else if (running) ui.retrainStatus.textContent = t("kb_retraining");
    else ui.retrainStatus.textContent = "";
    ui.retrainStatus.className = "small" + (r.status === "failed" || r.status === "rejected" ? " notice notice-error" : "");
  }

  async function poll() {
    const r = await api("GET", ADMIN + "/retrain");
    showRetrain(r);
    if (r.status === "running") setTimeout(() => poll().catch(() => {}), 1000);
    else await Promise.all([showModel(), showOperatingPoint()]);
  }

  ui.retrain.addEventListener("click", async () => {
    ui.retrain.disabled = true;
    try {
      showRetrain(await api("POST", ADMIN + "/retrain"));
    } catch (err) {
      if (err.status !== 409) {
        ui.retrainStatus.textContent = "⚠ " + err.message;
        ui.retrain.disabled = false;
        return;
      }
    }
    poll().catch(() => {});
  });

  document.addEventListener("annae:lang", () => {
    renderList();
    if (state.current) fill(state.current);
    poll().catch(() => {});
  });

  async function start() {
    await Promise.all([loadEntries(), showModel(), poll()]).catch((err) => flash("error", err.message));
    const m = /^#e=(\d+)$/.exec(location.hash);
    if (m) await select(Number(m[1]));
    document.body.dataset.ready = "1";
  }
  start();
})();
