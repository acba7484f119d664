// searchsvc's page: a client of the public HTTP API (/v1/collections, /v1/search, /v1/ask), no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "searchsvc-key"; // the API key, kept for this tab only (sessionStorage)
const CONVERSATIONS = "searchsvc-conversations"; // this tab's conversations: [{id, title}]
const state = { collection: null, sources: [], conversation: null };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers() {
  const key = sessionStorage.getItem(KEY);
  return { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

async function api(path, body, method) {
  let response;
  try {
    response = await fetch(path, body === undefined ? { method: method || "GET", headers: headers() }
      : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached: is searchsvc serve running?");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.error?.message || body.detail?.[0]?.msg || message;
  } catch (err) { /* not JSON: keep the status line */ }
  if (response.status === 401) { $("key-form").hidden = false; $("key").focus(); }
  if (response.status === 413) message = `Too large for this server: ${message}`;
  return new ApiError(response.status, message);
}

function showError(err) {
  const line = $("error");
  line.textContent = err ? (err.status ? `Error ${err.status}: ${err.message}` : err.message) : "";
  line.hidden = !err;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// The text with the query's words marked (built from text nodes: nothing in a document is HTML here).
function highlighted(text, query) {
  const words = (query.match(/[\p{L}\p{N}_]{3,}/gu) || []).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length) return [document.createTextNode(text)];
  const pattern = new RegExp(`(${words.join("|")})`, "giu");
  return text.split(pattern).map((part, i) => (i % 2 ? el("mark", {}, part) : document.createTextNode(part)));
}

function place(hit) {
  const parts = [];
  if (hit.heading_path?.length) parts.push(hit.heading_path.join(" › "));
  if (hit.page) parts.push(`page ${hit.page}`);
  else if (hit.line_start) parts.push(`lines ${hit.line_start}-${hit.line_end}`);
  return parts.join(" · ");
}

async function loadCollections() {
  const body = await (await api("/v1/collections")).json();
  const picker = $("collection");
  picker.replaceChildren(...body.collections.map((c) =>
    el("option", { value: c.name }, `${c.name} (${c.documents} document${c.documents === 1 ? "" : "s"})`)));
  const wanted = state.collection || new URLSearchParams(location.search).get("collection");
  if (wanted && body.collections.some((c) => c.name === wanted)) picker.value = wanted;
  state.collection = picker.value || null;
  if (!body.collections.length) showError(new Error("No collections yet: ingest some documents first (searchsvc ingest PATH)."));
}

async function search(event) {
  event.preventDefault();
  showError(null);
  const query = $("q").value;
  const request = { query, collection: state.collection, mode: $("mode").value, k: 10 };
  const filter = $("filter").value.trim();
  if (filter) {
    try { request.filter = JSON.parse(filter); } catch (err) {
      showError(new Error(`The filter is not JSON (${err.message}): write it like {"metadata.year": {"$gte": 2020}}`));
      return;
    }
  }
  $("search-status").textContent = "Searching…";
  const started = performance.now();
  try {
    const body = await (await api("/v1/search", request)).json();
    const ms = Math.round(performance.now() - started);
    $("search-status").textContent = `${body.results.length} results in ${ms} ms`;
    $("results").replaceChildren(...body.results.map((hit) => resultItem(hit, query)));
  } catch (err) {
    $("search-status").textContent = "";
    showError(err);
  }
}

function resultItem(hit, query) {
  return el("li", { class: "hit" },
    el("div", { class: "hit-head" },
      el("strong", {}, hit.title || hit.document_key),
      el("span", { class: "score", title: "score" }, hit.score.toFixed(3))),
    el("div", { class: "path" }, hit.path || hit.document_key),
    el("div", { class: "place" }, place(hit)),
    el("p", { class: "snippet" }, ...highlighted(hit.text, query)),
    el("button", { type: "button", class: "open", onclick: () => openDocument(hit, null) }, "Open at this place"));
}

// The document rebuilt from its chunks at their character offsets, the chunk's span (or a quote in it) marked.
async function openDocument(hit, quote) {
  showError(null);
  try {
    const key = hit.document_key.split("/").map(encodeURIComponent).join("/");
    const doc = await (await api(`/v1/collections/${encodeURIComponent(state.collection)}/documents/${key}`)).json();
    const text = rebuild(doc.chunks);
    let [start, end] = [hit.start_char, hit.end_char];
    const at = quote ? text.slice(start, end).indexOf(quote) : -1;
    if (at >= 0) [start, end] = [start + at, start + at + quote.length];
    const mark = el("mark", { id: "here", class: "here" }, text.slice(start, end));
    $("viewer-text").replaceChildren(text.slice(0, start), mark, text.slice(end));
    $("viewer-title").textContent = doc.title || doc.id;
    $("viewer-place").textContent = [doc.path, place(hit)].filter(Boolean).join(" — ");
    $("viewer").hidden = false;
    mark.scrollIntoView({ block: "start" });
    $("viewer-text").focus({ preventScroll: true });
  } catch (err) {
    showError(err);
  }
}

function rebuild(chunks) {
  let text = "";
  for (const chunk of [...chunks].sort((a, b) => a.start_char - b.start_char)) {
    if (chunk.start_char > text.length) text += " ".repeat(chunk.start_char - text.length);
    if (chunk.end_char > text.length) text += chunk.text.slice(text.length - chunk.start_char);
  }
  return text;
}

function generation() {
  const settings = {};
  if ($("model").value.trim()) settings.model = $("model").value.trim();
  if ($("temperature").value) settings.temperature = Number($("temperature").value);
  if ($("max-tokens").value) settings.max_tokens = Number($("max-tokens").value);
  return settings;
}

// /v1/ask streamed (server-sent events read from the response body as they arrive), in this tab's
// conversation; with models to compare, one request answered by each, side by side.
async function ask(event) {
  event.preventDefault();
  showError(null);
  const compare = $("compare").value.split(",").map((m) => m.trim()).filter(Boolean);
  if (compare.length) return askSideBySide(compare);
  const question = $("question").value;
  keepTurn();
  const answer = $("answer");
  $("ask-status").textContent = "Searching and writing…";
  const started = performance.now();
  state.conversation = state.conversation || `ui-${crypto.randomUUID()}`;
  try {
    const response = await api("/v1/ask", { question, collection: state.collection, stream: true,
      conversation_id: state.conversation, ...generation() });
    answer.dataset.question = question;
    $("current-question").textContent = question;
    remember(state.conversation, question);
    for await (const [name, data] of events(response)) {
      if (name === "sources") state.sources = data.sources;
      else if (name === "delta") answer.append(data.text);
      else if (name === "error") throw new ApiError(502, data.error.message);
      else if (name === "done") finish(data, Math.round(performance.now() - started));
    }
  } catch (err) {
    $("ask-status").textContent = "";
    showError(err);
  }
}

// The turn on screen moves up to the earlier turns when a follow-up is asked.
function keepTurn() {
  const answer = $("answer");
  if (answer.textContent && answer.dataset.question) {
    $("earlier").append(turnItem(answer.dataset.question, answer.textContent));
  }
  answer.replaceChildren();
  answer.classList.remove("unknown");
  $("current-question").textContent = "";
  $("citations").replaceChildren();
  $("comparison").replaceChildren();
}

function turnItem(question, answer) {
  return el("li", {}, el("div", { class: "q" }, question), el("div", {}, answer));
}

async function askSideBySide(compare) {
  const models = [generation().model, ...compare].filter(Boolean);
  if (models.length < 2) return showError(new Error("Name two models to compare: a model and at least one more."));
  keepTurn();
  $("ask-status").textContent = `Asking ${models.length} models…`;
  const { model, ...settings } = generation();
  try {
    const body = await (await api("/v1/ask", { question: $("question").value, collection: state.collection,
      models, ...settings })).json();
    $("ask-status").textContent = `${models.length} answers from the same ${body.sources.length} sources`;
    $("comparison").replaceChildren(...body.answers.map((a) => el("section", { "aria-label": a.model || "model" },
      el("h3", {}, a.model || "?"),
      el("p", { class: "meta" }, a.error ? "failed" : `${Math.round(a.latency_ms)} ms · ${a.usage?.total_tokens ?? "?"} tokens`),
      el("p", {}, a.error ? a.error.message : a.answer))));
  } catch (err) {
    $("ask-status").textContent = "";
    showError(err);
  }
}

function conversations() {
  return JSON.parse(sessionStorage.getItem(CONVERSATIONS) || "[]");
}

function remember(id, question) {
  const known = conversations();
  if (!known.some((c) => c.id === id)) sessionStorage.setItem(CONVERSATIONS, JSON.stringify([{ id, title: question }, ...known]));
  listConversations();
}

function listConversations() {
  $("conversation-list").replaceChildren(...conversations().map((c) => el("li",
    { "aria-current": String(c.id === state.conversation) },
    el("button", { type: "button", title: c.title, onclick: () => openConversation(c.id) }, c.title),
    el("button", { type: "button", "aria-label": `Delete the conversation ${c.title}`, onclick: () => dropConversation(c.id) }, "✕"))));
}

async function openConversation(id) {
  showError(null);
  try {
    const thread = await (await api(`/v1/conversations/${encodeURIComponent(id)}`)).json();
    state.conversation = id;
    keepTurn();
    const messages = thread.messages;
    $("earlier").replaceChildren(...messages.filter((m) => m.role === "user").map((m, n) =>
      turnItem(m.content, messages.filter((r) => r.role === "assistant")[n]?.content || "")));
    listConversations();
    $("question").focus();
  } catch (err) {
    showError(err);
  }
}

async function dropConversation(id) {
  showError(null);
  try {
    await api(`/v1/conversations/${encodeURIComponent(id)}`, undefined, "DELETE");
  } catch (err) {
    if (err.status !== 404) return showError(err);
  }
  sessionStorage.setItem(CONVERSATIONS, JSON.stringify(conversations().filter((c) => c.id !== id)));
  if (state.conversation === id) newConversation();
  listConversations();
}

function newConversation() {
  state.conversation = null;
  $("earlier").replaceChildren();
  keepTurn();
  $("earlier").replaceChildren();
  listConversations();
}

async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (name && data) yield [name, JSON.parse(data)];
    }
  }
}

function finish(done, ms) {
  const answer = $("answer");
  if (!done.answered) answer.classList.add("unknown");
  linkMarkers(answer, done.citations);
  $("citations").replaceChildren(...done.citations.map((c) => el("li", { id: `cite-${c.number}` },
    el("button", { type: "button", class: "cite", onclick: () => openCitation(c) }, `[${c.number}]`),
    ` ${c.title || c.document_key} — ${c.location}`, el("blockquote", {}, c.quote))));
  const usage = done.usage?.total_tokens ? `, ${done.usage.total_tokens} tokens` : "";
  $("ask-status").textContent = `${done.answered ? "Answered" : "I don't know"} in ${ms} ms (${done.mode}${usage})`;
}

function linkMarkers(answer, citations) {
  const known = new Map(citations.map((c) => [c.number, c]));
  const parts = answer.textContent.split(/(\[\d+\])/);
  answer.replaceChildren(...parts.map((part) => {
    const cited = known.get(Number(/^\[(\d+)\]$/.exec(part)?.[1]));
    return cited ? el("button", { type: "button", class: "marker", "aria-label": `Source ${cited.number}`,
      onclick: () => openCitation(cited) }, part) : document.createTextNode(part);
  }));
}

function openCitation(citation) {
  openDocument({ ...citation, document_key: citation.document_key }, citation.quote);
}

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  $("view-search").hidden = name !== "search";
  $("view-ask").hidden = name !== "ask";
  $("view-library").hidden = name !== "library";
  if (name === "library") loadLibrary();
  else $(name === "search" ? "q" : "question").focus();
}

async function start() {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("search-form").addEventListener("submit", search);
  $("ask-form").addEventListener("submit", ask);
  $("collection").addEventListener("change", (e) => {
    state.collection = e.target.value;
    if (!$("view-library").hidden) loadDocuments(0).catch(showError);
  });
  $("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });
  $("new-conversation").addEventListener("click", newConversation);
  startLibrary();
  listConversations();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("key-form").hidden = true;
    refreshCollections();
  });
  refreshCollections();
}

async function refreshCollections() {
  try {
    showError(null);
    await loadCollections();
    await loadAccess();
  } catch (err) {
    showError(err);
  }
}

document.addEventListener("DOMContentLoaded", start); // after library.js, deferred too, has run
