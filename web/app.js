// The upload page (GET /): pick a listing, upload photos (each with its own progress, large ones
// straight to storage), follow them through processing, manage the gallery, open a photo, and see
// the listing as an anonymous visitor does. Built on web/imagepipe.js only.
import {
  DEFAULT_DIRECT_THRESHOLD, Gallery, enableLoadTimings, entityTypes, renderImage, uploadImages,
} from "/web/imagepipe.js";

const $ = (selector) => document.querySelector(selector);
const form = $("#target");
const status = $("#status");
const params = new URLSearchParams(location.search);
const directThreshold = Number(params.get("direct")) || DEFAULT_DIRECT_THRESHOLD;
// ?rum=1: report photo load timings to POST /api/v1/rum (docs/frontend.md "Load timings")
if (params.get("rum") === "1") enableLoadTimings({ flushAfterMs: Number(params.get("rum_flush_ms")) || 10000 });
const TOKEN_KEY = "imagepipe.token";  // sessionStorage: gone when the tab closes, never persisted

const say = (text) => { status.textContent = text; };

function target() {
  const data = new FormData(form);
  return { token: String(data.get("token") || "").trim(), entity: data.get("entity"), id: Number(data.get("entity_id")) };
}

// The listing is in the URL (#properties/17), so a reload shows the same one.
function restore() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) form.elements.token.value = token;
  const [entity, id] = location.hash.slice(1).split("/");
  if (entity && id) {
    form.elements.entity.value = entity;
    form.elements.entity_id.value = id;
  }
}

let view = "grid";
let grid = null;

async function show() {
  const { token, entity, id } = target();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  history.replaceState(null, "", `${location.pathname}${location.search}#${entity}/${id}`);
  $("#detail-view").hidden = true;
  $("#grid-view").hidden = view !== "grid";
  $("#public-view").hidden = view !== "public";
  try {
    if (view === "grid") {
      grid = new Gallery($("#grid-view"), { entity, id, token, editable: Boolean(token), announce: say,
                                           onSelect: openDetail });
      const images = await grid.refresh();
      say(`${images.length} photo(s) in ${entity} ${id}`);
    } else {
      // what an anonymous visitor sees: no token, ready images only
      const visitor = new Gallery($("#public-view"), { entity, id, onSelect: openDetail });
      const images = await visitor.refresh();
      say(`${images.length} public photo(s)`);
    }
  } catch (error) {
    say(`${error.code || "error"}: ${error.message}`);
  }
}

function openDetail(image) {
  const cover = image.is_primary || (grid && grid.images[0] && grid.images[0].id === image.id);
  $("#detail").replaceChildren(renderImage(image, "detail", { cover, alt: image.alt_text || `Photo ${image.id}` }));
  $("#grid-view").hidden = $("#public-view").hidden = true;
  $("#detail-view").hidden = false;
  $("#back").focus();
  say(`showing photo ${image.id}`);
}

$("#back").addEventListener("click", () => show());

for (const button of document.querySelectorAll("nav [data-view]")) {
  button.addEventListener("click", () => {
    view = button.dataset.view;
    for (const b of document.querySelectorAll("nav [data-view]")) b.setAttribute("aria-pressed", String(b === button));
    show();
  });
}

form.addEventListener("submit", (event) => { event.preventDefault(); show(); });

function uploadRow(file) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `${file.name} upload progress`);
  const state = document.createElement("span");
  state.className = "state";
  li.append(name, bar, state);
  return li;
}

async function upload(files) {
  const { token, entity, id } = target();
  if (!token) {
    say("paste a token first: uploads need one");
    form.elements.token.focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  const rows = Array.from(files, uploadRow);
  $("#uploads").replaceChildren(...rows);
  say(`uploading ${rows.length} file(s)`);
  const results = await uploadImages(entity, id, files, {
    token, directThreshold,
    onProgress: (i, fraction) => { rows[i].querySelector("progress").value = Math.round(fraction * 100); },
    onUpdate: (i, s) => {
      const row = rows[i];
      row.dataset.phase = s.phase;
      row.dataset.direct = String(s.direct);
      row.classList.toggle("failed", s.phase === "failed");
      row.querySelector(".state").textContent = s.phase === "failed" ? `failed: ${s.error.message}`
        : s.phase === "ready" ? "ready" : s.phase === "processing" ? "processing…" : `uploading${s.direct ? " (direct)" : ""}…`;
      if (s.phase === "ready" && !row.querySelector(".ip-image")) {
        row.append(renderImage(s.image, "list", { alt: s.image.alt_text || s.file.name }));  // then the image
      }
      if (s.phase === "ready" || s.phase === "failed") say(`${s.file.name}: ${row.querySelector(".state").textContent}`);
    },
  });
  const ready = results.filter((r) => r.phase === "ready").length;
  view = "grid";
  await show();
  say(`${ready} of ${results.length} photo(s) ready`);
}

const drop = $("#drop");
$("#files").addEventListener("change", (event) => upload(event.target.files));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload(event.dataTransfer.files);
});
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("#files").click(); }
});

// The listing kinds are the API's (its contract), never a list of this page's own.
try {
  for (const name of await entityTypes()) form.elements.entity.append(new Option(name, name));
} catch (error) {
  say(`could not read the API's entity types: ${error.message}`);
}
restore();
show();
