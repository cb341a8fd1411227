// Live updates of the console's pages: one EventSource per page, DOM changed in place.
"use strict";

(function () {
  const FINAL = ["succeeded", "failed", "cancelled", "rejected"];

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function badge(status) {
    return el("span", { class: "status status-" + status }, status);
  }

  function cell(row, text) {
    const td = el("td", {}, text === null || text === undefined ? "–" : String(text));
    row.appendChild(td);
    return td;
  }

  function colourDag(step, status) {
    const node = document.getElementById("step-" + step);
    if (node) node.setAttribute("data-status", status);
  }

  const views = {
    runs: {
      run(c) {
        let row = document.getElementById("run-" + c.order_run_id);
        if (!row) {
          if (document.body.dataset.liveInsert !== "yes") return;
          row = el("tr", { id: "run-" + c.order_run_id, "data-run": c.order_run_id, class: "new" });
          cell(row, c.domain);
          const name = el("td");
          name.appendChild(el("a", { href: "/runs/" + c.order_run_id }, c.recipe || "?"));
          row.appendChild(name);
          cell(row, null);
          cell(row, c.kitchen);
          cell(row, "").className = "run-status";
          cell(row, null);
          cell(row, null);
          const tests = cell(row, "");
          tests.className = "tests";
          tests.append(el("span", { class: "pass" }, "0"), " / ",
                       el("span", { class: "fail" }, "0"), " / ",
                       el("span", { class: "warn" }, "0"));
          document.querySelector("#runs tbody").prepend(row);
        }
        row.querySelector(".run-status").replaceChildren(badge(c.status));
      },
      test(c) {
        const row = document.getElementById("run-" + c.order_run_id);
        const bucket = { passed: "pass", warning: "warn", failed: "fail", error: "fail" }[c.status];
        if (!row || !bucket) return;
        const span = row.querySelector(".tests ." + bucket);
        span.textContent = String(Number(span.textContent) + 1);
      },
    },
    run: {
      // Changes made between the page's rendering and the stream's opening come from here.
      async resync() {
        const response = await fetch("/runs/" + document.body.dataset.run + "/state",
                                     { credentials: "same-origin" });
        if (!response.ok) return;
        const state = await response.json();
        for (const s of state.steps) views.run.step(s);
        for (const [bucket, n] of Object.entries(state.tests)) {
          document.getElementById("count-" + bucket).textContent = String(n);
        }
        views.run.run({ status: state.status });
      },
      run(c) {
        document.getElementById("run-status").replaceChildren(badge(c.status));
        if (FINAL.includes(c.status)) {
          const cancel = document.getElementById("cancel-form");
          if (cancel) cancel.remove();
        }
      },
      step(c) {
        const id = "step-" + c.step + "-" + c.attempt;
        let row = document.getElementById(id);
        if (!row) {
          row = el("tr", { id: id, "data-step": c.step });
          cell(row, c.step);
          cell(row, c.attempt);
          cell(row, "").className = "step-status";
          cell(row, null).className = "step-started";
          cell(row, null).className = "step-took";
          cell(row, "").className = "timeline";
          document.querySelector("#steps tbody").appendChild(row);
        }
        row.dataset.status = c.status;
        row.querySelector(".step-status").replaceChildren(badge(c.status));
        const started = row.querySelector(".step-started");
        if (started && c.status === "running" && c.at) {
          started.textContent = c.at.replace("T", " ").slice(0, 19);
        }
        const took = row.querySelector(".step-took");
        if (took && typeof c.duration_s === "number") took.textContent = c.duration_s.toFixed(1) + " s";
        colourDag(c.step, c.status);
      },
      test(c) {
        const row = el("tr", { class: "test sev-" + c.severity + " status-" + c.status });
        for (const v of [c.step, c.test, c.severity]) cell(row, v);
        row.appendChild(el("td")).appendChild(badge(c.status));
        for (const v of [c.value, c.threshold]) cell(row, v);
        cell(row, "");
        document.querySelector("#tests tbody").appendChild(row);
        const bucket = { passed: "pass", warning: "warn", failed: "fail", error: "fail" }[c.status];
        if (bucket) {
          const span = document.getElementById("count-" + bucket);
          span.textContent = String(Number(span.textContent) + 1);
        }
      },
    },
    mesh: {
      run(c) {
        // The layout changes with statuses and counts: lay it out again, at most once a second.
        if (FINAL.includes(c.status) && !window.__meshReload) {
          window.__meshReload = setTimeout(() => window.location.reload(), 1000);
        }
      },
    },
    kitchens: {
      // A kitchen just created may reach the read model after the page was rendered; after
      // a reconnect anything may have changed.
      resync(again) {
        if (again) {
          views.kitchens.later();
          return;
        }
        const created = new URLSearchParams(window.location.search).get("created");
        const tries = Number(window.sessionStorage.getItem("kitchen-wait") || "0");
        if (created && !document.getElementById("kitchen-" + created) && tries < 20) {
          window.sessionStorage.setItem("kitchen-wait", String(tries + 1));
          setTimeout(() => window.location.reload(), 250);
        } else {
          window.sessionStorage.removeItem("kitchen-wait");
        }
      },
      // A changed kitchen, or a finished run (which may change whether a sandbox may merge):
      // show the registry's answer again, but never under a user filling in the form.
      later() {
        if (window.__kitchensReload) return;
        window.__kitchensReload = setTimeout(() => {
          window.__kitchensReload = null;
          if (document.querySelector("#create[open]")) views.kitchens.later();
          else window.location.reload();
        }, 1000);
      },
      entity() {
        views.kitchens.later();
      },
      run(c) {
        if (FINAL.includes(c.status)) views.kitchens.later();
      },
    },
    backfills: {
      backfill(c) {
        const row = document.getElementById("backfill-" + c.backfill_id);
        if (!row || !c.counts) {
          // A new backfill (or one told without its counts): show the read model again.
          if (!window.__backfillsReload) {
            window.__backfillsReload = setTimeout(() => window.location.reload(), 500);
          }
          return;
        }
        if (c.status) row.querySelector(".backfill-status").replaceChildren(badge(c.status));
        for (const [k, n] of Object.entries(c.counts)) {
          const span = row.querySelector(".progress ." + k);
          if (span) span.textContent = String(n);
        }
      },
    },
    backfill: {
      // Updates carry only the partitions that changed: read the whole state, one at a time.
      async resync() {
        if (window.__backfillBusy) {
          window.__backfillAgain = true;
          return;
        }
        window.__backfillBusy = true;
        try {
          do {
            window.__backfillAgain = false;
            const response = await fetch(
              "/backfills/" + document.body.dataset.backfill + "/state",
              { credentials: "same-origin" });
            if (response.ok) views.backfill.show(await response.json());
          } while (window.__backfillAgain);
        } finally {
          window.__backfillBusy = false;
        }
      },
      backfill(c) {
        if (c.backfill_id === document.body.dataset.backfill) views.backfill.resync();
      },
      show(state) {
        document.getElementById("backfill-status").replaceChildren(badge(state.status));
        document.getElementById("backfill-reason").textContent =
          state.reason ? "— " + state.reason : "";
        document.getElementById("backfill-refused").textContent = state.refused || "";
        const progress = document.getElementById("backfill-progress");
        for (const [k, n] of Object.entries(state.counts)) {
          const span = progress.querySelector("." + k);
          if (span) span.textContent = String(n);
        }
        const cancel = document.getElementById("backfill-cancel-form");
        if (cancel) cancel.hidden = state.status !== "running";
        const retry = document.getElementById("backfill-retry-form");
        if (retry) retry.hidden = !state.counts.failed;
        const body = document.querySelector("#partitions tbody");
        const rows = state.partitions.map((p) => {
          const row = el("tr", { id: "partition-" + p.key, "data-key": p.key,
                                 "data-state": p.state });
          cell(row, p.key);
          row.appendChild(el("td", { class: "partition-state" })).appendChild(badge(p.state));
          cell(row, p.attempt).className = "partition-attempt";
          const run = el("td", { class: "partition-run" });
          if (p.order_run_id) run.appendChild(el("a", { href: "/runs/" + p.order_run_id },
                                                    p.order_run_id));
          else run.textContent = "–";
          row.appendChild(run);
          cell(row, p.reason || "").className = "partition-reason";
          return row;
        });
        body.replaceChildren(...rows);
      },
    },
    run_pending: {
      // The run's first event may have come before the stream opened.
      async resync() {
        const response = await fetch("/runs/" + document.body.dataset.run + "/state",
                                     { credentials: "same-origin" });
        if (response.ok) window.location.reload();
      },
    },
    tests: {
      test(c) {
        const row = el("tr", {
          class: "test sev-" + c.severity + " status-" + c.status,
          "data-message": c.message_id,
        });
        cell(row, c.at ? c.at.replace("T", " ").slice(0, 19) : null);
        cell(row, c.domain + "/" + c.recipe);
        cell(row, c.kitchen);
        cell(row, c.step);
        const name = el("td");
        const q = new URLSearchParams({ domain: c.domain, recipe: c.recipe, step: c.step,
                                        test: c.test, kitchen: c.kitchen });
        name.appendChild(el("a", { href: "/tests/history?" + q.toString() }, c.test));
        row.appendChild(name);
        cell(row, c.severity);
        row.appendChild(el("td")).appendChild(badge(c.status));
        cell(row, c.value);
        cell(row, c.threshold);
        const body = document.querySelector("#results tbody");
        body.prepend(row);
        while (body.children.length > 200) body.lastElementChild.remove();
      },
    },
  };

  function syncDag() {
    for (const row of document.querySelectorAll("#steps tr[data-step]")) {
      colourDag(row.dataset.step, row.dataset.status);
    }
  }

  function listen() {
    const url = document.body.dataset.events;
    if (!url || typeof EventSource === "undefined") return;
    const handlers = views[document.body.dataset.view] || {};
    const reloadOn = (document.body.dataset.reloadOn || "").split(" ").filter(Boolean);
    const live = document.getElementById("live");
    const source = new EventSource(url);
    let opened = false;
    source.addEventListener("ready", () => {
      // Changes may have been missed before the stream opened (or while it reconnected):
      // a view that can catch up does, the others show the read model again.
      if (handlers.resync) handlers.resync(opened);
      else if (opened) window.location.reload();
      opened = true;
      live.textContent = "● live";
      live.className = "live on";
    });
    // The server's database listener was away and listens again: read the read model again.
    source.addEventListener("resync", () => {
      if (handlers.resync) handlers.resync(true);
      else window.location.reload();
    });
    source.onerror = () => {
      live.textContent = "○ reconnecting";
      live.className = "live off";
    };
    for (const kind of ["run", "step", "test", "completion", "entity", "backfill"]) {
      source.addEventListener(kind, (event) => {
        if (reloadOn.includes(kind)) {
          window.location.reload();
          return;
        }
        const handle = handlers[kind];
        if (handle) handle(JSON.parse(event.data));
      });
    }
  }

  function keys() {
    const go = { m: "/mesh", r: "/runs", t: "/tests", b: "/backfills", k: "/kitchens" };
    document.addEventListener("keydown", (event) => {
      const target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
      if (go[event.key] && document.querySelector("nav")) window.location.assign(go[event.key]);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    syncDag();
    keys();
    listen();
  });
})();
