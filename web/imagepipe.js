// imagepipe.js — the browser client of imagepipe's API. An ES module: no build step, no
// dependency, nothing loaded from a CDN. docs/frontend.md shows how a frontend uses it.
//
//   import { uploadImages, imageSources, renderImage, Gallery } from "/web/imagepipe.js";
//
// Every function that calls the API takes `{ token, apiBase }`: `token` is the bearer token the
// platform minted for the user (writing routes need it; reading a public gallery does not),
// `apiBase` the API's origin ("" when the page is served by the API itself).

/**
 * `sizes` per display context: how wide the image is drawn, so the browser picks the smallest
 * rendition that fills it at the screen's density (docs/frontend.md explains each).
 *  - list:   a listing card's thumbnail, 300 CSS px beside the text from 40em, full width below
 *  - grid:   a gallery cell, three columns from 64em, two from 40em, one below
 *  - detail: the photo page, the full width of the viewport up to 1600 px
 */
export const SIZES = {
  list: "(min-width: 40em) 300px, 100vw",
  grid: "(min-width: 64em) 33vw, (min-width: 40em) 50vw, 100vw",
  detail: "(min-width: 1600px) 1600px, 100vw",
};

/**
 * How wide (CSS px) an `<img src>` should be in each context, for browsers without srcset: the
 * narrowest rendition at least this wide, else the widest. The client knows no rendition names or
 * widths: they are the API's (each rendition in the image JSON carries its own).
 */
const FALLBACK_WIDTH = { list: 300, grid: 800, detail: 1600 };

/** Files above this many bytes go straight to the bucket (presigned POST), not through the API. */
export const DEFAULT_DIRECT_THRESHOLD = 8 * 1024 * 1024;

const TERMINAL = new Set(["succeeded", "failed", "partial"]);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(path, { token, apiBase = "", method = "GET", json, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(apiBase + path, init);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_" + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

/** XHR, for its upload progress events (fetch has none). Resolves with { status, body }. */
function send(method, url, body, { headers = {}, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let parsed = null;
      try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { parsed = null; }
      resolve({ status: xhr.status, body: parsed, text: xhr.responseText });
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload did not reach the server"));
    xhr.send(body);
  });
}

function refusal(status, body, text) {
  if (body && body.error) return new ApiError(status, body.error.code, body.error.message);
  // S3 answers in XML: <Code>…</Code><Message>…</Message>
  const code = /<Code>([^<]+)<\/Code>/.exec(text || "");
  const message = /<Message>([^<]+)<\/Message>/.exec(text || "");
  return new ApiError(status, code ? code[1] : "http_" + status, message ? message[1] : "the upload was refused");
}

// The file as the request body (PUT .../images/{filename}): no multipart for the API to parse.
async function uploadThroughApi(entity, id, file, opts, onProgress) {
  const headers = { "Content-Type": file.type || "application/octet-stream" };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const name = encodeURIComponent(file.name || "image");
  const { status, body, text } = await send("PUT", `${opts.apiBase || ""}/api/v1/${entity}/${id}/images/${name}`, file,
    { headers, onProgress });
  if (status !== 202) throw refusal(status, body, text);
  return { job: body.job, image: body.images[0] };
}

/** The file's SHA-256 (hex), where the page may compute it (SubtleCrypto: https or localhost); else null. */
async function sha256Hex(file) {
  if (!globalThis.crypto || !crypto.subtle || !file.arrayBuffer) return null;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function uploadDirect(entity, id, file, opts, onProgress) {
  const base = opts.apiBase || "";
  // Declared, the hash is pinned as the upload's checksum: the store takes only these bytes and
  // the API completes without reading the whole file back.
  const sha256 = await sha256Hex(file);
  const grant = await call("/api/v1/uploads", { ...opts, method: "POST", json: {
    entity, entity_id: Number(id), filename: file.name, content_type: file.type || "application/octet-stream",
    size: file.size, ...(sha256 ? { sha256 } : {}) } });
  const form = new FormData();
  for (const [name, value] of Object.entries(grant.fields)) form.append(name, value);
  form.append("file", file, file.name);  // the file goes last in a POST policy upload
  const posted = await send("POST", grant.url, form, { onProgress });
  if (posted.status < 200 || posted.status >= 300) throw refusal(posted.status, posted.body, posted.text);
  const done = await call(grant.complete_url, { ...opts, method: "POST" });
  return { job: done.job, image: done.images[0] };
}

/**
 * Upload `files` to an entity's gallery and follow each through processing.
 *
 * Each file is uploaded on its own (its own progress), files above `directThreshold` bytes
 * straight to the bucket. Then its job is polled (backoff from 0.5 s to 5 s, stopping when the
 * job ends) until the image is ready or failed. `onProgress(index, fraction)` follows the
 * bytes; `onUpdate(index, state)` every change of
 *   state = { file, phase: "uploading" | "processing" | "ready" | "failed", progress, direct,
 *             image?, error?: { code, message } }.
 * Resolves with the final states, in the order of `files`.
 */
export async function uploadImages(entity, id, files, opts = {}) {
  const { onProgress = () => {}, onUpdate = () => {}, directThreshold = DEFAULT_DIRECT_THRESHOLD } = opts;
  return Promise.all(Array.from(files).map(async (file, index) => {
    const state = { file, phase: "uploading", progress: 0, direct: file.size > directThreshold };
    const update = (changes) => { Object.assign(state, changes); onUpdate(index, { ...state }); };
    update({});
    try {
      const progress = (fraction) => { state.progress = fraction; onProgress(index, fraction); };
      const upload = state.direct ? uploadDirect : uploadThroughApi;
      const { job, image } = await upload(entity, id, file, opts, progress);
      update({ phase: "processing", progress: 1, image });
      const finished = await followJob(job.status_url, opts);
      const mine = finished.images.find((i) => i.id === image.id) || finished.images[0];
      if (mine.status === "ready") {
        update({ phase: "ready", image: await call(`/api/v1/images/${mine.id}`, opts) });
      } else {
        update({ phase: "failed", image: mine, error: mine.error || { code: mine.status, message: mine.status } });
      }
    } catch (error) {
      update({ phase: "failed", error: { code: error.code || "error", message: error.message } });
    }
    return state;
  }));
}

/** Poll a job until it ends (0.5 s, then ×1.5 up to 5 s between polls). */
export async function followJob(statusUrl, opts = {}) {
  let delay = 500;
  for (;;) {
    const job = await call(statusUrl, opts);
    if (TERMINAL.has(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(5000, delay * 1.5);
  }
}

// Renditions padded to a box for MLS syndication (pipeline/specs.py: box_height): never displayed.
const NOT_FOR_DISPLAY = new Set(["mls"]);

function srcset(renditions, format) {
  const seen = new Map();  // width → url: a small original gives several renditions one width
  for (const name of Object.keys(renditions)) {
    if (NOT_FOR_DISPLAY.has(name)) continue;
    const r = renditions[name][format];
    if (r && !seen.has(r.width)) seen.set(r.width, r.url);
  }
  return [...seen].sort((a, b) => a[0] - b[0]).map(([w, url]) => `${url} ${w}w`).join(", ");
}

function fallbackRendition(renditions, format, wanted) {
  const candidates = Object.entries(renditions).filter(([name]) => !NOT_FOR_DISPLAY.has(name))
    .map(([, byFormat]) => byFormat[format] || Object.values(byFormat)[0])
    .filter(Boolean).sort((a, b) => a.width - b.width);
  return candidates.find((r) => r.width >= wanted) || candidates[candidates.length - 1] || null;
}

/** The entity types the API accepts, read from its contract (GET /api/v1/openapi.json). */
export async function entityTypes({ apiBase = "" } = {}) {
  const contract = await call("/api/v1/openapi.json", { apiBase });
  const upload = contract.paths["/api/v1/{entity}/{entity_id}/images"];
  return upload.parameters.find((p) => p.name === "entity").schema.enum;
}

/**
 * What a `<picture>` needs to show `image` (the API's image JSON) in `context` (list, grid,
 * detail): modern formats as `<source>`s with a srcset over every width, the JPEG (PNG for
 * images with alpha) fallback with its own srcset, the intrinsic width and height (no layout
 * shift), and the placeholder. Works with S3 and CloudFront URLs alike: the URLs are the API's.
 */
export function imageSources(image, context = "grid") {
  const sizes = SIZES[context];
  if (!sizes) throw new Error(`context must be one of ${Object.keys(SIZES).join(", ")}`);
  const renditions = image.renditions || {};
  const fallbackFormat = Object.values(renditions).some((r) => r.png) ? "png" : "jpeg";
  const sources = [];
  for (const [format, type] of [["avif", "image/avif"], ["webp", "image/webp"]]) {
    const set = srcset(renditions, format);
    if (set) sources.push({ type, srcset: set, sizes });
  }
  const main = fallbackRendition(renditions, fallbackFormat, FALLBACK_WIDTH[context]);
  return {
    sources,
    img: main ? { src: main.url, srcset: srcset(renditions, fallbackFormat), sizes, width: main.width,
                  height: main.height } : null,
    placeholder: image.placeholder ? { blurhash: image.placeholder.blurhash, color: image.placeholder.dominant_color }
      : null,
    alt: image.alt_text || "",
  };
}

/**
 * A `<figure class="ip-image">` showing `image`: the BlurHash (or the dominant colour) until the
 * photo loads, then the photo; a fallback box if it cannot load. `loading="lazy"` and
 * `decoding="async"` always; `cover: true` in the detail view loads it first
 * (`fetchpriority="high"`, not lazy). `alt` defaults to the image's alt text.
 */
export function renderImage(image, context = "grid", { cover = false, alt } = {}) {
  const s = imageSources(image, context);
  const frame = document.createElement("div");
  frame.className = "ip-image ip-loading";
  frame.dataset.context = context;
  frame.dataset.imageId = image.id;
  const label = alt !== undefined ? alt : (s.alt || `Photo ${image.id}`);
  if (s.img) frame.style.aspectRatio = `${s.img.width} / ${s.img.height}`;
  if (s.placeholder) {
    frame.style.backgroundColor = s.placeholder.color;
    const canvas = blurhashCanvas(s.placeholder.blurhash, 32, s.img ? Math.max(1, Math.round(32 * s.img.height / s.img.width)) : 32);
    if (canvas) {
      canvas.className = "ip-placeholder";
      canvas.setAttribute("aria-hidden", "true");
      frame.append(canvas);
    }
  }
  if (!s.img) {
    frame.classList.replace("ip-loading", "ip-failed");
    frame.append(fallbackBox(label));
    return frame;
  }
  const picture = document.createElement("picture");
  for (const source of s.sources) {
    const el = document.createElement("source");
    el.type = source.type;
    el.srcset = source.srcset;
    el.sizes = source.sizes;
    picture.append(el);
  }
  const img = document.createElement("img");
  img.alt = label;
  img.width = s.img.width;
  img.height = s.img.height;
  img.decoding = "async";
  if (cover && context === "detail") {
    img.loading = "eager";
    img.setAttribute("fetchpriority", "high");
  } else {
    img.loading = "lazy";
  }
  img.sizes = s.img.sizes;
  img.srcset = s.img.srcset;
  img.src = s.img.src;
  img.setAttribute("elementtiming", `ip-${context}`);
  shown.set(img, { image, context });
  img.addEventListener("load", () => {
    frame.classList.replace("ip-loading", "ip-loaded");
    reportLoad(img);
  });
  img.addEventListener("error", () => {
    frame.classList.remove("ip-loading", "ip-loaded");
    frame.classList.add("ip-failed");
    picture.replaceWith(fallbackBox(label));
  });
  picture.append(img);
  frame.append(picture);
  const disclosure = disclosureNote(image.disclosure);
  if (disclosure) frame.append(disclosure);
  return frame;
}

/**
 * An altered photo's disclosure (RESO MediaAlteration; MLS rules, California B&P §10140.8): the
 * API's text ("Virtually staged" unless DISCLOSURE_TEXT says otherwise) on the photo, with a link
 * to the unaltered original when it is public. Nothing is ever drawn into the picture itself.
 */
export function disclosureNote(disclosure) {
  if (!disclosure) return null;
  const note = document.createElement("p");
  note.className = "ip-disclosure";
  const text = document.createElement("span");
  text.className = "ip-disclosure-text";
  text.textContent = disclosure.text;
  note.append(text);
  if (disclosure.original_url) {
    const link = document.createElement("a");
    link.className = "ip-original";
    link.href = disclosure.original_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = "See the original photo";
    note.append(" · ", link);
  }
  return note;
}

// -- load timings (opt-in) ---------------------------------------------------------------------
const shown = new WeakMap();  // <img> → { image, context }, for the load timings
let timings = null;

/** The rendition (name, format, bytes) of `image` whose URL the browser loaded. */
function renditionAt(image, url) {
  for (const [name, byFormat] of Object.entries(image.renditions || {})) {
    for (const [format, r] of Object.entries(byFormat)) {
      if (r && new URL(r.url, location.href).href === url) return { name, format, bytes: r.bytes || 0 };
    }
  }
  return null;
}

function reportLoad(img) {
  const seen = shown.get(img);
  if (!timings || !seen || !img.currentSrc) return;
  const r = renditionAt(seen.image, img.currentSrc);
  const entry = performance.getEntriesByName(img.currentSrc, "resource").pop();
  if (!r || !entry) return;
  timings.add({
    rendition: r.name, format: r.format, context: seen.context,
    load_ms: Math.round(Math.max(0, entry.responseEnd - entry.startTime) * 10) / 10,
    // transfer sizes are 0 across origins without Timing-Allow-Origin: then the rendition's own size
    bytes: entry.transferSize || entry.encodedBodySize || r.bytes,
    viewport: Math.round(window.innerWidth),
  });
}

/**
 * Opt in to reporting how photos load for this page's visitors: for every photo `renderImage`
 * shows, the rendition the browser chose, its bytes and its load time (Resource Timing), and the
 * page's Largest Contentful Paint when it is one of the photos; batched to `POST /api/v1/rum`
 * with `navigator.sendBeacon` when the page is hidden or left, `flushAfterMs` after the first
 * unsent photo, or every `maxBatch` photos. Nothing else (no URL, no text) is sent. Returns a
 * function that sends what is waiting now.
 */
export function enableLoadTimings({ apiBase = "", flushAfterMs = 10000, maxBatch = 20 } = {}) {
  if (timings) return timings.flush;
  const queue = [];
  let lcp = null;
  let lcpSent = false;
  let timer = null;
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (!queue.length && (!lcp || lcpSent)) return false;
    const body = { loads: queue.splice(0, 50) };
    if (lcp && !lcpSent) { body.lcp = lcp; lcpSent = true; }
    // text/plain: a CORS-safelisted type, so a page on another origin sends it without a preflight
    const blob = new Blob([JSON.stringify(body)], { type: "text/plain" });
    const url = `${apiBase}/api/v1/rum`;
    if (navigator.sendBeacon && navigator.sendBeacon(url, blob)) return true;
    fetch(url, { method: "POST", body: blob, keepalive: true }).catch(() => {});
    return true;
  };
  const add = (entry) => {
    queue.push(entry);
    if (queue.length >= maxBatch) flush();
    else if (!timer) timer = setTimeout(flush, flushAfterMs);
  };
  addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") flush(); });
  addEventListener("pagehide", flush);
  if (typeof PerformanceObserver !== "undefined"
      && (PerformanceObserver.supportedEntryTypes || []).includes("largest-contentful-paint")) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const seen = entry.element && shown.get(entry.element);
        const r = seen && renditionAt(seen.image, entry.element.currentSrc);
        // startTime is the render time, or the load time for a photo from another origin
        if (r && !lcpSent) lcp = { rendition: r.name, format: r.format, context: seen.context, ms: Math.round(entry.startTime) };
      }
    }).observe({ type: "largest-contentful-paint", buffered: true });
  }
  timings = { add, flush };
  return flush;
}

function fallbackBox(label) {
  const box = document.createElement("div");
  box.className = "ip-fallback";
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `${label} (unavailable)`);
  box.textContent = "Image unavailable";
  return box;
}

// -- BlurHash (https://blurha.sh), decoded to a small canvas ---------------------------------
const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const ch of text) value = value * 83 + DIGITS.indexOf(ch);
  return value;
}

function srgbToLinear(v) {
  const x = v / 255;
  return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
}

function linearToSrgb(v) {
  const x = Math.max(0, Math.min(1, v));
  return x <= 0.0031308 ? Math.round(x * 12.92 * 255 + 0.5) : Math.round((1.055 * Math.pow(x, 1 / 2.4) - 0.055) * 255 + 0.5);
}

const signPow = (v, e) => Math.sign(v) * Math.pow(Math.abs(v), e);

/** RGBA pixels (Uint8ClampedArray) of a BlurHash at width × height; null if it is malformed. */
export function decodeBlurhash(hash, width, height, punch = 1) {
  if (!hash || hash.length < 6) return null;
  const size = decode83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) return null;
  const maxValue = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([srgbToLinear(dc >> 16), srgbToLinear((dc >> 8) & 255), srgbToLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = [Math.floor(v / (19 * 19)), Math.floor(v / 19) % 19, v % 19];
    colors.push(q.map((c) => signPow((c - 9) / 9, 2) * maxValue * punch));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
        }
      }
      const p = 4 * (x + y * width);
      pixels[p] = linearToSrgb(r); pixels[p + 1] = linearToSrgb(g); pixels[p + 2] = linearToSrgb(b); pixels[p + 3] = 255;
    }
  }
  return pixels;
}

function blurhashCanvas(hash, width, height) {
  const pixels = decodeBlurhash(hash, width, height);
  if (!pixels) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  return canvas;
}

// -- gallery management ------------------------------------------------------------------------
/** One call per change; each resolves with the API's answer (the image as it now is). */
export const manage = {
  setCover: (image, opts) => call(`/api/v1/images/${image.id}`, { ...opts, method: "PATCH", json: { is_primary: true } }),
  setAltText: (image, altText, opts) =>
    call(`/api/v1/images/${image.id}`, { ...opts, method: "PATCH", json: { alt_text: altText } }),
  setPosition: (image, position, opts) =>
    call(`/api/v1/images/${image.id}`, { ...opts, method: "PATCH", json: { position } }),
  remove: (image, opts) => call(`/api/v1/images/${image.id}`, { ...opts, method: "DELETE" }),
  /** Give every image its index as its position (the gallery's new order). */
  reorder: async (images, opts) => {
    for (const [position, image] of images.entries()) {
      if (image.position !== position) await manage.setPosition(image, position, opts);
    }
  },
  list: (entity, id, opts) => call(`/api/v1/${entity}/${id}/images?limit=200`, opts),
};

/**
 * A gallery in `container`: the entity's images in grid view; with `editable`, each one can be
 * moved (drag and drop, or its Move earlier / Move later buttons), made the cover, given an alt
 * text and deleted, and the view is redrawn from the API's answer after each change.
 * `onSelect(image)` is called when an image is opened; `announce(text)` reports what happened
 * (to an aria-live region).
 */
export class Gallery {
  constructor(container, { entity, id, token, apiBase = "", editable = false, onSelect = () => {},
                           announce = () => {} }) {
    Object.assign(this, { container, entity, id, editable, onSelect, announce });
    this.opts = { token, apiBase };
    this.images = [];
  }

  async refresh() {
    const { images } = await manage.list(this.entity, this.id, this.opts);
    this.images = images;
    this.render();
    return images;
  }

  async change(work, done) {
    try {
      await work();
      await this.refresh();
      this.announce(done);
    } catch (error) {
      this.announce(`${error.code || "error"}: ${error.message}`);
    }
  }

  move(index, by) {
    const order = [...this.images];
    const target = index + by;
    if (target < 0 || target >= order.length) return;
    [order[index], order[target]] = [order[target], order[index]];
    return this.change(() => manage.reorder(order, this.opts), `moved photo ${index + 1} to ${target + 1}`);
  }

  render() {
    const list = document.createElement("ol");
    list.className = "ip-gallery";
    this.images.forEach((image, index) => list.append(this.item(image, index)));
    this.container.replaceChildren(list);
  }

  item(image, index) {
    const li = document.createElement("li");
    li.className = "ip-item";
    li.dataset.imageId = image.id;
    const label = image.alt_text || `Photo ${index + 1}`;
    if (image.status === "ready") {
      const open = document.createElement("button");
      open.type = "button";
      open.className = "ip-open";
      open.setAttribute("aria-label", `Open ${label}`);
      open.append(renderImage(image, "grid", { alt: label }));
      open.addEventListener("click", () => this.onSelect(image));
      li.append(open);
    } else {
      const box = document.createElement("div");
      box.className = "ip-pending";
      box.textContent = image.error ? `${image.status}: ${image.error.message}` : image.status;
      li.append(box);
    }
    const caption = document.createElement("p");
    caption.className = "ip-caption";
    caption.textContent = `${label}${image.is_primary ? " · cover" : ""}`;
    li.append(caption);
    if (!this.editable) return li;

    li.draggable = true;
    li.addEventListener("dragstart", (event) => event.dataTransfer.setData("text/plain", String(index)));
    li.addEventListener("dragover", (event) => event.preventDefault());
    li.addEventListener("drop", (event) => {
      event.preventDefault();
      const from = Number(event.dataTransfer.getData("text/plain"));
      if (Number.isInteger(from) && from !== index) {
        const order = [...this.images];
        const [moved] = order.splice(from, 1);
        order.splice(index, 0, moved);
        this.change(() => manage.reorder(order, this.opts), `moved photo ${from + 1} to ${index + 1}`);
      }
    });
    const tools = document.createElement("div");
    tools.className = "ip-tools";
    const button = (text, action, disabled = false) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.disabled = disabled;
      b.addEventListener("click", action);
      tools.append(b);
      return b;
    };
    button("Move earlier", () => this.move(index, -1), index === 0).setAttribute("aria-label", `Move ${label} earlier`);
    button("Move later", () => this.move(index, 1), index === this.images.length - 1)
      .setAttribute("aria-label", `Move ${label} later`);
    button("Make cover", () => this.change(() => manage.setCover(image, this.opts), `${label} is the cover`),
      image.is_primary || image.status !== "ready").setAttribute("aria-label", `Make ${label} the cover`);
    button("Delete", () => this.change(() => manage.remove(image, this.opts), `${label} deleted`))
      .setAttribute("aria-label", `Delete ${label}`);
    const alt = document.createElement("input");
    alt.type = "text";
    alt.value = image.alt_text || "";
    alt.placeholder = "Alt text";
    alt.setAttribute("aria-label", `Alt text of ${label}`);
    alt.addEventListener("change", () =>
      this.change(() => manage.setAltText(image, alt.value, this.opts), `alt text of ${label} saved`));
    tools.append(alt);
    li.append(tools);
    return li;
  }
}
