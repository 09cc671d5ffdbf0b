// Renders /api/v1/openapi.json for /api/docs (a file of its own: the page's CSP allows no inline script).
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const refName = s => s && s.$ref ? s.$ref.split("/").pop() : null;
fetch("/api/v1/openapi.json").then(r => r.json()).then(spec => {
  const ops = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      const body = op.requestBody ? Object.entries(op.requestBody.content).map(([t, c]) =>
        `<div>body <code>${esc(t)}</code> ${refName(c.schema) ? `<a href="#s-${refName(c.schema)}">${refName(c.schema)}</a>` : ""}</div>`).join("") : "";
      const rows = Object.entries(op.responses).map(([code, r]) => {
        const s = r.content ? refName(Object.values(r.content)[0].schema) : null;
        return `<tr><td>${code}</td><td>${esc(r.description)}</td><td>${s ? `<a href="#s-${s}">${s}</a>` : ""}</td></tr>`;
      }).join("");
      ops.push(`<div class="op"><span class="m ${method}">${method}</span> <code>${esc(path)}</code>
        <div>${esc(op.summary || "")}${op.security ? ' <span class="muted">(bearer token)</span>' : ""}</div>
        ${params.length ? `<table>${params.map(p => `<tr><td><code>${esc(p.name)}</code></td><td>${p.in}</td><td>${esc(p.description || "")}</td></tr>`).join("")}</table>` : ""}
        ${body}<table><tr><th>status</th><th>meaning</th><th>body</th></tr>${rows}</table></div>`);
    }
  }
  document.getElementById("ops").innerHTML = ops.join("");
  document.getElementById("schemas").innerHTML = Object.entries(spec.components.schemas).map(([name, s]) =>
    `<details id="s-${name}"><summary><code>${name}</code></summary><pre>${esc(JSON.stringify(s, null, 2))}</pre></details>`).join("");
}).catch(e => { document.getElementById("ops").textContent = "could not load the spec: " + e; });
