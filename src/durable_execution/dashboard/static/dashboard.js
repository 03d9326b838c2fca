// Refreshes the executions list in place: fetches the same list as a fragment every few
// seconds and swaps it in. No framework; the page works without this file too.
"use strict";
(function () {
  const live = document.getElementById("live");
  const toggle = document.getElementById("auto-refresh");
  const state = document.getElementById("refresh-state");
  if (!live || !toggle) return;
  const everyMs = 5000;
  let busy = false;

  async function refresh() {
    if (busy || !toggle.checked || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(live.dataset.src, {
        headers: { Accept: "text/html-fragment" },
        credentials: "same-origin",
      });
      if (response.status === 401) {
        toggle.checked = false;
        state.textContent = "signed out: reload the page";
        return;
      }
      if (!response.ok) {
        state.textContent = "refresh failed (" + response.status + ")";
        return;
      }
      live.innerHTML = await response.text();
      state.textContent = "";
    } catch (error) {
      state.textContent = "refresh failed: server unreachable";
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, everyMs);
  live.addEventListener("dashboard:refresh", refresh);
})();
