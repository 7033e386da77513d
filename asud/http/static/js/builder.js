// The firmware builder page: pick a version and a device, customise the package list (checked by the
// server as you type), then POST /api/v1/build and follow the build on /build/<request hash>.
import { Combobox } from "./combobox.js";
import { appUrl, debounce, detailOf, formatSize, getJson, h, postJson } from "./http.js";

const config = JSON.parse(document.getElementById("builder-config").textContent);
const $ = (id) => document.getElementById(id);

const state = {
  device: null, // /web/api/device answer
  defaults: [], // default + device packages of the device, in order
  added: [], // names the user added
  removed: new Set(), // defaults the user removed
  problems: new Map(), // unknown name → suggestions
  validation: null, // last /web/api/validate answer
  checks: 0, // sequence number of validations, to drop stale answers
};

const versionSelect = $("version");
const deviceInput = $("device-search");

function currentVersion() {
  return versionSelect.value;
}

function packages() {
  return [...state.defaults.filter((name) => !state.removed.has(name)), ...state.added];
}

// What the request names: additions and "-name" removals. The defaults come from the same catalog the
// ImageBuilder uses, so they are not repeated (the request stays short and its hash stable).
function requestedPackages() {
  return [...state.added, ...state.defaults.filter((name) => state.removed.has(name)).map((name) => `-${name}`)];
}

// -- device search ----------------------------------------------------------------------------------

const deviceBox = new Combobox(deviceInput, $("device-results"), {
  source: async (query) => {
    const params = new URLSearchParams({ version: currentVersion(), q: query });
    const { status, body } = await getJson(appUrl(`/web/api/devices?${params}`));
    return status === 200 ? body.devices : [];
  },
  label: (device) =>
    h("span", { class: "option-device" }, h("span", { class: "option-title" }, device.title),
      h("span", { class: "option-meta" }, `${device.target} · ${device.id}`)),
  onSelect: (device) => selectDevice(device.target, device.id),
  onResults: (devices, query) => {
    $("search-status").textContent = query
      ? devices.length ? `${devices.length} device${devices.length === 1 ? "" : "s"} found.` : `No device matches “${query}”.`
      : "";
  },
});

async function selectDevice(target, id, { keepSelection = false } = {}) {
  const params = new URLSearchParams({ version: currentVersion(), target, id });
  const { status, body } = await getJson(appUrl(`/web/api/device?${params}`));
  if (status !== 200) {
    $("search-status").textContent = `${id} (${target}) is not available in ${currentVersion()}.`;
    showDevice(null);
    return;
  }
  if (!keepSelection) {
    state.added = [];
    state.removed = new Set();
  }
  showDevice(body);
}

function showDevice(device) {
  state.device = device;
  state.problems.clear();
  state.validation = null;
  for (const id of ["device-card", "downloads-section", "customise-section"]) $(id).hidden = !device;
  updateUrl();
  if (!device) return;
  deviceInput.value = device.title;
  $("search-status").textContent = `Selected ${device.title}.`;
  $("device-title").textContent = device.title;
  $("device-target").textContent = device.target;
  $("device-id").textContent = device.id;
  $("device-revision").textContent = `${device.version} (${device.version_code})`;
  const others = device.titles.slice(1);
  $("device-also").hidden = !others.length;
  $("device-also").textContent = others.length ? `Also sold as ${others.join(", ")}.` : "";
  $("device-snapshot").hidden = !device.snapshot;
  $("device-limit").hidden = !device.image_size_limit;
  $("device-limit").textContent = device.image_size_limit
    ? `Its flash holds images of at most ${formatSize(device.image_size_limit)}: every package added takes room.`
    : "";
  showDownloads(device);
  state.defaults = [...new Set([...device.default_packages, ...device.device_packages])];
  state.added = state.added.filter((name) => !state.defaults.includes(name));
  showOptions(device);
  renderPackages();
  validateSoon();
}

function showDownloads(device) {
  $("stock-downloads").replaceChildren(
    ...device.images.map((image) =>
      h("li", {},
        h("a", { href: image.url, class: "download-link" }, `${image.type}${image.filesystem ? ` (${image.filesystem})` : ""}`),
        h("span", { class: "muted break" }, ` ${image.name}${image.size ? ` · ${formatSize(image.size)}` : ""}`)),
    ),
  );
}

function showOptions(device) {
  $("rootfs-field").hidden = !device.supports_rootfs_size;
  if (!device.supports_rootfs_size) $("rootfs-size").value = "";
  const filesystems = device.filesystems || [];
  const select = $("filesystem");
  select.replaceChildren(
    h("option", { value: "" }, "All available (default)"),
    ...filesystems.map((fs) => h("option", { value: fs }, fs)),
  );
  $("filesystem-field").hidden = filesystems.length < 2;
}

function updateUrl() {
  const params = new URLSearchParams({ version: currentVersion() });
  if (state.device) {
    params.set("target", state.device.target);
    params.set("id", state.device.id);
  }
  history.replaceState(null, "", `?${params}`);
}

versionSelect.addEventListener("change", async () => {
  if (state.device) await selectDevice(state.device.target, state.device.id, { keepSelection: true });
  else updateUrl();
  if (!state.device && deviceInput.value.trim()) deviceBox.refresh();
});

// -- packages -----------------------------------------------------------------------------------------

const addInput = $("package-add");

const packageBox = new Combobox(addInput, $("package-results"), {
  source: async (query) => {
    if (!state.device) return [];
    const params = new URLSearchParams({ version: currentVersion(), target: state.device.target, q: query });
    const { status, body } = await getJson(appUrl(`/web/api/packages?${params}`));
    return status === 200 ? body.packages : [];
  },
  label: (item) =>
    h("span", { class: "option-package" }, h("span", { class: "option-title" }, item.name),
      h("span", { class: "option-meta" }, [item.version, item.provided_by && `provided by ${item.provided_by}`, item.description].filter(Boolean).join(" · "))),
  onSelect: (item) => addPackages(item.name),
  onEnter: (text) => addPackages(text),
  onResults: (items, query) => {
    const exact = items.some((item) => item.name === query.replace(/^[-+]/, ""));
    $("package-add-hint").textContent = !query || exact || items.length
      ? ""
      : `No package named “${query}” in ${currentVersion()} for ${state.device ? state.device.target : "this target"}.`;
    $("package-add-hint").classList.toggle("error", Boolean(query && !items.length));
  },
});

$("package-add-button").addEventListener("click", () => addPackages(addInput.value));

function addPackages(text) {
  const names = text.split(/[\s,]+/).map((name) => name.trim()).filter(Boolean);
  if (!names.length) return;
  for (const raw of names) {
    const name = raw.replace(/^\+/, "");
    if (name.startsWith("-")) {
      removePackage(name.slice(1), { quiet: true });
      continue;
    }
    if (state.defaults.includes(name)) state.removed.delete(name);
    else if (!state.added.includes(name)) state.added.push(name);
  }
  addInput.value = "";
  $("package-add-hint").textContent = "";
  renderPackages();
  validateSoon();
}

function removePackage(name, { quiet = false } = {}) {
  if (state.defaults.includes(name)) state.removed.add(name);
  state.added = state.added.filter((other) => other !== name);
  state.problems.delete(name);
  if (!quiet) {
    renderPackages();
    validateSoon();
  }
}

function replacePackage(wrong, right) {
  state.added = state.added.map((name) => (name === wrong ? right : name));
  state.problems.delete(wrong);
  renderPackages();
  validateSoon();
}

function renderPackages() {
  const chips = [];
  for (const name of state.defaults) {
    if (state.removed.has(name)) {
      chips.push(
        h("li", { class: "chip removed", "data-package": name },
          h("span", { class: "chip-name" }, h("s", {}, name), h("span", { class: "visually-hidden" }, " (removed)")),
          h("button", { type: "button", class: "chip-button", "aria-label": `Restore ${name}`, title: `Restore ${name}`,
            onclick: () => { state.removed.delete(name); renderPackages(); validateSoon(); } }, "↺")),
      );
    } else chips.push(chip(name, false));
  }
  for (const name of state.added) chips.push(chip(name, true));
  $("package-list").replaceChildren(...chips);
}

function chip(name, added) {
  const unknown = state.problems.has(name);
  return h("li", { class: `chip${added ? " added" : ""}${unknown ? " invalid" : ""}`, "data-package": name },
    h("span", { class: "chip-name" }, name, unknown ? h("span", { class: "visually-hidden" }, " (unknown package)") : null),
    h("button", { type: "button", class: "chip-button", "aria-label": `Remove ${name}`, title: `Remove ${name}`,
      onclick: () => removePackage(name) }, "×"));
}

// -- instant validation ---------------------------------------------------------------------------------

function requestBody() {
  const device = state.device;
  const body = {
    distro: config.distro,
    version: currentVersion(),
    target: device.target,
    profile: device.id,
    packages: requestedPackages(),
    client: config.client,
  };
  const defaults = $("defaults");
  if (defaults && defaults.value.trim()) body.defaults = defaults.value;
  const rootfs = $("rootfs-size").value.trim();
  if (!$("rootfs-field").hidden && rootfs) body.rootfs_size_mb = Number(rootfs);
  const filesystem = $("filesystem").value;
  if (!$("filesystem-field").hidden && filesystem) body.filesystem = filesystem;
  return body;
}

const validateSoon = debounce(validate, 150);

async function validate() {
  if (!state.device) return;
  const mine = ++state.checks;
  const box = $("validation");
  box.className = "validation checking";
  box.replaceChildren(h("p", {}, "Checking the selection…"));
  document.body.dataset.validation = "checking";
  let answer;
  try {
    answer = (await postJson(appUrl("/web/api/validate"), requestBody())).body;
  } catch {
    answer = { ok: false, kind: "invalid", detail: "The server could not be reached to check the selection." };
  }
  if (mine !== state.checks) return;
  state.validation = answer;
  state.problems = new Map(Object.entries(answer.kind === "unknown" ? answer.suggestions || {} : {}));
  for (const name of answer.unknown || []) if (!state.problems.has(name)) state.problems.set(name, []);
  renderPackages();
  renderValidation(answer);
}

function renderValidation(answer) {
  const box = $("validation");
  document.body.dataset.validation = answer.ok ? "ok" : answer.kind;
  if (answer.ok) {
    box.className = "validation ok";
    const count = packages().length;
    const text = answer.resolved
      ? `All ${count} packages found; ${Object.keys(answer.manifest).length} will be installed with their dependencies.`
      : `All ${count} package names found in this version.`;
    box.replaceChildren(h("p", {}, h("span", { "aria-hidden": "true" }, "✓ "), text));
    return;
  }
  box.className = "validation problem";
  if (answer.kind === "unknown") {
    box.replaceChildren(
      ...[...state.problems.entries()].map(([name, hints]) =>
        h("p", { class: "problem-line", "data-unknown": name },
          "Unknown package ", h("code", {}, name), ".",
          hints.length ? [" Did you mean ", ...hints.flatMap((hint, position) => [
            position ? " or " : "",
            h("button", { type: "button", class: "suggestion", onclick: () => fixName(name, hint) }, hint),
          ]), "?"] : " It is not in the package index of this version.",
          " ",
          h("button", { type: "button", class: "link-button", onclick: () => removePackage(name) }, `Remove ${name}`)),
      ),
    );
    return;
  }
  const heading = answer.kind === "conflict" ? "These packages cannot be installed together:" : "The server would refuse this request:";
  box.replaceChildren(h("p", {}, h("strong", {}, heading), " ", answer.detail));
}

function fixName(wrong, right) {
  if (state.added.includes(wrong)) replacePackage(wrong, right);
  else {
    removePackage(wrong, { quiet: true });
    addPackages(right);
  }
}

const debouncedValidate = debounce(validate, 400);
const defaultsArea = $("defaults");
if (defaultsArea) {
  defaultsArea.addEventListener("input", () => {
    const used = new TextEncoder().encode(defaultsArea.value).length;
    $("defaults-count").textContent = String(used);
    $("defaults-hint").classList.toggle("error", used > config.limits.max_defaults_length);
    debouncedValidate();
  });
}
$("rootfs-size").addEventListener("input", debouncedValidate);
$("filesystem").addEventListener("change", validate);

// -- request the build ----------------------------------------------------------------------------------

$("request-build").addEventListener("click", async () => {
  if (!state.device) return;
  const button = $("request-build");
  const error = $("build-error");
  error.hidden = true;
  button.disabled = true;
  button.textContent = "Requesting…";
  try {
    const { status, body } = await postJson(appUrl("/api/v1/build"), requestBody());
    if ((status === 200 || status === 202) && body && body.request_hash) {
      location.assign(appUrl(`/build/${encodeURIComponent(body.request_hash)}`));
      return;
    }
    error.textContent = status === 529
      ? `The server is busy: ${detailOf(body)} Try again in a minute.`
      : detailOf(body, `The server answered ${status}.`);
    error.hidden = false;
    validate();
  } catch {
    error.textContent = "The server could not be reached. Check your connection and try again.";
    error.hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = "Request build";
  }
});

// -- start: a direct link ?version=&target=&id= pre-selects the device ----------------------------------

const params = new URLSearchParams(location.search);
const wanted = params.get("version");
if (wanted && [...versionSelect.options].some((option) => option.value === wanted)) versionSelect.value = wanted;
if (params.get("target") && params.get("id")) selectDevice(params.get("target"), params.get("id"));
document.body.dataset.ready = "true";
