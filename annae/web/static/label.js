/* Console: when an agent resolves a conversation, ask once what it was about.
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
    d.setAttribute("aria-labelledby", "label-title");
    d.innerHTML =
      '<form method="dialog" class="label-form" style="display:grid;gap:.6rem;min-width:min(520px,90vw)">' +
      '<h2 id="label-title" data-i18n="label_title"></h2>' +
      '<p class="muted small" id="label-question"></p>' +
      '<label><input type="radio" name="kind" value="entry" checked> <span data-i18n="label_existing"></span></label>' +
      '<input class="field" type="search" id="label-search" data-i18n-placeholder="label_search" data-i18n-label="label_search">' +
      '<select class="field" id="label-entry" size="5" data-i18n-label="label_entry"></select>' +
      '<label><input type="radio" name="kind" value="new_entry"> <span data-i18n="label_new"></span></label>' +
      '<input class="field" id="label-new-q" data-i18n-label="label_new_question">' +
      '<textarea class="field" id="label-new-a" rows="4" data-i18n-label="label_new_answer"></textarea>' +
      '<label><input type="radio" name="kind" value="not_faq"> <span data-i18n="label_not_faq"></span></label>' +
      '<p class="notice notice-error" id="label-error" role="alert" hidden></p>' +
      '<div><button class="btn btn-primary" value="save" id="label-save" data-i18n="label_save"></button> ' +
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
      o.textContent = e.key + " · " + e.question;
      if (e.id === preferred) o.selected = true;
      select.appendChild(o);
    });
    if (select.selectedIndex < 0 && select.options.length) select.selectedIndex = 0;
  }

  async function ask(id, resolveBtn) {
    const api = window.Annae.api;
    const form = await api("GET", "/api/v1/conversations/" + id + "/label");
    if (form.label || !form.question) return true; // labelled already, or nothing to learn
    const d = document.getElementById("label-dialog") || build();
    const guess = form.guesses.length ? form.guesses[0].entry_id : null;
    const entries = (await api("GET", "/api/v1/learning/entries?limit=500")).entries;
    const ordered = form.guesses
      .map((g) => entries.find((e) => e.id === g.entry_id))
      .filter(Boolean)
      .concat(entries.filter((e) => !form.guesses.some((g) => g.entry_id === e.id)));
    const select = d.querySelector("#label-entry");
    fillEntries(select, ordered, guess);
    d.querySelector("#label-question").textContent = "“" + form.question.text + "”";
    d.querySelector("#label-new-q").value = form.question.text;
    d.querySelector("#label-new-a").value = form.agent_reply || "";
    d.querySelector("#label-search").oninput = (e) => {
      const q = e.target.value.toLowerCase();
      fillEntries(select, ordered.filter((x) => (x.key + " " + x.question).toLowerCase().includes(q)), guess);
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
      if (kind === "entry") {
        if (!select.value) return showError(error, "label_pick_entry");
        body.entry_id = Number(select.value);
      }
      if (kind === "new_entry") {
        body.new_entry = {
          question: d.querySelector("#label-new-q").value.trim(),
          answer: d.querySelector("#label-new-a").value.trim(),
        };
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
