// The jobs page: recent jobs as cards (refreshed every few seconds), filters, and the upload
// form, whose jobs are followed until they end.
import {
  TERMINAL,
  AuthError,
  annotates,
  api,
  boxFitsProcessed,
  boxedImage,
  confidence,
  decoded,
  h,
  imageUrl,
  keyGate,
  loadPipelines,
  pipelineName,
  progress,
  statusBadge,
  when,
} from "./common.js";

const PAGE = 24;
const REFRESH_MS = 3000;
const FOLLOW_MS = 400;
const THUMBS_KEPT = 300;

const jobsBox = document.getElementById("jobs");
const uploadsBox = document.getElementById("uploads");
const listStatus = document.getElementById("list-status");
const filters = document.getElementById("filters");
const uploadForm = document.getElementById("upload-form");
const uploadStatus = document.getElementById("upload-status");
const more = document.getElementById("more");

const state = {
  pipelines: new Map(),
  limit: PAGE,
  timer: null,
  generation: 0, // bumped by a new key or new filters: answers to older requests are dropped
  locked: false, // waiting for a key
};
const thumbs = new Map(); // job id -> {key, promise of the thumbnail node}
const gate = keyGate(start);

function stop(error) {
  clearTimeout(state.timer);
  state.timer = null;
  if (error instanceof AuthError) {
    state.locked = true;
    gate.ask(error);
    listStatus.textContent = "";
    return true;
  }
  return false;
}

// Thumbnails: the annotated image when the pipeline drew one, else the processed image (the
// one the model saw) with the box drawn over it, else the upload.
async function thumbnail(job) {
  if (annotates(job)) {
    const url = await imageUrl(job.job_id, "annotated");
    if (url) return framed(url, null, "annotated");
  }
  const processed = await imageUrl(job.job_id, "processed");
  if (processed) {
    return framed(processed, boxFitsProcessed(job) ? job.result : null, "processed");
  }
  const original = await imageUrl(job.job_id, "original");
  return original ? framed(original, null, "original") : h("span", { class: "placeholder" }, "no image");
}

async function framed(url, detection, variant) {
  let img;
  try {
    img = await decoded(url);
  } catch {
    // a format browsers do not show (TIFF): say so rather than fetch it again every refresh
    return h("span", { class: "placeholder" }, `this browser cannot show the ${variant} image`);
  }
  const label = `${variant} image${detection ? " with the detected box" : ""}`;
  const node = boxedImage(url, img.naturalWidth, img.naturalHeight, detection, label);
  node.dataset.variant = variant;
  return node;
}

function thumbnailOf(job) {
  const key = `${job.status}|${job.finished_at}`;
  const cached = thumbs.get(job.job_id);
  if (cached && cached.key === key) return cached.promise;
  const promise = thumbnail(job);
  promise.catch(() => thumbs.delete(job.job_id)); // try again at the next refresh
  thumbs.set(job.job_id, { key, promise });
  if (thumbs.size > THUMBS_KEPT) {
    const [oldest] = thumbs.keys();
    thumbs.get(oldest).promise.then((node) => revoke(node), () => {});
    thumbs.delete(oldest);
  }
  return promise;
}

function revoke(node) {
  const image = node.querySelector && node.querySelector("image");
  if (image) URL.revokeObjectURL(image.getAttribute("href"));
}

function card(job) {
  const link = `/ui/jobs/${encodeURIComponent(job.job_id)}`;
  const thumb = h("a", { class: "thumb", href: link, "aria-label": `job ${job.job_id}` });
  if (TERMINAL.has(job.status)) {
    thumb.append(h("span", { class: "placeholder" }, "loading image…"));
    thumbnailOf(job).then(
      (node) => thumb.replaceChildren(node.cloneNode(true)),
      (error) => {
        if (!stop(error)) thumb.replaceChildren(h("span", { class: "placeholder" }, "image not available"));
      },
    );
  } else {
    thumb.append(h("span", { class: "placeholder" }, job.status === "queued" ? "waiting for a worker…" : "working…"));
  }
  const shownConfidence = confidence(job);
  return h(
    "article",
    {
      class: "card",
      dataset: { jobId: job.job_id, status: job.status, pipelineId: job.pipeline_id },
    },
    thumb,
    h(
      "div",
      { class: "card-body" },
      h("div", { class: "row" }, statusBadge(job.status), h("span", { class: "progress" }, progress(job))),
      h("div", { class: "pipeline" }, pipelineName(state.pipelines, job.pipeline_id)),
      shownConfidence && h("div", { class: "confidence" }, shownConfidence),
      job.error && h("p", { class: "error" }, job.error),
      h("a", { class: "when", href: link }, when(job.created_at)),
    ),
  );
}

// Cards whose job has not changed are kept as they are (with their loaded image).
function signature(job) {
  return JSON.stringify([job.status, job.current_step, job.result, job.error, job.finished_at]);
}

function render(box, jobs) {
  const existing = new Map([...box.children].map((el) => [el.dataset.jobId, el]));
  const nodes = jobs.map((job) => {
    const el = existing.get(job.job_id);
    if (el && el.dataset.signature === signature(job)) return el;
    const fresh = card(job);
    fresh.dataset.signature = signature(job);
    return fresh;
  });
  box.replaceChildren(...nodes);
}

function query() {
  const params = new URLSearchParams({ limit: String(state.limit) });
  const form = new FormData(filters);
  for (const name of ["pipeline_id", "status"]) {
    const value = form.get(name);
    if (value) params.set(name, value);
  }
  return params;
}

async function refresh() {
  clearTimeout(state.timer);
  const generation = state.generation;
  try {
    const page = await api(`/jobs?${query()}`);
    if (generation !== state.generation) return;
    render(jobsBox, page.items);
    listStatus.textContent = page.items.length ? "" : "No jobs match these filters yet.";
    more.hidden = page.next_cursor === null;
  } catch (error) {
    if (generation !== state.generation || stop(error)) return;
    listStatus.textContent = `Could not load the jobs: ${error.message}`;
  }
  state.timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 4 : REFRESH_MS);
}

function option(value, text) {
  return h("option", { value }, text);
}

function fillSelects() {
  const filterSelect = filters.elements.pipeline_id;
  const chosen = filterSelect.value;
  // Archived pipelines take no new jobs but keep theirs: listed apart, and labelled so.
  const all = [...state.pipelines.values()];
  const archived = all.filter((p) => p.archived_at !== null);
  filterSelect.replaceChildren(
    option("", "All pipelines"),
    ...all.filter((p) => p.archived_at === null).map((p) => option(p.id, pipelineName(state.pipelines, p.id))),
    archived.length
      ? h(
          "optgroup",
          { label: "Archived" },
          ...archived.map((p) => option(p.id, `${pipelineName(state.pipelines, p.id)} (archived)`)),
        )
      : null,
  );
  filterSelect.value = state.pipelines.has(Number(chosen)) ? chosen : "";
  const uploadSelect = uploadForm.elements.pipeline_id;
  const current = uploadSelect.value;
  const open = [...state.pipelines.values()].filter((p) => p.archived_at === null);
  uploadSelect.replaceChildren(...open.map((p) => option(p.id, pipelineName(state.pipelines, p.id))));
  if (open.some((p) => String(p.id) === current)) uploadSelect.value = current;
}

// Filters live in the address too, so a filtered list can be bookmarked or shared.
function readFiltersFromAddress() {
  const params = new URLSearchParams(location.search);
  filters.elements.status.value = params.get("status") || "";
  filters.elements.pipeline_id.dataset.wanted = params.get("pipeline_id") || "";
}

function writeFiltersToAddress() {
  const params = new URLSearchParams();
  const form = new FormData(filters);
  for (const [name, value] of form) if (value) params.set(name, value);
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

async function start() {
  state.generation += 1;
  state.locked = false;
  listStatus.textContent = "Loading…";
  try {
    state.pipelines = await loadPipelines();
  } catch (error) {
    if (!stop(error)) listStatus.textContent = `Could not load the pipelines: ${error.message}`;
    return;
  }
  fillSelects();
  const wanted = filters.elements.pipeline_id.dataset.wanted;
  if (wanted && state.pipelines.has(Number(wanted))) filters.elements.pipeline_id.value = wanted;
  refresh();
  for (const [jobId, job] of uploaded) if (!TERMINAL.has(job.status)) follow(jobId);
}

filters.addEventListener("change", () => {
  state.generation += 1;
  state.limit = PAGE;
  writeFiltersToAddress();
  refresh();
});

more.addEventListener("click", () => {
  state.limit = Math.min(state.limit + PAGE, 500);
  state.generation += 1;
  refresh();
});

// An uploaded job gets a card of its own here, followed until it ends, whatever the filters.
const uploaded = new Map(); // job id -> the latest answer about it, oldest upload first
const following = new Set();

function renderUploads() {
  render(uploadsBox, [...uploaded.values()].reverse());
}

async function follow(jobId) {
  if (following.has(jobId)) return;
  following.add(jobId);
  try {
    while (!TERMINAL.has(uploaded.get(jobId).status)) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
      try {
        uploaded.set(jobId, await api(`/jobs/${encodeURIComponent(jobId)}`));
      } catch (error) {
        if (stop(error)) return; // start() follows it again once there is a key
        continue; // a passing failure: ask again
      }
      renderUploads();
    }
  } finally {
    following.delete(jobId);
  }
  if (!state.locked) refresh();
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = uploadForm.elements.image.files[0];
  const pipelineId = uploadForm.elements.pipeline_id.value;
  if (!file || !pipelineId) return;
  const body = new FormData();
  body.append("image", file);
  body.append("pipeline_id", pipelineId);
  const button = uploadForm.querySelector("button");
  button.disabled = true;
  uploadStatus.textContent = `Uploading ${file.name}…`;
  uploadStatus.className = "";
  try {
    const accepted = await api("/jobs", { method: "POST", body });
    uploadStatus.textContent = `${file.name} was submitted as job ${accepted.job_id}.`;
    uploadForm.elements.image.value = "";
    const job = {
      job_id: accepted.job_id,
      pipeline_id: Number(pipelineId),
      status: accepted.status,
      current_step: null,
      steps: [],
      result: null,
      error: null,
      created_at: new Date().toISOString(),
      finished_at: null,
    };
    uploaded.set(job.job_id, job);
    renderUploads();
    follow(job.job_id);
  } catch (error) {
    if (!stop(error)) {
      uploadStatus.textContent = `${file.name} was not accepted: ${error.message}`;
      uploadStatus.className = "error";
    }
  } finally {
    button.disabled = false;
  }
});

readFiltersFromAddress();
start();
