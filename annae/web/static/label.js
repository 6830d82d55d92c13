/* Console: when an agent resolves a conversation, ask once what it was about.
   The dialog quotes the customer's question(s) that led to the hand-off (never what they wrote
   to the agent afterwards), each one a checkbox; it pre-selects the bot's best entry only when
   the server calls it credible, and lists the conversation's language first.
   The answer (an entry, a new entry, or "not a FAQ question") goes to
   POST /api/v1/conversations/{id}/label; "Skip" resolves without a label. */
(function () {
  "use strict";
  let bypass = false;

  function convId() {
    const m = /^#c=([0-9a-fA-F]+)$/.exec(location.hash);
    return m ? m[1] : null;
  }

  /** The dialog, labelled through data-i18n* so the language toggle re-labels it like the page. */
  function build() {
    const d = document.createElement("dialog");
    d.id = "label-dialog";
    d.className = "modal";
    d.setAttribute("aria-labelledby", "label-title");
    d.innerHTML =
      '<form method="dialog" class="modal-form label-form">' +
      '<h2 id="label-title" data-i18n="label_title"></h2>' +
      '<fieldset class="label-questions"><legend class="small muted" data-i18n="label_questions"></legend>' +
      '<div id="label-question-list"></div></fieldset>' +
      '<label class="choice"><input type="radio" name="kind" value="entry" checked> <span data-i18n="label_existing"></span></label>' +
      '<input class="field" type="search" id="label-search" data-i18n-placeholder="label_search" data-i18n-label="label_search">' +
      '<select class="field" id="label-entry" size="6" data-i18n-label="label_entry"></select>' +
      '<p class="small muted" id="label-no-guess" data-i18n="label_no_guess" hidden></p>' +
      '<label class="choice"><input type="radio" name="kind" value="new_entry"> <span data-i18n="label_new"></span></label>' +
      '<input class="field" id="label-new-q" data-i18n-label="label_new_question">' +
      '<textarea class="field" id="label-new-a" rows="4" data-i18n-label="label_new_answer"></textarea>' +
      '<label class="choice"><input type="radio" name="kind" value="not_faq"> <span data-i18n="label_not_faq"></span></label>' +
      '<p class="notice notice-error" id="label-error" role="alert" hidden></p>' +
      '<div class="modal-actions"><button class="btn btn-primary" value="save" id="label-save" data-i18n="label_save"></button> ' +
      '<button class="btn" value="skip" formnovalidate id="label-skip" data-i18n="label_skip"></button></div></form>';
    document.body.appendChild(d);
    window.Annae.applyI18n(d);
    return d;
  }

  /** Show an error: one of ours by key (re-labelled with the page), or the server's text as is. */
  function showError(node, key, text) {
    if (key) {
      node.dataset.i18n = key;
      node.textContent = window.Annae.t(key);
    } else {
      delete node.dataset.i18n;
      node.textContent = text;
    }
    node.hidden = false;
  }

  function fillEntries(select, rows, preferred) {
    select.textContent = "";
    rows.forEach((e) => {
      const o = document.createElement("option");
      o.value = String(e.id);
      o.lang = e.language || "";
      o.textContent = e.key + " · " + e.question;
      if (e.id === preferred) o.selected = true;
      select.appendChild(o);
    });
  }

  /** The questions that led to the hand-off, each a checkbox (the one handed off checked). */
  function fillQuestions(box, questions) {
    box.textContent = "";
    questions.forEach((q) => {
      const label = document.createElement("label");
      label.className = "label-q";
      const box_ = document.createElement("input");
      box_.type = "checkbox";
      box_.name = "message";
      box_.value = String(q.message_id);
      box_.checked = !!q.selected;
      const quote = document.createElement("q");
      quote.textContent = q.text;
      label.append(box_, " ", quote);
      box.appendChild(label);
    });
  }

  /** Guesses first, then entries in the conversation's language, then the others. */
  function order(entries, guesses, language) {
    const guessed = guesses.map((g) => entries.find((e) => e.id === g.entry_id)).filter(Boolean);
    const rest = entries.filter((e) => !guesses.some((g) => g.entry_id === e.id));
    const mine = (e) => !language || e.language === language;
    const byLang = (list) => list.filter(mine).concat(list.filter((e) => !mine(e)));
    return byLang(guessed).concat(byLang(rest));
  }

  async function ask(id, resolveBtn) {
    const api = window.Annae.api;
    const form = await api("GET", "/api/v1/conversations/" + id + "/label");
    if (form.label || !form.questions || !form.questions.length) return true; // labelled already, or nothing to learn
    const d = document.getElementById("label-dialog") || build();
    const entries = (await api("GET", "/api/v1/learning/entries?limit=500")).entries;
    const ordered = order(entries, form.guesses, form.language);
    const preselect = form.preselect;
    const select = d.querySelector("#label-entry");
    fillEntries(select, ordered, preselect);
    d.querySelector("#label-no-guess").hidden = preselect != null;
    fillQuestions(d.querySelector("#label-question-list"), form.questions);
    d.querySelector("#label-new-q").value = form.question ? form.question.text : "";
    d.querySelector("#label-new-a").value = form.agent_reply || "";
    d.querySelector("input[name=kind][value=entry]").checked = true;
    d.querySelector("#label-search").value = "";
    d.querySelector("#label-search").oninput = (e) => {
      const q = e.target.value.toLowerCase();
      fillEntries(select, ordered.filter((x) => (x.key + " " + x.question).toLowerCase().includes(q)), preselect);
    };
    const error = d.querySelector("#label-error");
    error.hidden = true;
    d.querySelector("form").onsubmit = async (e) => {
      if (e.submitter && e.submitter.value === "skip") {
        bypass = true;
        resolveBtn.click();
        return;
      }
      e.preventDefault();
      const kind = d.querySelector("input[name=kind]:checked").value;
      const body = { kind };
      const picked = Array.from(d.querySelectorAll("input[name=message]:checked")).map((x) => Number(x.value));
      if (kind !== "not_faq") {
        if (!picked.length) return showError(error, "label_pick_question");
        body.message_ids = picked;
      }
      if (kind === "entry") {
        if (!select.value) return showError(error, "label_pick_entry");
        body.entry_id = Number(select.value);
      }
      if (kind === "new_entry") {
        body.new_entry = {
          question: d.querySelector("#label-new-q").value.trim(),
          answer: d.querySelector("#label-new-a").value.trim(),
        };
        if (form.language === "ko" || form.language === "en") body.new_entry.language = form.language;
        if (!body.new_entry.question || !body.new_entry.answer) return showError(error, "label_need_text");
      }
      try {
        await api("POST", "/api/v1/conversations/" + id + "/label", body);
        d.close();
        bypass = true;
        resolveBtn.click();
      } catch (err) {
        showError(error, null, err.message);
      }
    };
    d.showModal();
    return false;
  }

  document.addEventListener(
    "click",
    (e) => {
      const btn = e.target.closest && e.target.closest("#btn-resolve");
      if (!btn || bypass) {
        bypass = false;
        return;
      }
      const id = convId();
      if (!id || !window.Annae) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      ask(id, btn)
        .then((go) => {
          if (go) {
            bypass = true;
            btn.click();
          }
        })
        .catch(() => {
          bypass = true; // never block resolving because labelling failed
          btn.click();
        });
    },
    true
  );
})();
