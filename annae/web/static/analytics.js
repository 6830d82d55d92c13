/* Analytics page: create a knowledge-base entry from an unanswered topic (click, then save),
   retrain with the gate, make a saved model live.

   Strings with numbers in them carry data-i18n-fmt (the key) and data-i18n-vars (JSON); they are
   filled again here on `annae:lang`, after annae.js has re-labelled the plain data-i18n ones. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const A = window.Annae;
    const { t } = A;

    /** Show `t(key, vars)` in `node` and remember it, so a language switch fills it again. */
    function say(node, key, vars) {
      node.dataset.i18nFmt = key;
      node.dataset.i18nVars = JSON.stringify(vars || {});
      node.textContent = t(key, vars);
    }

    /** Show a message from the server as it is (nothing to re-translate). */
    function sayRaw(node, text) {
      delete node.dataset.i18nFmt;
      delete node.dataset.i18nVars;
      node.textContent = text;
    }

    function relabel() {
      document.querySelectorAll("[data-i18n-fmt]").forEach((node) => {
        node.textContent = t(node.dataset.i18nFmt, JSON.parse(node.dataset.i18nVars || "{}"));
      });
      document.title = t("analytics_title") + " · Annae";
    }
    document.addEventListener("annae:lang", relabel);

    const dialog = document.getElementById("cluster-dialog");
    const form = document.getElementById("cluster-form");
    const error = document.getElementById("cluster-error");
    let current = null;
    document.querySelectorAll("[data-create-entry]").forEach((btn) => {
      btn.addEventListener("click", () => {
        current = btn.closest(".cluster");
        form.question.value = current.dataset.title;
        form.answer.value = "";
        error.hidden = true;
        dialog.showModal();
        form.answer.focus();
      });
    });
    const status = document.getElementById("retrain-status");
    const retrainBtn = document.getElementById("gated-retrain");
    async function poll() {
      const s = await A.api("GET", "/api/v1/learning/retrain");
      if (s.status === "running") {
        say(status, "analytics_training");
        setTimeout(poll, 2000);
        return;
      }
      if (s.status === "failed") say(status, "analytics_retrain_failed", { error: s.error });
      if ((s.status === "done" || s.status === "rejected") && s.result) {
        const r = s.result;
        say(status, r.promoted ? "analytics_promoted" : "analytics_rejected", {
          version: r.challenger,
          reasons: r.reasons.join("; "),
        });
        setTimeout(() => location.reload(), 2500);
      }
      retrainBtn.disabled = false;
    }
    retrainBtn.addEventListener("click", async () => {
      retrainBtn.disabled = true;
      try {
        await A.api("POST", "/api/v1/learning/retrain");
        poll();
      } catch (err) {
        sayRaw(status, err.message);
        retrainBtn.disabled = false;
      }
    });
    document.querySelectorAll("[data-rollback]").forEach((btn) => {
      btn.addEventListener("click", async () => {
        const v = btn.dataset.rollback;
        if (!(await A.confirmDialog(t("analytics_confirm_live", { version: v })))) return;
        try {
          await A.api("POST", "/api/v1/learning/models/" + v + "/rollback");
          location.reload();
        } catch (err) {
          sayRaw(status, err.message);
        }
      });
    });
    const labelStatus = document.getElementById("labels-status");
    document.querySelectorAll("[data-undo-label]").forEach((btn) => {
      btn.addEventListener("click", async () => {
        const row = btn.closest("tr");
        const question = row.querySelector("[data-question]").textContent;
        if (!(await A.confirmDialog(t("labels_undo") + ": “" + question + "”"))) return;
        try {
          const out = await A.api("DELETE", "/api/v1/conversations/" + btn.dataset.undoLabel + "/label");
          say(labelStatus, "labels_undone", { n: out.examples_removed.length });
          row.remove();
        } catch (err) {
          sayRaw(labelStatus, err.message);
        }
      });
    });
    form.addEventListener("submit", async (e) => {
      if (e.submitter && e.submitter.value === "cancel") return;
      e.preventDefault();
      const ids = current.dataset.messageIds.split(",").filter(Boolean).map(Number);
      try {
        const out = await A.api("POST", "/api/v1/learning/clusters/entry", {
          message_ids: ids,
          question: form.question.value.trim(),
          answer: form.answer.value.trim(),
          language: current.dataset.language,
        });
        dialog.close();
        const done = A.el("span", { class: "tag tag-ok" });
        say(done, "analytics_entry_created", { key: out.key, n: out.examples_added });
        current.querySelector(".cluster-head").appendChild(done);
        current.querySelector("[data-create-entry]").disabled = true;
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    });
  });
})();
