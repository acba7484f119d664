// The Collections view: each collection's model, sizes and health (the doctor's verdict), its documents
// page by page (open, delete), and files uploaded into it with the ingestion job's progress.
"use strict";

const PAGE = 20;
const library = { offset: 0, total: 0 };

async function loadAccess() {
  const access = await (await api("/v1/access")).json();
  document.body.classList.toggle("read-only", access.scope === "ro");
}

async function loadLibrary() {
  showError(null);
  try {
    await loadAccess();
    const body = await (await api("/v1/collections")).json();
    $("collection-rows").replaceChildren(...body.collections.map(collectionRow));
    await Promise.all(body.collections.map((c) => health(c.name)));
    await loadDocuments(0);
  } catch (err) {
    showError(err);
  }
}

function collectionRow(c) {
  const pick = el("button", { type: "button", class: "cite", onclick: () => choose(c.name) }, c.name);
  return el("tr", {}, el("th", { scope: "row" }, pick), el("td", {}, `${c.embedding_model} (${c.provider})`),
    el("td", {}, String(c.dimension ?? "—")), el("td", {}, c.index_in_use || c.index_type),
    el("td", {}, String(c.documents)), el("td", {}, String(c.chunks)),
    el("td", { id: `health-${c.name}` }, "checking…"));
}

async function health(name) {
  const cell = $(`health-${name}`);
  try {
    const verdict = await (await api(`/v1/collections/${encodeURIComponent(name)}/health`)).json();
    cell.textContent = verdict.ok ? "ok" : `${verdict.problems.length} problem(s)`;
    cell.className = verdict.ok ? "ok" : "bad";
    cell.title = verdict.problems.join("\n");
  } catch (err) {
    cell.textContent = `unknown: ${err.message}`;
  }
}

function choose(name) {
  state.collection = name;
  $("collection").value = name;
  loadDocuments(0);
}

async function loadDocuments(offset) {
  const name = state.collection;
  if (!name) return;
  const find = $("find").value.trim();
  const query = new URLSearchParams({ offset, limit: PAGE, ...(find ? { q: find } : {}) });
  const page = await (await api(`/v1/collections/${encodeURIComponent(name)}/documents?${query}`)).json();
  library.offset = offset;
  library.total = page.total;
  $("documents-title").textContent = `Documents of ${name}`;
  $("documents").replaceChildren(...page.documents.map(documentItem));
  const last = Math.min(offset + PAGE, page.total);
  $("page-status").textContent = page.total ? `${offset + 1}-${last} of ${page.total}` : (find ? "no document matches" : "no documents");
  $("previous-page").disabled = offset === 0;
  $("next-page").disabled = last >= page.total;
}

function documentItem(doc) {
  const name = doc.title || doc.id;
  return el("li", {},
    el("span", { class: "name" }, el("strong", {}, name), el("br"), el("span", { class: "path" }, doc.path || doc.id)),
    el("span", { class: "place" }, `${doc.chunks} chunks`),
    el("button", { type: "button", "aria-label": `Open ${name}`,
      onclick: () => openDocument({ document_key: doc.id, start_char: 0, end_char: 0, heading_path: [] }, null) }, "Open"),
    el("button", { type: "button", class: "write", "aria-label": `Delete ${name}`, onclick: () => remove(doc, name) }, "Delete"));
}

async function remove(doc, name) {
  if (!window.confirm(`Delete ${name} from ${state.collection}? Its chunks and vectors go too.`)) return;
  showError(null);
  try {
    const key = doc.id.split("/").map(encodeURIComponent).join("/");
    await api(`/v1/collections/${encodeURIComponent(state.collection)}/documents/${key}`, undefined, "DELETE");
    await loadDocuments(library.offset >= library.total - 1 && library.offset ? library.offset - PAGE : library.offset);
  } catch (err) {
    showError(err);
  }
}

// Files go up through the Files API, then one ingestion job brings them in; its progress is polled.
async function upload(files) {
  if (!files.length || !state.collection) return;
  showError(null);
  const bar = $("upload-progress");
  const status = $("upload-status");
  try {
    const ids = [];
    for (const [n, file] of [...files].entries()) {
      status.textContent = `Uploading ${file.name} (${n + 1} of ${files.length})…`;
      ids.push(await uploadOne(file));
    }
    let job = await (await api("/v1/ingest-jobs", { collection: state.collection, source: { file_ids: ids } })).json();
    bar.hidden = false;
    while (!["succeeded", "failed", "cancelled"].includes(job.status)) {
      bar.max = job.documents.total || files.length;
      bar.value = job.documents.done;
      status.textContent = `Ingesting: ${job.documents.done} of ${job.documents.total ?? "?"} documents (${job.status})`;
      await new Promise((resolve) => setTimeout(resolve, 400));
      job = await (await api(`/v1/ingest-jobs/${job.id}`)).json();
    }
    bar.value = bar.max;
    const skipped = job.skips.map((s) => `${s.path}: ${s.reason}`).join("; ");
    status.textContent = `Ingestion ${job.status}: ${job.documents.added} added, ${job.documents.changed} changed, ` +
      `${job.documents.unchanged} unchanged${skipped ? `; skipped ${skipped}` : ""}. Searchable now.`;
    await loadLibrary();
    await loadCollections(); // the picker's document counts
  } catch (err) {
    status.textContent = "";
    showError(err);
  }
}

async function uploadOne(file) {
  const form = new FormData();
  form.append("file", file);
  form.append("purpose", "assistants");
  const { "content-type": _, ...auth } = headers();
  let response;
  try {
    response = await fetch("/v1/files", { method: "POST", headers: auth, body: form });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached: is searchsvc serve running?");
  }
  if (!response.ok) throw await failure(response);
  return (await response.json()).id;
}

function startLibrary() {
  $("files").addEventListener("change", (e) => upload(e.target.files));
  const zone = $("upload");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("dragging"); upload(e.dataTransfer.files); });
  $("find-form").addEventListener("submit", (e) => { e.preventDefault(); loadDocuments(0).catch(showError); });
  $("previous-page").addEventListener("click", () => loadDocuments(Math.max(0, library.offset - PAGE)));
  $("next-page").addEventListener("click", () => loadDocuments(library.offset + PAGE));
}
