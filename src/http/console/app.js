// keyquorum console: signs every API request in the page with the user's client key, exactly
// as the CLI does (KQ-REQUEST-V2, README "Access control"). The key is imported into
// WebCrypto as a non-extractable Ed25519 key and never leaves the page.
"use strict";

const state = { client: null, key: null, node: null, renders: 0 };

// Each render takes a number; an older render that finishes late does not overwrite a newer one.
function freshRender() {
  const mine = ++state.renders;
  return () => mine === state.renders;
}

// ---- helpers -------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text) {
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) throw new Error("not hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text;
  box.hidden = !text;
  if (text) document.getElementById("notice").hidden = true;
}

function showNotice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
}

// What an API error code means, for a person; the node's own message follows.
const EXPLAIN = {
  self_approval: "You made this request, so you cannot approve or refuse it yourself.",
  not_an_approver: "You are not on the approver list of this key's policy.",
  duplicate_approval: "You have already approved or refused this request.",
  content_mismatch: "The request changed since you read it; reload it and review again.",
  request_denied: "An approver refused this request, so it is closed.",
  request_expired: "This request has expired.",
  already_executed: "This request has already been executed.",
  not_approved: "This request does not have enough approvals yet.",
  not_requester: "Only the person who made the request may execute it.",
  no_such_request: "There is no such request.",
  forbidden: "You are not allowed to do this.",
  unknown_client: "This node does not know your client name; check the key file.",
  bad_signature: "The node could not verify your signature; check the key file.",
  stale_request: "Your computer's clock differs too much from the node's; fix the clock and retry.",
  replayed_request: "This request was already sent once; please retry.",
  rate_limited: "Too many requests; wait a moment and retry.",
  catching_up: "The node is catching up with the cluster; retry in a few seconds.",
  sealed: "The node is sealed; an operator must unseal it.",
  change_not_applied: "Not enough nodes accepted the change; nothing was changed.",
  missing_credentials: "Load your client key file first.",
};

async function describe(resp) {
  let body = null;
  try { body = await resp.json(); } catch (_) { /* not JSON */ }
  const lead = body && EXPLAIN[body.error];
  const detail = body && body.message ? body.message : resp.statusText;
  return lead ? `${lead} (${detail})` : `The node refused: ${detail}`;
}

function randomNonce() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

// ---- signing -------------------------------------------------------------------------------

async function loadKeyFile(file) {
  const text = await file.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch (_) { throw new Error("This file is not a client key file (it is not JSON)."); }
  if (!parsed.client || !parsed.secret_key || !parsed.public_key) {
    throw new Error("This file is not a client key file (client, secret_key and public_key are needed).");
  }
  let secret;
  let pub;
  try {
    secret = unhex(parsed.secret_key);
    pub = unhex(parsed.public_key);
  } catch (_) {
    throw new Error("The key file's keys are not hex.");
  }
  if (secret.length !== 32 || pub.length !== 32) throw new Error("The key file's keys must be 32 bytes each.");
  const jwk = { kty: "OKP", crv: "Ed25519", d: b64url(secret), x: b64url(pub) };
  let key;
  try {
    key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  } catch (e) {
    throw new Error("This browser cannot use the key (WebCrypto Ed25519 is needed): " + e.message);
  } finally {
    secret.fill(0);
    jwk.d = "";
    parsed.secret_key = "";
  }
  // The page cannot check the halves match without signing: sign and verify once.
  const probe = new TextEncoder().encode("keyquorum console key check");
  const sig = await crypto.subtle.sign("Ed25519", key, probe);
  const verifier = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify("Ed25519", verifier, sig, probe))) {
    throw new Error("The key file's public_key does not match its secret_key.");
  }
  state.client = parsed.client;
  state.key = key;
}

async function nodeId() {
  if (state.node === null) {
    const resp = await fetch("/v1/health");
    if (!resp.ok) throw new Error("The node does not answer its health check.");
    state.node = (await resp.json()).node;
  }
  return state.node;
}

// KQ-REQUEST-V2 \n CLIENT \n NODE \n METHOD \n PATH \n hex(SHA-256(body)) \n TS \n NONCE
async function authorization(method, path, body) {
  const node = await nodeId();
  const ts = Date.now();
  const nonce = randomNonce();
  const digest = hex(await crypto.subtle.digest("SHA-256", body));
  const canonical = ["KQ-REQUEST-V2", state.client, node, method, path, digest, ts, nonce].join("\n");
  const sig = await crypto.subtle.sign("Ed25519", state.key, new TextEncoder().encode(canonical));
  return `KQ-Ed25519 client=${state.client},node=${node},ts=${ts},nonce=${nonce},sig=${hex(sig)}`;
}

async function api(method, pathAndQuery, payload) {
  if (!state.key) throw new Error("Load your client key file first.");
  const path = pathAndQuery.split("?")[0];
  const body = payload === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
  const headers = { Authorization: await authorization(method, path, body) };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(pathAndQuery, { method, headers, body: payload === undefined ? undefined : body });
  } catch (e) {
    throw new Error("The node cannot be reached: " + e.message);
  }
  if (!resp.ok) throw new Error(await describe(resp));
  return resp.json();
}

// ---- pages ---------------------------------------------------------------------------------

// A peer that did not answer has no known seal state.
function sealedCell(sealed) {
  if (sealed === true) return el("td", { class: "bad" }, "sealed");
  if (sealed === false) return el("td", { class: "ok" }, "unsealed");
  return el("td", {}, "unknown");
}

async function renderStatus() {
  const s = await api("GET", "/v1/status");
  const body = document.getElementById("status-body");
  body.replaceChildren(
    el("p", {}, `Node ${s.node} (${s.name}), version ${s.version}: `,
      el("span", { class: s.sealed ? "bad" : "ok" }, s.sealed ? "sealed" : "unsealed"),
      `, ${s.keys} keys, `, s.admin_caught_up ? "caught up with the cluster." : "catching up with the cluster."),
    el("table", { id: "nodes" },
      el("tr", {}, el("th", {}, "Node"), el("th", {}, "Name"), el("th", {}, "Reachable"), el("th", {}, "Sealed"), el("th", {}, "Problem")),
      el("tr", {}, el("td", {}, s.node), el("td", {}, s.name), el("td", { class: "ok" }, "this node"),
        sealedCell(s.sealed), el("td", {}, "")),
      s.peers.map((p) => el("tr", {}, el("td", {}, p.node), el("td", {}, p.name),
        el("td", { class: p.reachable ? "ok" : "bad" }, p.reachable ? "yes" : "no"),
        sealedCell(p.sealed), el("td", {}, p.error || "")))),
  );
}

function policyLines(p) {
  const names = (l) => (l && l.length ? l.join(", ") : "nobody");
  return el("ul", {},
    el("li", {}, `decrypt: ${names(p.decrypt)}`),
    el("li", {}, `approve: ${names(p.approve)} — ${p.decrypt_approvals || 0} approvals needed`),
    el("li", {}, `a refusal closes a request: ${p.deny_closes === false ? "no" : "yes"}; requests expire after ${(p.request_ttl_seconds || 86400) / 3600} h`),
    el("li", {}, `sign: ${names(p.sign)}; read: ${names(p.read)}; manage: ${names(p.manage)}`));
}

async function renderKeys() {
  const list = await api("GET", "/v1/keys");
  const body = document.getElementById("keys-body");
  if (!list.keys.length) { body.replaceChildren(el("p", {}, "No keys you may read.")); return; }
  body.replaceChildren(...list.keys.map((k) => el("div", { class: "card" },
    el("h3", {}, `${k.name} `, el("span", { class: "state" }, k.state)),
    el("p", {}, `${k.algorithm}, ${k.threshold} of ${k.participants.length} nodes (${k.participants.join(", ")}), generation ${k.generation}, created ${k.created_at}`),
    el("p", {}, "Public key: ", el("span", { class: "mono" }, k.public_key)),
    policyLines(k.policy))));
}

function reviewList(label, reviews) {
  if (!reviews.length) return null;
  return el("p", {}, `${label}: `, reviews.map((r, i) => [i ? "; " : "", el("b", {}, r.client), ` at ${r.at}`, r.comment ? ` — “${r.comment}”` : ""]));
}

async function review(id, verb, comment) {
  const shown = await api("GET", `/v1/decrypt-requests/${id}`);
  // The review names the content hash as read here: it counts only for exactly this request.
  await api("POST", `/v1/decrypt-requests/${id}/${verb}`, { comment, content_sha256: shown.content_sha256 });
}

function requestCard(r) {
  const comment = el("textarea", { placeholder: "Comment (why you approve or refuse)", class: "comment" });
  const act = (verb) => async (ev) => {
    ev.target.disabled = true;
    showError("");
    try {
      await review(r.id, verb, comment.value);
      await renderRequests();
      showNotice(`You ${verb === "approve" ? "approved" : "refused"} request ${r.id}.`);
    } catch (e) {
      showError(e.message);
      ev.target.disabled = false;
    }
  };
  const open = r.state === "pending" || r.state === "approved";
  const mine = r.requester === state.client;
  // The buttons show where the rules allow a review; every node checks the rules anyway.
  const reviewed = r.approvals.concat(r.refusals).some((x) => x.client === state.client);
  const approver = r.approvers.includes(state.client) || r.approvers.includes("*");
  const labels = r.labels.filter((l) => l.video || l.frame !== undefined);
  return el("div", { class: "card request", "data-id": r.id, "data-state": r.state },
    el("h3", {}, `Request `, el("span", { class: "mono" }, r.id), " ", el("span", { class: `state state-${r.state}` }, r.state)),
    el("p", {}, el("b", {}, r.requester), ` asks to open ${r.records} record${r.records === 1 ? "" : "s"} with key `, el("b", {}, r.key), "."),
    el("p", {}, "Reason: ", el("q", {}, r.reason)),
    labels.length ? el("p", {}, "Records: ", labels.map((l) => `${l.video || "?"} frame ${l.frame ?? "?"}`).join(", ")) : null,
    el("p", {}, `Approvals: ${r.approvals.length} of ${r.approvals_needed} (approvers: ${r.approvers.join(", ") || "nobody"}). Created ${r.created_at}, expires ${r.expires_at}.`),
    reviewList("Approved by", r.approvals),
    reviewList("Refused by", r.refusals),
    r.executed_at ? el("p", {}, `Executed at ${r.executed_at}.`) : null,
    open && !mine && approver && !reviewed ? el("div", {}, comment,
      el("button", { class: "approve", onclick: act("approve") }, "Approve"), " ",
      el("button", { class: "deny", onclick: act("deny") }, "Refuse")) : null,
    open && mine ? el("p", { class: "mine" }, "You made this request; run “keyquorum requests execute” once it is approved.") : null,
    open && !mine && reviewed ? el("p", {}, "You have reviewed this request.") : null);
}

async function renderRequests() {
  const current = freshRender();
  const filter = document.getElementById("request-filter").value;
  const list = await api("GET", "/v1/decrypt-requests" + (filter ? `?state=${filter}` : ""));
  if (!current()) return;
  const body = document.getElementById("requests-body");
  body.replaceChildren(list.requests.length ? el("div", {}, list.requests.map(requestCard))
    : el("p", {}, filter ? `No ${filter} requests.` : "No requests."));
}

async function renderAudit() {
  const current = freshRender();
  const want = {
    action: document.getElementById("f-action").value.trim(),
    client: document.getElementById("f-client").value.trim(),
    key: document.getElementById("f-key").value.trim(),
    request: document.getElementById("f-request").value.trim(),
    outcome: document.getElementById("f-outcome").value,
  };
  let entries = [];
  let after = 0;
  for (let page = 0; page < 50; page++) {
    const p = await api("GET", `/v1/audit?after=${after}&limit=1000`);
    entries = entries.concat(p.entries);
    if (p.next_after === undefined || p.next_after === null) break;
    after = p.next_after;
  }
  if (!current()) return;
  const shown = entries.filter((e) =>
    (!want.action || e.action.includes(want.action)) &&
    (!want.client || e.client === want.client) &&
    (!want.key || e.key === want.key) &&
    (!want.request || (e.details && e.details.request === want.request)) &&
    (!want.outcome || e.outcome === want.outcome)).reverse();
  const facts = (d) => {
    const keep = ["request", "reason", "comment", "state", "approvers", "items_sha256", "admin_seq", "reason", "mode"];
    return keep.filter((k) => d && d[k] !== undefined).map((k) => `${k}: ${Array.isArray(d[k]) ? d[k].join(", ") : d[k]}`).join("; ");
  };
  document.getElementById("audit-body").replaceChildren(
    el("p", {}, `${shown.length} of ${entries.length} entries on this node, newest first.`),
    el("table", { id: "audit-table" },
      el("tr", {}, ["#", "Time", "Client", "Action", "Key", "Outcome", "Details"].map((h) => el("th", {}, h))),
      shown.slice(0, 500).map((e) => el("tr", { class: "audit-entry", "data-action": e.action },
        el("td", {}, e.seq), el("td", {}, e.time), el("td", {}, e.client || ""), el("td", {}, e.action),
        el("td", {}, e.key || ""), el("td", { class: e.outcome === "ok" ? "ok" : "bad" }, e.outcome),
        el("td", { class: "mono" }, facts(e.details))))));
}

const PAGES = { status: renderStatus, keys: renderKeys, requests: renderRequests, audit: renderAudit };

// What one identity saw is not left on screen for the next, nor after a refusal.
function clearPage(name) {
  document.getElementById(`${name}-body`).replaceChildren();
}

function clearAll() {
  for (const name of Object.keys(PAGES)) clearPage(name);
  for (const id of ["f-action", "f-client", "f-key", "f-request"]) document.getElementById(id).value = "";
  showNotice("");
}

async function route() {
  const name = (location.hash || "#requests").slice(1);
  const page = PAGES[name] ? name : "requests";
  for (const id of ["welcome", ...Object.keys(PAGES)]) {
    document.getElementById(`page-${id}`).hidden = state.key ? id !== page : id !== "welcome";
  }
  for (const id of Object.keys(PAGES)) document.getElementById(`nav-${id}`).classList.toggle("active", id === page);
  if (!state.key) return;
  showError("");
  try {
    await PAGES[page]();
    document.body.dataset.loaded = page;
  } catch (e) {
    clearPage(page);
    showError(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("keyfile");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    input.value = "";
    if (!file) return;
    showError("");
    try {
      clearAll();
      await loadKeyFile(file);
      document.getElementById("who").textContent = `Signed in as ${state.client}`;
      document.getElementById("forget").hidden = false;
      await route();
    } catch (e) {
      showError(e.message);
    }
  });
  document.getElementById("forget").addEventListener("click", () => {
    clearAll();
    state.client = null;
    state.key = null;
    document.getElementById("who").textContent = "No key loaded";
    document.getElementById("forget").hidden = true;
    route();
  });
  document.getElementById("request-filter").addEventListener("change", route);
  document.getElementById("requests-refresh").addEventListener("click", route);
  document.getElementById("audit-filters").addEventListener("submit", (ev) => { ev.preventDefault(); route(); });
  window.addEventListener("hashchange", route);
  route();
});
