// The build page: poll GET /api/v1/build/<hash> (as the Firmware Selector does) and show the queue
// position, the build steps, then the images with their checksums, the manifest and the log. Beside it,
// the live log: Server-Sent Events of GET /api/v1/build/<hash>/log, each line as make prints it, with
// the step and the elapsed time; EventSource reconnects by itself and the server resumes after the
// Last-Event-ID it sends, so a reconnect shows no line twice and misses none.
import { appUrl, copyText, detailOf, formatSize, getJson, h } from "./http.js";

const root = document.getElementById("build");
const hash = root.dataset.requestHash;
const $ = (id) => document.getElementById(id);
const STEPS = ["queued", "init", "calculate_packages_hash", "building_image", "done"];
const POLL_MS = 1000;
const RETRY_MS = 3000;
const seen = [];

function remember(status) {
  root.dataset.status = status;
  if (seen[seen.length - 1] !== status) seen.push(status);
  root.dataset.seen = seen.join(" ");
}

function markSteps(current, { failed = false } = {}) {
  const position = STEPS.indexOf(current);
  for (const item of $("steps").children) {
    const index = STEPS.indexOf(item.dataset.step);
    let stepState = "pending";
    if (index < position || (current === "done" && index === position)) stepState = "complete";
    else if (index === position) stepState = failed ? "failed" : "current";
    item.dataset.state = stepState;
    if (stepState === "current") item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

function setStatus(text) {
  $("progress-status").textContent = text;
}

function showLog(body, { open = false } = {}) {
  const text = [body.stdout, body.stderr && `--- stderr ---\n${body.stderr}`].filter(Boolean).join("\n");
  if (!text) return;
  $("build-log").textContent = text;
  $("log-section").hidden = false;
  if (open) $("log-details").open = true;
}

async function poll() {
  let answer;
  try {
    answer = await getJson(appUrl(`/api/v1/build/${encodeURIComponent(hash)}`));
  } catch {
    setStatus("The server cannot be reached right now; trying again…");
    setTimeout(poll, RETRY_MS);
    return;
  }
  const { status, body } = answer;
  if (status === 202 && body) {
    if (body.detail === "queued") {
      remember("queued");
      markSteps("queued");
      const ahead = Number(body.queue_position || 0);
      $("queue-detail").textContent = ahead ? `(${ahead} ahead of yours)` : "(next in line)";
      setStatus(ahead ? `Queued: ${ahead} build${ahead === 1 ? "" : "s"} ahead of yours.` : "Queued: yours is next.");
    } else {
      const step = STEPS.includes(body.imagebuilder_status) ? body.imagebuilder_status : "init";
      remember(step);
      markSteps(step);
      $("queue-detail").textContent = "";
      setStatus(`${document.querySelector(`[data-step="${step}"] .step-label`).textContent}…`);
      showLog(body);
    }
    setTimeout(poll, POLL_MS);
    return;
  }
  if (status === 200 && body) {
    remember("done");
    markSteps("done");
    $("queue-detail").textContent = "";
    setStatus("Done: your firmware is ready.");
    showResult(body);
    showLog(body);
    return;
  }
  if (status === 404) {
    remember("missing");
    setStatus("");
    showFailure("This build is unknown to the server: the link is wrong, or the result has expired. Request it again from the builder.");
    return;
  }
  remember("failed");
  const reached = STEPS.indexOf(seen.filter((item) => STEPS.includes(item)).pop() || "queued");
  markSteps(STEPS[Math.max(reached, 1)], { failed: true });
  setStatus("");
  showFailure(detailOf(body, `The server answered ${status}.`));
  if (body) showLog(body, { open: true });
}

function showFailure(detail) {
  $("failure-detail").textContent = detail;
  $("failure").hidden = false;
}

function titleOf(title) {
  return title.title || [title.vendor, title.model, title.variant].filter(Boolean).join(" ");
}

function showResult(body) {
  const titles = (body.titles || []).map(titleOf).filter(Boolean);
  const device = titles[0] || body.id || "";
  document.title = `${device} · ${body.version_number || ""} · asud`;
  $("build-heading").textContent = `Firmware for ${device}`;
  $("result-device").textContent =
    `${body.target || ""} · ${body.version_number || ""} (${body.version_code || ""})` +
    (body.build_at ? ` · built from sources of ${body.build_at.slice(0, 10)}` : "");
  const images = body.images || [];
  $("images").replaceChildren(...images.map((image) => imageItem(body.bin_dir || hash, image)));
  const manifest = Object.entries(body.manifest || {});
  $("manifest-count").textContent = String(manifest.length);
  $("manifest").replaceChildren(...manifest.map(([name, version]) => h("tr", {}, h("td", {}, name), h("td", {}, version))));
  $("result").hidden = false;
}

function imageItem(binDir, image) {
  const url = appUrl(`/store/${encodeURIComponent(binDir)}/${encodeURIComponent(image.name)}`);
  const size = h("span", { class: "image-size" }, image.size ? formatSize(image.size) : "");
  if (!image.size) {
    fetch(url, { method: "HEAD", cache: "no-store" }).then((response) => {
      const length = response.headers.get("content-length");
      if (response.ok && length) size.textContent = formatSize(Number(length));
    }).catch(() => {});
  }
  const copied = h("span", { class: "hint", role: "status" });
  const copy = h("button", {
    type: "button", class: "secondary copy", "aria-label": `Copy the SHA-256 of ${image.name}`,
    onclick: async () => {
      copied.textContent = (await copyText(image.sha256)) ? "Copied." : "Select the checksum and copy it.";
    },
  }, "Copy");
  return h("li", { class: "image", "data-image-type": image.type, "data-image-name": image.name },
    h("h3", { class: "image-title" }, image.type, image.filesystem ? h("span", { class: "badge" }, image.filesystem) : null, size),
    h("p", { class: "image-name break" }, image.name),
    h("div", { class: "checksum" },
      h("span", { class: "checksum-label" }, "SHA-256"),
      h("code", { class: "sha256 break", "data-sha256": image.sha256 }, image.sha256),
      copy, copied),
    h("a", { class: "button primary download", href: url, download: image.name }, `Download ${image.type}`));
}

const MAX_LIVE_LINES = 5000;
const live = { source: null, step: null, started: null, offset: 0, ended: null, timer: null, lines: 0 };

function elapsedText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function showElapsed() {
  if (live.started === null) return;
  const now = live.ended !== null ? live.ended : Date.now() / 1000 - live.offset;
  $("live-log-elapsed").textContent = `· ${elapsedText(now - live.started)} elapsed`;
}

function liveTime(t) {
  if (!t) return;
  live.offset = Date.now() / 1000 - t;
  if (live.started === null) live.started = t;
}

function appendLive(text, cls) {
  const pre = $("live-log");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
  const line = document.createElement("span");
  line.textContent = `${text}\n`;
  if (cls) line.className = cls;
  pre.append(line);
  live.lines += 1;
  if (live.lines > MAX_LIVE_LINES) { pre.firstChild.remove(); live.lines -= 1; }
  pre.dataset.lines = String(Number(pre.dataset.lines) + 1);
  $("live-log-section").hidden = false;
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function setStep(step) {
  $("live-log-step").textContent = step ? `Step: ${step}` : "";
  $("live-log").dataset.step = step || "";
}

function followLog() {
  if (!("EventSource" in window)) return;
  const source = new EventSource(appUrl(`/api/v1/build/${encodeURIComponent(hash)}/log`));
  live.source = source;
  live.timer = setInterval(showElapsed, 1000);
  source.addEventListener("open", () => { $("live-log-connection").textContent = ""; });
  source.addEventListener("error", () => {
    if (live.ended === null) $("live-log-connection").textContent = "· reconnecting…";
  });
  source.addEventListener("line", (event) => {
    const data = JSON.parse(event.data);
    liveTime(data.t);
    if (data.step !== live.step) {
      live.step = data.step;
      setStep(data.step);
      appendLive(`==> ${data.step}`, "log-step");
    }
    appendLive(data.text);
    showElapsed();
  });
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    liveTime(data.t);
    if (data.stage) $("live-log").dataset.stage = data.stage;
  });
  source.addEventListener("end", (event) => {
    const data = JSON.parse(event.data);
    live.ended = data.t || Date.now() / 1000 - live.offset;
    appendLive(data.status === "done" ? "done" : `failed: ${data.detail}`, "log-step");
    showElapsed();
    $("live-log").dataset.ended = data.status;
    $("live-log-connection").textContent = "";
    source.close();
    clearInterval(live.timer);
  });
}

$("copy-link").addEventListener("click", async () => {
  $("copy-link-status").textContent = (await copyText(location.href)) ? "Link copied." : location.href;
});

poll();
followLog();
