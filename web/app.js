// Upload, poll the job, then show the entity's gallery. No framework, no build step.
const form = document.querySelector("#upload");
const statusEl = document.querySelector("#status");
const gallery = document.querySelector("#gallery");

const api = (path, token, options = {}) =>
  fetch(path, { ...options, headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) } })
    .then(async (r) => {
      const body = await r.json();
      if (!r.ok) throw new Error(`${body.error.code}: ${body.error.message}`);
      return body;
    });

function say(text, isError = false) {
  statusEl.textContent = text;
  statusEl.className = isError ? "error" : "";
}

async function poll(statusUrl, token) {
  for (;;) {
    const job = await api(statusUrl, token);
    say(`job ${job.id}: ${job.status}`);
    if (["succeeded", "failed", "partial"].includes(job.status)) return job;
    await new Promise((ok) => setTimeout(ok, 700));
  }
}

async function showGallery(entity, id, token) {
  const { images } = await api(`/api/v1/${entity}/${id}/images`, token);
  gallery.replaceChildren(...images.map((img) => {
    const fig = document.createElement("figure");
    const thumb = img.renditions.thumbnail;
    if (thumb) {
      const pic = document.createElement("picture");
      const source = document.createElement("source");
      source.type = "image/webp";
      source.srcset = thumb.webp.url;
      const fallback = document.createElement("img");
      const main = thumb.jpeg || thumb.png;
      fallback.src = main.url;
      fallback.width = main.width;
      fallback.height = main.height;
      fallback.alt = img.alt_text || img.filename || `image ${img.id}`;
      // The dominant colour fills the box until the bytes arrive (BlurHash needs a decoder).
      if (img.placeholder) fallback.style.background = img.placeholder.dominant_color;
      pic.append(source, fallback);
      fig.append(pic);
    }
    const cap = document.createElement("figcaption");
    cap.textContent = `#${img.id} ${img.status}${img.is_primary ? " (cover)" : ""}${img.error ? ` (${img.error.code})` : ""}`;
    fig.append(cap);
    return fig;
  }));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const token = data.get("token").trim();
  const entity = data.get("entity");
  const id = data.get("entity_id");
  const body = new FormData();
  for (const file of form.files.files) body.append("files", file);
  try {
    say("uploading…");
    const res = await api(`/api/v1/${entity}/${id}/images`, token, { method: "POST", body });
    for (const r of res.rejected || []) say(`${r.filename}: ${r.error.message}`, true);
    await poll(res.job.status_url, token);
    await showGallery(entity, id, token);
  } catch (err) {
    say(err.message, true);
  }
});
