/* Analytics page: create a knowledge-base entry from an unanswered topic (click, then save). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
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
      const s = await window.Annae.api("GET", "/api/v1/learning/retrain");
      if (s.status === "running") {
        status.textContent = "training a challenger…";
        setTimeout(poll, 2000);
        return;
      }
      if (s.status === "failed") status.textContent = "retrain failed: " + s.error;
      if (s.status === "done") {
        const r = s.result;
        status.textContent = r.challenger + (r.promoted ? " promoted" : " rejected") + ": " + r.reasons.join("; ");
        setTimeout(() => location.reload(), 2500);
      }
      retrainBtn.disabled = false;
    }
    retrainBtn.addEventListener("click", async () => {
      retrainBtn.disabled = true;
      try {
        await window.Annae.api("POST", "/api/v1/learning/retrain");
        poll();
      } catch (err) {
        status.textContent = err.message;
        retrainBtn.disabled = false;
      }
    });
    document.querySelectorAll("[data-rollback]").forEach((btn) => {
      btn.addEventListener("click", async () => {
        const v = btn.dataset.rollback;
        if (!window.confirm("Make " + v + " the live model?")) return;
        try {
          await window.Annae.api("POST", "/api/v1/learning/models/" + v + "/rollback");
          location.reload();
        } catch (err) {
          status.textContent = err.message;
        }
      });
    });
    form.addEventListener("submit", async (e) => {
      if (e.submitter && e.submitter.value === "cancel") return;
      e.preventDefault();
      const ids = current.dataset.messageIds.split(",").filter(Boolean).map(Number);
      try {
        const out = await window.Annae.api("POST", "/api/v1/learning/clusters/entry", {
          message_ids: ids,
          question: form.question.value.trim(),
          answer: form.answer.value.trim(),
          language: current.dataset.language,
        });
        dialog.close();
        current.querySelector(".cluster-head").insertAdjacentHTML(
          "beforeend",
          '<span class="tag tag-ok"></span>'
        );
        current.querySelector(".tag-ok").textContent =
          "entry " + out.key + " created, " + out.examples_added + " examples";
        current.querySelector("[data-create-entry]").disabled = true;
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    });
  });
})();
