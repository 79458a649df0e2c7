// The pages are rendered on the server; this script only sends their
// actions to the JSON API (/api/...) and says how it went in #status, an
// aria-live region. No build step, no dependencies.
"use strict";

// say shows a message in the status region, which screen readers announce.
function say(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", Boolean(isError));
}

// newKey returns a random Idempotency-Key: one per click, so a repeated
// request of the same click is one command on the server.
function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// api sends a JSON request and returns the JSON answer (null for none);
// an error answer throws its message.
async function api(method, path, body, headers) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  }
  return data;
}

// goWhenReady waits until a page exists, then goes there. The read models
// follow the commands a moment later, so a new concert or order may not be
// there at once.
async function goWhenReady(path) {
  for (let i = 0; i < 40; i++) {
    const res = await fetch(path, { credentials: "same-origin" });
    if (res.ok) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  location.assign(path);
}

// refreshCart shows the cart's new lines and total once the read model
// has them: the table and the checkout button are replaced, the delivery
// form (and what was typed in it) is kept. An emptied cart is replaced
// whole.
// before is the table's text before the change.
async function refreshCart(before) {
  for (let i = 0; i < 20; i++) {
    const res = await fetch("/cart", { credentials: "same-origin" });
    if (res.ok) {
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const lines = doc.getElementById("cart-lines");
      if (!lines) {
        document.getElementById("cart").replaceWith(doc.getElementById("cart"));
        return;
      }
      if (lines.textContent !== before) {
        document.getElementById("cart-lines").replaceWith(lines);
        document.getElementById("checkout").replaceWith(doc.getElementById("checkout"));
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

// minorUnits reads "120.50" as 12050 without floating point.
function minorUnits(text) {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a price like 120 or 120.50`);
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

function value(id) {
  return document.getElementById(id).value.trim();
}

function itemPath(el) {
  return `/api/cart/items/${encodeURIComponent(el.dataset.concertId)}/${encodeURIComponent(el.dataset.ticketType)}`;
}

// delivery reads the delivery form as the API wants it.
function delivery() {
  if (document.getElementById("delivery-courier").checked) {
    return {
      method: "courier",
      address: {
        name: value("address-name"), street: value("address-street"), city: value("address-city"),
        postalCode: value("address-postal-code"), country: value("address-country"),
      },
    };
  }
  return { method: "email", email: value("delivery-address") };
}

// Actions of forms, by form ID or class.
const forms = {
  "register-form": async (form) => {
    const body = { email: value("email"), name: value("name"), password: document.getElementById("password").value };
    await api("POST", "/api/users", body, { "Idempotency-Key": newKey() });
    await api("POST", "/api/session", { email: body.email, password: body.password });
    location.assign(form.dataset.next || "/");
  },
  "login-form": async (form) => {
    await api("POST", "/api/session", { email: value("email"), password: document.getElementById("password").value });
    location.assign(form.dataset.next || "/");
  },
  "add-to-cart": async (form) => {
    const quantity = Number(form.elements.quantity.value);
    await api("POST", "/api/cart/items", { concertId: form.dataset.concertId, ticketType: form.dataset.ticketType, quantity });
    say(`Added ${quantity} × ${form.dataset.ticketType} to your cart.`);
  },
  "line-quantity": async (form) => {
    const before = document.getElementById("cart-lines").textContent;
    await api("PUT", itemPath(form), { quantity: Number(form.elements.quantity.value) });
    say("Quantity changed.");
    await refreshCart(before);
  },
  "delivery-form": async () => {
    await api("PUT", "/api/cart/delivery", delivery());
    say("Delivery saved.");
  },
  "concert-form": async () => {
    const currency = value("concert-currency").toUpperCase();
    const ticketTypes = [];
    const capacity = {};
    for (const fs of document.querySelectorAll("fieldset.ticket-type")) {
      const [name, price, seats] = Array.from(fs.querySelectorAll("input"), (i) => i.value.trim());
      if (!name) continue;
      ticketTypes.push({ name, price: { amount: minorUnits(price), currency } });
      capacity[name] = Number(seats);
    }
    const body = {
      name: value("concert-name"), artist: value("concert-artist"), venue: value("concert-venue"),
      startsAt: new Date(value("concert-starts-at")).toISOString(), ticketTypes, capacity,
    };
    const res = await api("POST", "/api/concerts", body, { "Idempotency-Key": newKey() });
    say("Concert created.");
    await goWhenReady(`/concerts/${encodeURIComponent(res.id)}`);
  },
  "role-form": async (form) => {
    const role = form.elements.role.value;
    await api("PUT", `/api/users/${encodeURIComponent(form.dataset.userId)}/role`, { role });
    say(`${form.dataset.userName} is now ${role}.`);
  },
};

// Actions of buttons, by button ID or class.
const buttons = {
  logout: async () => {
    await api("DELETE", "/api/session");
    location.assign("/");
  },
  "remove-line": async (button) => {
    const before = document.getElementById("cart-lines").textContent;
    await api("DELETE", itemPath(button));
    say("Removed from your cart.");
    await refreshCart(before);
  },
  checkout: async () => {
    await api("PUT", "/api/cart/delivery", delivery());
    const res = await api("POST", "/api/cart/checkout", undefined, { "Idempotency-Key": newKey() });
    const ids = Object.values(res.orders || {});
    say("Order placed. Opening it…");
    await goWhenReady(ids.length === 1 ? `/orders/${encodeURIComponent(ids[0])}` : "/orders");
  },
  "cancel-order": async (button) => {
    await api("POST", `/api/orders/${encodeURIComponent(button.dataset.orderId)}/cancel`, { reason: "cancelled by the buyer" });
    say("Cancelling the order…");
  },
};

function actionOf(table, el) {
  return table[el.id] || Array.from(el.classList, (c) => table[c]).find(Boolean);
}

// run runs an action with its control disabled, so a second click waits.
async function run(action, el, control) {
  control.disabled = true;
  try {
    await action(el);
  } catch (err) {
    say(err.message, true);
  } finally {
    control.disabled = false;
  }
}

document.addEventListener("submit", (ev) => {
  const action = actionOf(forms, ev.target);
  if (!action) return;
  ev.preventDefault();
  const control = ev.submitter || ev.target.querySelector("button[type=submit]") || ev.target;
  run(action, ev.target, control);
});

document.addEventListener("click", (ev) => {
  const button = ev.target.closest("button");
  const action = button && actionOf(buttons, button);
  if (!action) return;
  run(action, button, button);
});

// followOrder refreshes an order's section from its page until the order
// is final (completed, rejected or cancelled), announcing each new status.
async function followOrder() {
  let section = document.getElementById("order");
  while (section && section.dataset.final !== "true") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    try {
      const res = await fetch(location.pathname, { credentials: "same-origin" });
      if (!res.ok) continue;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("order");
      if (!fresh) continue;
      const before = document.getElementById("order-status").textContent;
      section.replaceWith(fresh);
      section = fresh;
      const now = document.getElementById("order-status").textContent;
      if (now !== before) say(`Order status: ${now}.`);
    } catch (err) {
      say(err.message, true);
    }
  }
}

followOrder();
