// Keeps the executions list current without reloading the page: the list (a page of rows,
// cheap) is fetched as a fragment every 5 s and swapped in; the status counts (they read the
// whole table) load once after the page and then every 15 s. No framework; without this file
// the list still works, only without counts and refreshing.
"use strict";
(function () {
  const live = document.getElementById("live");
  const summary = document.getElementById("summary");
  const toggle = document.getElementById("auto-refresh");
  const state = document.getElementById("refresh-state");
  if (!live || !summary || !toggle) return;
  const everyMs = 5000;
  const summaryEvery = 3; // ticks
  let tick = 0;
  let busy = false;

  async function load(target) {
    const response = await fetch(target.dataset.src, {
      headers: { Accept: "text/html-fragment" },
      credentials: "same-origin",
    });
    if (response.status === 401) {
      toggle.checked = false;
      throw new Error("signed out: reload the page");
    }
    if (!response.ok) throw new Error("refresh failed (" + response.status + ")");
    target.innerHTML = await response.text();
  }

  async function refresh(first) {
    if (busy || (!first && (!toggle.checked || document.hidden))) return;
    busy = true;
    try {
      if (!first) await load(live);
      if (first || tick % summaryEvery === 0) await load(summary);
      state.textContent = "";
    } catch (error) {
      state.textContent = error instanceof TypeError ? "server unreachable" : error.message;
    } finally {
      tick += 1;
      busy = false;
    }
  }

  refresh(true);
  setInterval(() => refresh(false), everyMs);
})();
