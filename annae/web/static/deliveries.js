// The admin's delivery log: webhooks and outbox items, with a re-send button per item.
(function () {
  "use strict";
  function csrf() {
    const m = document.cookie.match(/(?:^|; )annae_csrf=([^;]*)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }
  async function load() {
    const hooks = await (await fetch("/api/v1/admin/webhooks")).json();
    const hbody = document.querySelector("#hooks tbody");
    hbody.replaceChildren();
    for (const h of hooks.webhooks || []) {
      const tr = document.createElement("tr");
      [h.id, h.url, h.events.join(", "), h.active ? "yes" : "no"].forEach((v) => cell(tr, v));
      hbody.appendChild(tr);
    }
    const log = await (await fetch("/api/v1/admin/deliveries?limit=200")).json();
    document.getElementById("counts").textContent = Object.entries(log.counts || {})
      .map(([k, v]) => k + ": " + v)
      .join(" · ");
    const body = document.querySelector("#log tbody");
    body.replaceChildren();
    for (const it of log.items || []) {
      const tr = document.createElement("tr");
      tr.className = "status-" + it.status;
      [it.id, it.kind, it.event, it.status, it.attempts,
        (it.last_status || "") + " " + (it.last_error || ""), it.next_attempt_at].forEach((v) => cell(tr, v));
      const td = cell(tr, "");
      if (it.status !== "pending") {
        const b = document.createElement("button");
        b.textContent = "Re-send";
        b.addEventListener("click", async () => {
          b.disabled = true;
          await fetch("/api/v1/admin/deliveries/" + it.id + "/resend", {
            method: "POST", headers: { "X-CSRF-Token": csrf() },
          });
          load();
        });
        td.appendChild(b);
      }
      body.appendChild(tr);
    }
  }
  load();
  setInterval(load, 10000);
})();
