// webhookkit dashboard: optional enhancements; every form works without this file.
"use strict";

// Copy buttons: <button data-copy="#selector">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  field.select();
  const done = () => { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// Event search: hide the event checkboxes whose name does not contain the typed text.
function setUpEventSearch() {
  const search = document.getElementById("event-search");
  if (!search) return;
  search.hidden = false;
  search.addEventListener("input", () => {
    const needle = search.value.trim().toLowerCase().replace(/\s+/g, "_");
    for (const label of document.querySelectorAll("label.event")) {
      label.classList.toggle("hidden", needle !== "" && !label.dataset.name.includes(needle));
    }
  });
}

// Query editor: keep the line-number gutter in step with the text; keep the error mark.
function setUpEditor() {
  const query = document.getElementById("query");
  const gutter = document.getElementById("gutter");
  if (!query || !gutter) return;
  const errorLine = Number(query.dataset.errorLine || 0);
  const render = () => {
    const count = query.value.split("\n").length;
    if (gutter.children.length === count) return;
    gutter.replaceChildren();
    for (let n = 1; n <= count; n++) {
      const span = document.createElement("span");
      span.textContent = String(n);
      if (n === errorLine) span.className = "err";
      gutter.appendChild(span);
    }
  };
  const grow = () => { query.style.height = "auto"; query.style.height = query.scrollHeight + "px"; };
  query.addEventListener("input", () => { render(); grow(); });
  render();
  grow();
}

// Partial updates: an element with data-refresh="ms" is re-fetched and swapped in place.
function setUpRefresh() {
  const live = document.getElementById("live");
  if (live) live.closest("label").hidden = false;
  for (const element of document.querySelectorAll("[data-refresh]")) {
    const every = Number(element.dataset.refresh);
    const tick = async () => {
      if (live && !live.checked) return;
      const response = await fetch(window.location.href, { headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(element.id);
      const current = document.getElementById(element.id);
      if (fresh && current) {
        const open = current.querySelectorAll("details[open]").length;
        if (!open) current.replaceWith(fresh);
      }
    };
    window.setInterval(() => { tick().catch(() => {}); }, every);
  }
}

setUpEventSearch();
setUpEditor();
setUpRefresh();
