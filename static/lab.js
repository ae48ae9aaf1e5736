// The /lab dashboard, live: every second, ask /lab/state (through HAProxy, like any request),
// redraw the replicas' states and request counts, say who the replica that answered takes you for
// (and the cart badge), and add that replica to the strip. No framework: the page works without
// this script; it only keeps it fresh.
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

  // Who you are now, as the last replica saw you: after a kill or a store restart this changes
  // before the page is reloaded.
  function redrawYou(state) {
    const who = document.querySelector("[data-testid=live-who]");
    if (who) {
      who.textContent = (state.user ? "logged in as " + state.user : "a guest") + ", " + state.cart_count +
        " item(s) in the cart, as " + state.served_by + " sees you";
    }
    const badge = document.querySelector("[data-testid=cart-badge]");
    if (badge && !state.session_unknown) badge.textContent = state.cart_count;
    if (who && state.session_unknown) {
      who.textContent = "unknown: " + state.served_by + " cannot read your session while the store is down";
    }
  }

  function redrawStore(store) {
    const cell = document.querySelector("[data-testid=store-state]");
    if (cell && store) {
      cell.textContent = store.up ? "up" : "down";
      cell.className = "state state-" + (store.up ? "up" : "down");
    }
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
        redrawYou(state);
        redrawStore(state.store);
      } else {
        addToStrip("error");
      }
    } catch (e) {
      addToStrip("error");
    }
  }

  setInterval(poll, 1000);
})();
