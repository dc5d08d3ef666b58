// The "Labels & replies" dialog: the organization's labels (admins add and delete
// them) and its canned responses (any staff member adds and deletes them).

import { labelChip } from "./labels.js";
import { api, el } from "./snorq.js";

const $ = (id) => document.getElementById(id);

export class Manage {
  constructor(labels, canned, admin) {
    this.labels = labels;
    this.canned = canned;
    this.admin = admin;
    $("manage-open").addEventListener("click", () => {
      this.render();
      $("manage").showModal();
    });
    $("label-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.addLabel();
    });
    $("canned-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.addCanned();
    });
    $("manage").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-delete]");
      if (button) this.remove(button.dataset.delete, Number(button.dataset.id));
    });
  }

  render() {
    const labels = this.labels.sorted().map((label) =>
      el(
        "li",
        {},
        labelChip(label),
        this.admin ? deleteButton("label", label.id, `Delete label ${label.name}`) : null,
      ),
    );
    $("manage-labels").replaceChildren(...labels);
    const canned = this.canned.all.map((item) =>
      el(
        "li",
        {},
        el("span", { class: "shortcut", text: `/${item.shortcut}` }),
        el("span", { class: "muted canned-text", text: item.content }),
        deleteButton("canned", item.id, `Delete /${item.shortcut}`),
      ),
    );
    $("manage-canned").replaceChildren(...canned);
  }

  async addLabel() {
    const body = { name: $("label-name").value, color: $("label-color").value };
    const data = await this.call("/api/v1/labels", "POST", body);
    if (!data) return;
    $("label-name").value = "";
    this.labels.put(data.label);
    this.render();
  }

  async addCanned() {
    const body = { shortcut: $("canned-shortcut").value, content: $("canned-content").value };
    const data = await this.call("/api/v1/canned-responses", "POST", body);
    if (!data) return;
    $("canned-shortcut").value = "";
    $("canned-content").value = "";
    this.canned.all = [...this.canned.all, data.canned_response].sort((a, b) =>
      a.shortcut.localeCompare(b.shortcut),
    );
    this.render();
  }

  async remove(kind, id) {
    const path = kind === "label" ? `/api/v1/labels/${id}` : `/api/v1/canned-responses/${id}`;
    if (!(await this.call(path, "DELETE"))) return;
    if (kind === "label") this.labels.remove(id);
    else this.canned.all = this.canned.all.filter((item) => item.id !== id);
    this.render();
  }

  // The API's answer, or null once the dialog says why it failed.
  async call(path, method, body) {
    try {
      const data = await api(path, { method, body });
      $("manage-error").hidden = true;
      return data;
    } catch (error) {
      $("manage-error").hidden = false;
      $("manage-error").textContent = error.message;
      return null;
    }
  }
}

function deleteButton(kind, id, label) {
  return el("button", {
    type: "button",
    class: "link-button danger",
    dataset: { delete: kind, id },
    "aria-label": label,
    text: "Delete",
  });
}
