// An accessible autocomplete field (WAI-ARIA combobox with a listbox popup), shared by the device search
// and the "add a package" field. Options come from an async `source(query)`; stale answers are dropped.
import { debounce } from "./http.js";

let counter = 0;

export class Combobox {
  /**
   * @param {HTMLInputElement} input  the role=combobox input
   * @param {HTMLElement} listbox     the role=listbox popup
   * @param {object} options          source(query) → items; label(item) → Node|string; onSelect(item);
   *                                  onEnter(text) when Enter is pressed with no option active; delay (ms)
   */
  constructor(input, listbox, { source, label, onSelect, onEnter = null, onResults = null, delay = 120 }) {
    this.input = input;
    this.listbox = listbox;
    this.source = source;
    this.label = label;
    this.onSelect = onSelect;
    this.onEnter = onEnter;
    this.onResults = onResults;
    this.items = [];
    this.active = -1;
    this.sequence = 0;
    this.prefix = `${listbox.id || "listbox"}-option-${++counter}`;
    const lookup = debounce(() => this.lookup(), delay);
    input.addEventListener("input", lookup);
    input.addEventListener("keydown", (event) => this.keydown(event));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    input.addEventListener("focus", () => {
      if (this.items.length && input.value.trim()) this.open();
    });
  }

  async lookup() {
    const query = this.input.value.trim();
    const mine = ++this.sequence;
    if (!query) {
      this.show([], query);
      return;
    }
    let items = [];
    try {
      items = await this.source(query);
    } catch {
      items = [];
    }
    if (mine !== this.sequence) return; // a newer query is on its way
    this.show(items, query);
  }

  /** Fetch again for the current text (e.g. after the version changed). */
  refresh() {
    return this.lookup();
  }

  show(items, query) {
    this.items = items;
    this.active = -1;
    this.listbox.replaceChildren(
      ...items.map((item, position) => {
        const option = document.createElement("li");
        option.id = `${this.prefix}-${position}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        const content = this.label(item);
        option.append(content);
        option.addEventListener("mousedown", (event) => event.preventDefault());
        option.addEventListener("click", () => this.choose(position));
        return option;
      }),
    );
    if (items.length && document.activeElement === this.input) this.open();
    else this.close();
    if (this.onResults) this.onResults(items, query);
  }

  open() {
    this.listbox.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  close() {
    this.listbox.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
    for (const option of this.listbox.children) option.setAttribute("aria-selected", "false");
  }

  move(step) {
    if (!this.items.length) return;
    if (this.listbox.hidden) this.open();
    this.active = (this.active + step + this.items.length) % this.items.length;
    [...this.listbox.children].forEach((option, position) => {
      option.setAttribute("aria-selected", position === this.active ? "true" : "false");
    });
    const option = this.listbox.children[this.active];
    this.input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  choose(position) {
    const item = this.items[position];
    this.close();
    if (item !== undefined) this.onSelect(item);
  }

  keydown(event) {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      this.move(1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      this.move(-1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (this.active >= 0 && !this.listbox.hidden) this.choose(this.active);
      else if (this.onEnter) {
        this.sequence += 1; // drop a lookup still in flight
        this.close();
        this.onEnter(this.input.value.trim());
      } else if (this.items.length === 1) this.choose(0);
    } else if (event.key === "Escape") {
      if (!this.listbox.hidden) {
        event.preventDefault();
        this.close();
      }
    }
  }
}
