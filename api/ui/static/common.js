// What both results pages share: API calls carrying the key, images as blob URLs, the key
// prompt, and building DOM nodes. Data only ever reaches the page as text nodes or attributes.

const KEY_STORE = "pipelines.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
export const TERMINAL = new Set(["succeeded", "failed"]);

// Steps after which the image no longer has the size the model saw.
const RESIZING_STEPS = new Set(["image.fit@v1", "image.resize@v1", "image.crop@v1"]);
const DETECT_STEP = "model.detect_car@v1";
const ANNOTATE_STEP = "image.annotate@v1";

export class AuthError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

async function failure(response) {
  let code = `http_${response.status}`;
  let message = `the API answered HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the generic message
  }
  return response.status === 401 ? new AuthError(code, message) : new ApiFailure(response.status, code, message);
}

/** Fetch JSON from the API with the key; throws AuthError on 401, ApiFailure on other errors. */
export async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
    });
  } catch (err) {
    throw new ApiFailure(0, "unreachable", `the API could not be reached (${err.message})`);
  }
  if (!response.ok) {
    throw await failure(response);
  }
  return response.json();
}

/** A job's image as a blob URL (an <img src> could not send the key); null if it has none. */
export async function imageUrl(jobId, variant) {
  const response = await fetch(`/jobs/${encodeURIComponent(jobId)}/image?variant=${variant}`, {
    headers: authHeaders(),
  });
  if (response.status === 404) {
    return null;
  }
  if (!response.ok) {
    throw await failure(response);
  }
  return URL.createObjectURL(await response.blob());
}

/** Load a blob URL into an Image to learn its pixel size. */
export async function decoded(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

/** An element with attributes and children; strings become text nodes, never markup. */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/**
 * The image with the detected box drawn over it, as SVG: the image and the box share the
 * image's pixel coordinates (the viewBox), so the box scales with whatever size it is shown at.
 */
export function boxedImage(url, width, height, detection, label) {
  const figure = svg(
    "svg",
    {
      class: "boxed",
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "xMidYMid meet",
      role: "img",
      "aria-label": label,
      dataset: { naturalWidth: width, naturalHeight: height },
    },
    svg("image", { href: url, x: 0, y: 0, width, height }),
  );
  if (detection) {
    figure.append(
      svg("rect", {
        class: "box",
        x: detection.top_left_x,
        y: detection.top_left_y,
        width: detection.width,
        height: detection.height,
      }),
    );
  }
  return figure;
}

function stepIndex(job, type) {
  return job.steps.findIndex((step) => step.type === type);
}

export function annotates(job) {
  return job.steps.some((step) => step.type === ANNOTATE_STEP && step.status === "succeeded");
}

/**
 * Whether the box can be drawn over the processed image: the model's coordinates are in the
 * pixels of the image it was sent, which stays the processed image unless a later step
 * changes its size.
 */
export function boxFitsProcessed(job) {
  const detect = stepIndex(job, DETECT_STEP);
  return !job.steps.some((step, i) => i > detect && RESIZING_STEPS.has(step.type));
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status);
}

export function progress(job) {
  if (job.status !== "running" || !job.current_step) return "";
  const step = job.steps.find((s) => s.position === job.current_step);
  return `step ${job.current_step} of ${job.steps.length}${step ? ` (${step.type})` : ""}`;
}

export function confidence(job) {
  if (job.result) return `car, ${(job.result.conf * 100).toFixed(1)}% confidence`;
  if (job.status === "succeeded" && stepIndex(job, DETECT_STEP) >= 0) return "no car";
  return "";
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function ms(value) {
  return value === null || value === undefined ? "—" : `${value.toFixed(1)} ms`;
}

export function pipelineName(pipelines, id) {
  const found = pipelines.get(id);
  return found ? `#${id} ${found.name}` : `#${id}`;
}

/** Loads every pipeline: names for the cards, and the choices of the selects. */
export async function loadPipelines() {
  const list = await api("/pipelines");
  return new Map(list.map((p) => [p.id, p]));
}

/**
 * The key prompt. ask() shows it with the API's reason; a key typed in is kept in this tab
 * (sessionStorage) and onKey() runs to load the page again with it.
 */
export function keyGate(onKey) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  const message = document.getElementById("key-message");
  const forget = document.getElementById("forget-key");
  const showForget = () => {
    forget.hidden = !apiKey();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, input.value.trim());
    input.value = "";
    form.hidden = true;
    showForget();
    onKey();
  });
  forget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    showForget();
    onKey();
  });
  showForget();
  return {
    ask(error) {
      message.textContent =
        error.code === "invalid_api_key"
          ? "The API key was not accepted. Check it and enter it again."
          : "This service needs an API key to show its jobs. Enter yours below.";
      form.hidden = false;
      showForget();
      input.focus();
    },
  };
}

// An output with more figures than this is shown as JSON, folded, rather than as a table.
const OUTPUT_ROWS = 12;

function outputValue(value) {
  if (value === null || value === undefined) return h("span", { class: "none" }, "none");
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") return value;
  return h("code", {}, JSON.stringify(value));
}

// Rows of [name, value]; an object one level down is spread out as "name.field".
function outputRows(output) {
  return Object.entries(output).flatMap(([name, value]) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.entries(value).map(([field, inner]) => [`${name}.${field}`, inner])
      : [[name, value]],
  );
}

/**
 * A step's output (GET /jobs/{id}, steps[].output) for people: its figures as a small two-column
 * table (a definition list, so that it does not nest rows in the steps table),
 * or, when there are many, the JSON folded away. A step that reports nothing shows a dash.
 */
export function outputView(output) {
  if (output === null || output === undefined) return h("span", { class: "none" }, "—");
  const rows = outputRows(output);
  if (rows.length > OUTPUT_ROWS) {
    return h(
      "details",
      { class: "output-json" },
      h("summary", {}, `${rows.length} figures`),
      h("pre", {}, JSON.stringify(output, null, 2)),
    );
  }
  return h(
    "dl",
    { class: "output" },
    ...rows.map(([name, value]) =>
      h("div", { dataset: { field: name } }, h("dt", {}, name), h("dd", {}, outputValue(value))),
    ),
  );
}
