// The /lab dashboard, live: every second, ask /lab/state (through HAProxy, like any request),
// redraw the replicas' states and request counts, and add the replica that answered to the strip. No framework:
// the page works without this script; it only keeps it fresh.
"use strict";
(function () {
  const strip = document.querySelector("[data-testid=strip]");
  const KEPT = 40;

  function addToStrip(replica) {
    const item = document.createElement("li");
    item.className = "replica replica-" + replica;
    item.title = replica;
    item.textContent = replica;
    strip.appendChild(item);
    while (strip.children.length > KEPT) strip.removeChild(strip.firstChild);
  }

  function redraw(state) {
    for (const replica of state.replicas) {
      const cell = document.querySelector("[data-testid=state-" + replica.id + "]");
      if (cell) {
        cell.textContent = replica.detail;
        cell.title = replica.detail;
        cell.className = "state state-" + replica.state;
      }
      const requests = document.querySelector("[data-testid=requests-" + replica.id + "]");
      if (requests) requests.textContent = replica.requests;
    }
  }

  async function poll() {
    try {
      const res = await fetch("/lab/state", { credentials: "same-origin", cache: "no-store" });
      if (res.ok) {
        const state = await res.json();
        addToStrip(state.served_by);
        redraw(state);
      } else {
        addToStrip("error");
      }
    } catch (e) {
      addToStrip("error");
    }
  }

  setInterval(poll, 1000);
})();
