// One job's page: its three images side by side, the detection, the steps with their timings
// and what each reported.
// It follows the job until it ends.
import {
  TERMINAL,
  AuthError,
  annotates,
  api,
  boxFitsProcessed,
  boxedImage,
  decoded,
  h,
  imageUrl,
  keyGate,
  loadPipelines,
  ms,
  outputView,
  pipelineName,
  progress,
  statusBadge,
  when,
} from "./common.js";

const FOLLOW_MS = 700;
const jobId = decodeURIComponent(location.pathname.split("/").pop());
const summary = document.getElementById("summary");
const imagesBox = document.getElementById("images");
const detectionBox = document.getElementById("detection");
const stepsBody = document.querySelector("#steps tbody");
const pageStatus = document.getElementById("page-status");

let timer = null;
let pipelines = new Map();
let imagesFor = null; // the status the images were last loaded for
const gate = keyGate(start);

document.title = `Job ${jobId} · Image pipelines`;

function fail(error) {
  clearTimeout(timer);
  if (error instanceof AuthError) {
    gate.ask(error);
    pageStatus.textContent = "";
  } else {
    pageStatus.textContent = `Could not load the job: ${error.message}`;
    pageStatus.className = "error";
  }
}

function seconds(from, to) {
  if (!from || !to) return "—";
  return `${((new Date(to) - new Date(from)) / 1000).toFixed(2)} s`;
}

function renderSummary(job) {
  const rows = [
    ["Status", [statusBadge(job.status), " ", progress(job)]],
    ["Pipeline", `${pipelineName(pipelines, job.pipeline_id)}, version ${job.pipeline_version}`],
    ["Created", when(job.created_at)],
    ["Started", when(job.started_at)],
    ["Finished", when(job.finished_at)],
    ["Submit to end", seconds(job.created_at, job.finished_at)],
  ];
  summary.replaceChildren(
    h("h2", {}, "Job ", h("code", {}, job.job_id)),
    h("dl", { class: "facts" }, ...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    job.error ? h("p", { class: "error", role: "alert" }, job.error) : "",
    job.status === "failed" ? retryButton() : "",
  );
  summary.dataset.status = job.status;
}

// A failed job can run again from the step that failed (POST /jobs/{id}/retry); the page then
// follows it as it does a running job.
function retryButton() {
  const note = h("span", { class: "retry-note", role: "status" });
  const button = h(
    "button",
    { type: "button", id: "retry", title: "Run the job again from the step that failed" },
    "Retry",
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    note.textContent = "Retrying…";
    note.className = "retry-note";
    try {
      await api(`/jobs/${encodeURIComponent(jobId)}/retry`, { method: "POST" });
    } catch (error) {
      if (error instanceof AuthError) return fail(error);
      button.disabled = false;
      note.textContent = `Could not retry: ${error.message}`;
      note.className = "retry-note error";
      return;
    }
    clearTimeout(timer);
    load().catch(fail);
  });
  return h("p", { class: "retry" }, button, " ", note);
}

function renderDetection(job) {
  let text;
  if (job.result) {
    const r = job.result;
    text =
      `Car found with ${(r.conf * 100).toFixed(1)}% confidence: a ${r.width} × ${r.height} px box ` +
      `at (${r.top_left_x}, ${r.top_left_y}) in the image the model was sent.`;
  } else if (job.status === "succeeded") {
    text = job.steps.some((s) => s.type === "model.detect_car@v1") ? "No car found." : "This pipeline does not detect cars.";
  } else {
    text = job.status === "failed" ? "No detection: the job failed." : "No answer from the model yet.";
  }
  detectionBox.textContent = text;
}

function renderSteps(job) {
  stepsBody.replaceChildren(
    ...job.steps.map((step) =>
      h(
        "tr",
        { dataset: { status: step.status } },
        h("td", {}, String(step.position)),
        h("td", {}, h("code", {}, step.type)),
        h("td", {}, statusBadge(step.status)),
        h("td", { class: "num" }, String(step.attempts)),
        h("td", { class: "num duration" }, ms(step.duration_ms)),
        h("td", { class: "output" }, step.status === "succeeded" ? outputView(step.output) : ""),
        h("td", { class: "error" }, step.error || ""),
      ),
    ),
  );
}

function figure(variant, caption, content) {
  return h("figure", { class: "image", dataset: { variant } }, content, h("figcaption", {}, caption));
}

// The image, decoded first: a format the browser cannot show (TIFF) gets a note instead.
async function shown(url, variant, detection) {
  let img;
  try {
    img = await decoded(url);
  } catch {
    return h("p", { class: "placeholder" }, `This browser cannot show the ${variant} image.`);
  }
  if (detection === undefined) {
    img.alt = `${variant} image`;
    return img;
  }
  return boxedImage(url, img.naturalWidth, img.naturalHeight, detection, `${variant} image`);
}

async function plain(variant, missing) {
  const url = await imageUrl(jobId, variant);
  return url ? shown(url, variant) : h("p", { class: "placeholder" }, missing);
}

async function renderImages(job) {
  const done = TERMINAL.has(job.status);
  const later = done ? "none was made" : "not made yet";
  const processedUrl = await imageUrl(jobId, "processed");
  let processed;
  let processedCaption = "Processed: what the steps made of it";
  if (processedUrl) {
    const drawBox = job.result && boxFitsProcessed(job);
    processed = await shown(processedUrl, "processed", drawBox ? job.result : null);
    if (drawBox) processedCaption = "Processed, with the detected box drawn by this page";
    else if (job.result) processedCaption = "Processed (a step after the model changed its size: no box drawn)";
  } else {
    processed = h("p", { class: "placeholder" }, `No processed image: ${later}.`);
  }
  const annotatedMissing =
    annotates(job) || !done
      ? `No annotated image: ${later}.`
      : "No annotated image: this pipeline has no image.annotate@v1 step.";
  const [original, annotated] = await Promise.all([
    plain("original", "The upload is missing."),
    plain("annotated", annotatedMissing),
  ]);
  imagesBox.replaceChildren(
    figure("original", "Original: the upload", original),
    figure("processed", processedCaption, processed),
    figure("annotated", "Annotated by the pipeline (image.annotate@v1)", annotated),
  );
}

async function load() {
  const job = await api(`/jobs/${encodeURIComponent(jobId)}`);
  renderSummary(job);
  renderDetection(job);
  renderSteps(job);
  if (imagesFor !== job.status && (TERMINAL.has(job.status) || imagesFor === null)) {
    imagesFor = job.status;
    await renderImages(job);
  }
  pageStatus.textContent = "";
  if (!TERMINAL.has(job.status)) timer = setTimeout(() => load().catch(fail), FOLLOW_MS);
}

async function start() {
  clearTimeout(timer);
  imagesFor = null;
  pageStatus.textContent = "Loading…";
  pageStatus.className = "";
  try {
    pipelines = await loadPipelines();
    await load();
  } catch (error) {
    fail(error);
  }
}

start();
