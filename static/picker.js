// Pickers (templates/admin/picker.html): without this script the search button posts the form
// back and the server lists the matches. With it, matches are fetched as one types
// (GET /admin/picker/{kind}?q=…) and shown as checkboxes; nothing is submitted until the form is.
"use strict";
document.querySelectorAll("fieldset.picker[data-kind]").forEach((box) => {
  const field = box.dataset.field;
  const kind = box.dataset.kind;
  const input = box.querySelector('input[type="search"]');
  const button = box.querySelector('button[name="pick"]');
  const picked = box.querySelector("ul.picked");
  const found = box.querySelector("ul.found");
  const more = box.querySelector(".picker-more");
  if (!input || !picked || !found) return;
  if (button) button.hidden = true;
  box.classList.add("enhanced");
  let timer = null;
  let asked = 0;

  const row = (item) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    label.className = "inline";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = `${field}_${item.id}`;
    label.append(box, " ", item.label);
    if (item.detail) {
      const hint = document.createElement("span");
      hint.className = "hint";
      hint.textContent = item.detail;
      label.append(" ", hint);
    }
    li.append(label);
    return li;
  };

  const search = async () => {
    const ask = ++asked;
    const url = `/admin/picker/${encodeURIComponent(kind)}?q=${encodeURIComponent(input.value)}`;
    let data;
    try {
      const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) return;
      data = await res.json();
    } catch (e) {
      return;
    }
    // An older answer arriving after a newer one is dropped.
    if (ask !== asked) return;
    const chosen = new Set(Array.from(picked.querySelectorAll("input[type=checkbox]")).map((c) => c.name));
    found.replaceChildren(...data.items.filter((item) => !chosen.has(`${field}_${item.id}`)).map(row));
    const hint = box.querySelector(".picker-hint");
    if (hint) hint.hidden = true;
    if (more) more.textContent = data.more > 0 ? (more.dataset.template || "").replace("{n}", String(data.more)) : "";
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 150);
  });
  // Enter searches; it does not submit the whole form.
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
  // A ticked match joins the chosen ones, so a new search keeps it.
  found.addEventListener("change", (e) => {
    const li = e.target.closest("li");
    if (e.target.checked && li) picked.append(li);
  });
});
