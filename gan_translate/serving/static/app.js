// The page of `gan-translate serve`: pick a model, drop images, get one card per image.
// Plain JS, no build step, nothing loaded from elsewhere (the page's CSP allows only 'self', blob: and data:).
"use strict";

(() => {
  const MAX_CONCURRENT = 4;      // requests in flight at once; the server batches them
  const MAX_BUSY_RETRIES = 3;    // 503 with Retry-After: wait and try again this many times
  const READY_POLL_MS = 10000;
  const KIND_NAMES = { cyclegan: "CycleGAN", pix2pix: "pix2pix", cut: "CUT", fastcut: "FastCUT", dcgan: "DCGAN", adain: "AdaIN" };
  const GROUPS = { translate: "Translate", stylize: "Stylize", sample: "Generate" };

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), statusText: $("status-text"),
    model: $("model"), modelInfo: $("model-info"), modelError: $("model-error"),
    translateOptions: $("translate-options"), direction: $("direction"),
    stylizeOptions: $("stylize-options"), styleInput: $("style-input"), stylePreview: $("style-preview"),
    styleThumb: $("style-thumb"), styleName: $("style-name"),
    alphaField: $("alpha-field"), alpha: $("alpha"), alphaValue: $("alpha-value"),
    gatysFields: $("gatys-fields"), steps: $("steps"), size: $("size"),
    generateOptions: $("generate-options"), seed: $("seed"), randomSeed: $("random-seed"), count: $("count"),
    generate: $("generate"), format: $("format"),
    upload: $("upload"), dropZone: $("drop-zone"), fileInput: $("file-input"),
    results: $("results"), empty: $("empty"), clear: $("clear"), limits: $("limits"),
  };

  const state = {
    catalog: null,      // GET /v1/models
    choices: new Map(), // <option> value -> {key, name, label, capability, model, gatys}
    ready: null,        // last /readyz answer: true / false / null (unknown)
    styleFile: null,
    styleUrl: null,
  };

  // --- small helpers -----------------------------------------------------------------------------
  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function kindName(kind) {
    return KIND_NAMES[kind] || kind;
  }

  function formatBytes(bytes) {
    if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(bytes >= 10 * 2 ** 20 ? 0 : 1)} MB`;
    if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
    return `${bytes} B`;
  }

  function formatMs(ms) {
    if (!Number.isFinite(ms)) return "?";
    return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
  }

  function safeName(text) {
    return String(text).replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "") || "image";
  }

  function stem(fileName) {
    const base = String(fileName || "image").split(/[\\/]/).pop();
    const dot = base.lastIndexOf(".");
    return dot > 0 ? base.slice(0, dot) : base;
  }

  function extension(format) {
    return format === "jpeg" ? "jpg" : "png";
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** The one-line message of an error answer: the JSON `error` field, else the status line. */
  async function errorMessage(response) {
    let text = "";
    try {
      text = await response.text();
    } catch (_) {
      // the body could not be read: the status line has to do
    }
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string" && body.error) return body.error;
    } catch (_) {
      // not JSON (a proxy's page, say)
    }
    const line = `HTTP ${response.status}${response.statusText ? " " + response.statusText : ""}`;
    const plain = text.trim();
    return plain && plain.length <= 200 && !plain.startsWith("<") ? `${line}: ${plain}` : line;
  }

  // --- the request queue: at most MAX_CONCURRENT in flight -------------------------------------
  const queue = [];
  let active = 0;

  function enqueue(task) {
    queue.push(task);
    pump();
  }

  function pump() {
    while (active < MAX_CONCURRENT && queue.length) {
      const task = queue.shift();
      active += 1;
      Promise.resolve()
        .then(task)
        .catch((error) => console.warn("gan-translate: a request failed", error))
        .finally(() => {
          active -= 1;
          pump();
        });
    }
  }

  // --- status line ---------------------------------------------------------------------------------
  function renderStatus() {
    const catalog = state.catalog;
    let text;
    let kind;
    if (catalog === null) {
      text = "Connecting…";
      kind = "loading";
    } else if (catalog === false) {
      text = "Server unreachable";
      kind = "error";
    } else {
      const count = catalog.models.length;
      const models = `${count} model${count === 1 ? "" : "s"} loaded`;
      if (state.ready === true) {
        text = `${models} · ready`;
        kind = "ready";
      } else if (state.ready === false) {
        text = `${models} · not ready`;
        kind = "busy";
      } else {
        text = `${models} · server unreachable`;
        kind = "error";
      }
    }
    el.statusText.textContent = text;
    el.status.dataset.state = kind;
  }

  async function pollReady() {
    try {
      const response = await fetch("/readyz", { cache: "no-store" });
      state.ready = response.ok;
      if (!response.ok) el.status.title = await errorMessage(response);
      else el.status.removeAttribute("title");
    } catch (_) {
      state.ready = null;
      el.status.title = "the server did not answer /readyz";
    }
    renderStatus();
  }

  function startReadyPolling() {
    pollReady();
    setInterval(() => {
      if (document.visibilityState === "visible") pollReady();
    }, READY_POLL_MS);
  }

  // --- the model picker ----------------------------------------------------------------------------
  async function loadModels() {
    let catalog;
    try {
      const response = await fetch("/v1/models", { cache: "no-store" });
      if (!response.ok) throw new Error(await errorMessage(response));
      catalog = await response.json();
    } catch (error) {
      state.catalog = false;
      renderStatus();
      el.model.replaceChildren(make("option", "", "No models"));
      showModelError(`Could not load the model list: ${error.message || error}`);
      return;
    }
    state.catalog = catalog;
    buildChoices(catalog);
    renderLimits(catalog.limits);
    renderStatus();
  }

  function showModelError(message) {
    el.modelError.textContent = message;
    el.modelError.hidden = !message;
  }

  function modelLabel(model) {
    const parts = [kindName(model.kind)];
    if (model.training_size) parts.push(`${model.training_size} px`);
    return `${model.name} — ${parts.join(", ")}`;
  }

  function buildChoices(catalog) {
    state.choices.clear();
    const byCapability = { translate: [], stylize: [], sample: [] };
    for (const model of catalog.models) {
      const choice = { key: model.name, name: model.name, label: modelLabel(model), capability: model.capability, model, gatys: false };
      (byCapability[model.capability] || (byCapability[model.capability] = [])).push(choice);
    }
    const gatys = catalog.gatys || { available: false };
    if (gatys.available) {
      // a checkpoint called "gatys" would take the plain value; the option's value only has to be unique here
      const key = catalog.models.some((m) => m.name === "gatys") ? "__gatys__" : "gatys";
      byCapability.stylize.push({ key, name: "gatys", label: "Gatys (optimisation)", capability: "stylize", model: null, gatys: true });
    }
    const groups = Object.entries(byCapability).filter(([, choices]) => choices.length);
    const nodes = [];
    for (const [capability, choices] of groups) {
      const options = choices.map((choice) => {
        state.choices.set(choice.key, choice);
        const option = make("option", "", choice.label);
        option.value = choice.key;
        return option;
      });
      if (groups.length > 1) {
        const group = make("optgroup");
        group.label = GROUPS[capability] || capability;
        group.append(...options);
        nodes.push(group);
      } else {
        nodes.push(...options);
      }
    }
    if (!nodes.length) {
      el.model.replaceChildren(make("option", "", "No models loaded"));
      el.model.disabled = true;
      showModelError("The server has no model loaded.");
      applyMode();
      return;
    }
    el.model.replaceChildren(...nodes);
    el.model.disabled = false;
    showModelError("");
    el.model.dataset.loaded = String(state.choices.size);
    applyMode();
  }

  function renderLimits(limits) {
    if (!limits) return;
    const parts = [`uploads up to ${formatBytes(limits.max_upload_bytes)}`,
      `${(limits.max_pixels / 1e6).toFixed(1)} MP per image`, `at least ${limits.min_side} px a side`];
    el.limits.textContent = parts.join(" · ");
    el.count.max = String(limits.max_generate);
    if (Number(el.count.value) > limits.max_generate) el.count.value = String(limits.max_generate);
  }

  function currentChoice() {
    return state.choices.get(el.model.value) || null;
  }

  /** Show the options of the chosen model's capability, and its directions. */
  function applyMode() {
    const choice = currentChoice();
    const capability = choice ? choice.capability : null;
    el.translateOptions.hidden = capability !== "translate";
    el.stylizeOptions.hidden = capability !== "stylize";
    el.generateOptions.hidden = capability !== "sample";
    el.upload.hidden = capability === "sample";
    el.dropZone.classList.toggle("disabled", !choice);
    el.fileInput.disabled = !choice;
    document.body.dataset.mode = capability || "none";

    if (capability === "translate") {
      const previous = el.direction.value;
      const directions = choice.model.directions.length ? choice.model.directions : ["AtoB"];
      el.direction.replaceChildren(...directions.map((direction) => {
        const option = make("option", "", direction.replace(/^(\w)to(\w)$/, "$1 → $2"));
        option.value = direction;
        return option;
      }));
      if (directions.includes(previous)) el.direction.value = previous;
      el.direction.disabled = directions.length < 2;
    }
    if (capability === "stylize") {
      el.alphaField.hidden = choice.gatys;
      el.gatysFields.hidden = !choice.gatys;
      const gatys = state.catalog.gatys || {};
      if (gatys.max_steps) {
        el.steps.max = String(gatys.max_steps);
        el.steps.placeholder = `≤ ${gatys.max_steps}`;
      }
      if (gatys.max_size) {
        el.size.max = String(gatys.max_size);
        el.size.placeholder = `≤ ${gatys.max_size}`;
      }
    }
    el.modelInfo.textContent = choice ? describe(choice) : "";
    const title = { translate: "Drop images to translate, or tap to choose",
      stylize: "Drop content images here, or tap to choose" }[capability];
    if (title) $("drop-title").textContent = title;
  }

  function describe(choice) {
    if (choice.gatys) {
      const gatys = state.catalog.gatys;
      return `Optimises each image to match the style image's VGG statistics: slow, any style. At most ${gatys.max_steps} steps at ${gatys.max_size} px.`;
    }
    const model = choice.model;
    const parts = [kindName(model.kind)];
    if (model.capability === "translate") parts.push(`translates ${model.directions.join(", ") || "AtoB"}`);
    if (model.capability === "stylize") parts.push("fast arbitrary style transfer");
    if (model.capability === "sample") {
      parts.push("samples from noise");
      if (model.resolution) parts.push(`${model.resolution} px images`);
    }
    if (model.training_size) parts.push(`trained at ${model.training_size} px`);
    if (model.file) parts.push(model.file);
    return parts.join(" · ");
  }

  // --- result cards --------------------------------------------------------------------------------
  /** A card: title, optional input preview, a result slot, timing, error line and actions. */
  function createCard({ title, meta, inputFile, inputAlt }) {
    const card = make("article", "result");
    card.dataset.state = "queued";
    const urls = [];

    const head = make("header", "result-head");
    const heading = make("h3", "result-title", title);
    heading.title = title;
    const metaLine = make("p", "result-meta", meta);
    const remove = make("button", "icon-button remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${title}`);
    remove.title = "Remove";
    const headText = make("div", "result-head-text");
    headText.append(heading, metaLine);
    head.append(headText, remove);

    const images = make("div", "result-images");
    let inputCaption = null;
    if (inputFile) {
      const figure = make("figure", "frame");
      const url = URL.createObjectURL(inputFile);
      urls.push(url);
      const img = make("img", "input");
      img.alt = inputAlt || `Input: ${title}`;
      img.decoding = "async";
      inputCaption = make("figcaption", "", "Input");
      img.addEventListener("load", () => {
        inputCaption.textContent = `Input · ${img.naturalWidth} × ${img.naturalHeight}`;
      });
      img.addEventListener("error", () => {
        img.replaceWith(make("div", "placeholder", "No preview"));
      });
      img.src = url;
      figure.append(img, inputCaption);
      images.append(figure);
    } else {
      images.classList.add("single");
    }
    const outFigure = make("figure", "frame");
    const slot = make("div", "placeholder working");
    slot.append(make("span", "spinner"), make("span", "slot-text", "Queued…"));
    const outCaption = make("figcaption", "", "Result");
    outFigure.append(slot, outCaption);
    images.append(outFigure);

    const timing = make("p", "timing");
    const error = make("p", "error");
    error.setAttribute("role", "alert");
    error.hidden = true;

    const actions = make("div", "actions");
    const download = make("a", "button primary small download", "Download");
    download.hidden = true;
    const retry = make("button", "button secondary small retry", "Retry");
    retry.type = "button";
    retry.hidden = true;
    actions.append(download, retry);

    card.append(head, images, timing, error, actions);

    const api = {
      card, timing, urls,
      setStatus(text) {
        slot.querySelector(".slot-text").textContent = text;
      },
      start() {
        card.dataset.state = "working";
        api.setStatus("Working…");
        error.hidden = true;
        retry.hidden = true;
        slot.className = "placeholder working";
        if (!slot.isConnected) outFigure.replaceChildren(slot, outCaption);
      },
      fail(message, retryable = true) {
        card.dataset.state = "error";
        const shown = outFigure.querySelector("img.output");
        if (shown) shown.replaceWith(slot);
        download.hidden = true;
        slot.className = "placeholder failed";
        api.setStatus("No result");
        error.textContent = message.charAt(0).toUpperCase() + message.slice(1);
        error.hidden = false;
        retry.hidden = !(api.onRetry && retryable);
        outCaption.textContent = "Result";
      },
      succeed({ blob, fileName, alt, serverMs, roundTripMs, sizeHeader }) {
        if (!card.isConnected) return; // removed while its request ran
        const url = URL.createObjectURL(blob);
        urls.push(url);
        const img = make("img", "output");
        img.alt = alt;
        img.decoding = "async";
        img.addEventListener("load", () => {
          img.dataset.width = String(img.naturalWidth);
          img.dataset.height = String(img.naturalHeight);
          outCaption.textContent = `Result · ${img.naturalWidth} × ${img.naturalHeight}`;
          if (sizeHeader && sizeHeader !== `${img.naturalWidth}x${img.naturalHeight}`) outCaption.textContent += ` (server: ${sizeHeader})`;
          card.dataset.state = "done";
        });
        img.addEventListener("error", () => api.fail("The server's answer is not an image this browser can show.", false));
        img.src = url;
        slot.replaceWith(img);
        const parts = [];
        if (serverMs !== null) parts.push(`server ${formatMs(serverMs)}`);
        parts.push(`round trip ${formatMs(roundTripMs)}`);
        parts.push(formatBytes(blob.size));
        timing.textContent = parts.join(" · ");
        download.href = url;
        download.download = fileName;
        download.setAttribute("aria-label", `Download ${fileName}`);
        download.hidden = false;
      },
      onRetry: null,
    };

    retry.addEventListener("click", () => api.onRetry && api.onRetry());
    remove.addEventListener("click", () => {
      urls.forEach((url) => URL.revokeObjectURL(url));
      card.remove();
      updateEmpty();
    });
    return api;
  }

  function addCards(cards) {
    const fragment = document.createDocumentFragment();
    cards.forEach((card) => fragment.append(card.card));
    el.results.prepend(fragment); // the newest batch first, in the order it was given
    updateEmpty();
  }

  function updateEmpty() {
    const any = el.results.children.length > 0;
    el.empty.hidden = any;
    el.clear.hidden = !any;
  }

  /** POST ``body`` to ``url`` and fill ``card`` with the image (or the server's error). */
  async function send(card, url, makeBody, { fileName, alt }) {
    if (!card.card.isConnected) return; // removed while it waited in the queue
    card.start();
    for (let attempt = 0; ; attempt += 1) {
      const started = performance.now();
      let response;
      try {
        response = await fetch(url, { method: "POST", ...makeBody() });
      } catch (error) {
        card.fail(`Could not reach the server (${error.message || error}).`);
        return;
      }
      if (response.ok) {
        let blob;
        try {
          blob = await response.blob();
        } catch (error) {
          card.fail(`The answer broke off (${error.message || error}).`);
          return;
        }
        const roundTripMs = performance.now() - started;
        const elapsed = parseFloat(response.headers.get("X-Elapsed-Ms"));
        card.succeed({
          blob, fileName, alt, roundTripMs,
          serverMs: Number.isFinite(elapsed) ? elapsed : null,
          sizeHeader: response.headers.get("X-Image-Size"),
        });
        return;
      }
      const retryAfter = parseFloat(response.headers.get("Retry-After"));
      const message = await errorMessage(response);
      if (response.status === 503 && Number.isFinite(retryAfter) && attempt < MAX_BUSY_RETRIES) {
        const wait = Math.min(Math.max(retryAfter, 0.5), 30);
        card.setStatus(`Server busy, retrying in ${Math.ceil(wait)} s…`);
        await sleep(wait * 1000);
        card.setStatus("Working…");
        continue;
      }
      // a 4xx is the request's fault: the same request would fail again; a 5xx may pass on a second try
      card.fail(`${message} (HTTP ${response.status})`, response.status >= 500 || response.status === 408);
      return;
    }
  }

  function tooLarge(files) {
    const limits = state.catalog && state.catalog.limits;
    if (!limits) return null;
    const total = files.reduce((sum, file) => sum + file.size, 0);
    if (total <= limits.max_upload_bytes) return null;
    return `The upload is ${formatBytes(total)}; this server takes at most ${formatBytes(limits.max_upload_bytes)} per request.`;
  }

  // --- the three kinds of request ------------------------------------------------------------------
  function addFiles(fileList) {
    const files = Array.from(fileList || []).filter((file) => file && file.size !== undefined);
    const choice = currentChoice();
    if (!files.length || !choice || choice.capability === "sample") return;
    const format = el.format.value;
    const cards = [];
    for (const file of files) {
      let card;
      let job;
      if (choice.capability === "translate") {
        const direction = el.direction.value || "AtoB";
        card = createCard({ title: file.name || "pasted image", meta: `${choice.name} · ${direction.replace("to", " → ")}`, inputFile: file });
        const options = {
          fileName: `${safeName(stem(file.name))}_${safeName(choice.name)}.${extension(format)}`,
          alt: `${file.name || "image"} translated ${direction.replace("to", " to ")} by ${choice.name}`,
        };
        job = () => {
          const oversize = tooLarge([file]);
          if (oversize) return card.fail(oversize, false);
          return send(card, "/v1/translate", () => {
            const form = new FormData();
            form.append("image", file, file.name || "image");
            form.append("model", choice.name);
            form.append("direction", direction);
            form.append("format", format);
            return { body: form };
          }, options);
        };
      } else {
        let style = state.styleFile; // the style chosen when the image was given (or later, for a retry)
        const params = choice.gatys ? { steps: el.steps.value, size: el.size.value } : { alpha: el.alpha.value };
        const meta = choice.gatys
          ? `Gatys${params.steps ? ` · ${params.steps} steps` : ""}${params.size ? ` · ${params.size} px` : ""}`
          : `${choice.name} · strength ${Number(params.alpha).toFixed(2)}`;
        card = createCard({ title: file.name || "pasted image", meta, inputFile: file, inputAlt: `Content: ${file.name || "image"}` });
        job = () => {
          style = style || state.styleFile;
          if (!style) return card.fail("Choose a style image first (the Style image field), then retry.");
          const oversize = tooLarge([file, style]);
          if (oversize) return card.fail(oversize, false);
          return send(card, "/v1/stylize", () => {
            const form = new FormData();
            form.append("content", file, file.name || "content");
            form.append("style", style, style.name || "style");
            form.append("model", choice.name);
            if (choice.gatys) {
              if (params.steps) form.append("steps", params.steps);
              if (params.size) form.append("size", params.size);
            } else {
              form.append("alpha", params.alpha);
            }
            form.append("format", format);
            return { body: form };
          }, {
            fileName: `${safeName(stem(file.name))}_${safeName(choice.name)}.${extension(format)}`,
            alt: `${file.name || "image"} in the style of ${style.name || "the style image"}`,
          });
        };
      }
      card.onRetry = () => enqueue(job);
      cards.push(card);
      enqueue(job);
    }
    addCards(cards);
  }

  function generate() {
    const choice = currentChoice();
    if (!choice || choice.capability !== "sample") return;
    const seed = Math.max(0, Math.min(2147483647, Math.floor(Number(el.seed.value) || 0)));
    const max = (state.catalog.limits && state.catalog.limits.max_generate) || 64;
    const count = Math.max(1, Math.min(max, Math.floor(Number(el.count.value) || 1)));
    el.seed.value = String(seed);
    el.count.value = String(count);
    const format = el.format.value;
    const card = createCard({ title: `${choice.name} · seed ${seed}`, meta: `${count} image${count === 1 ? "" : "s"}${count > 1 ? " in a grid" : ""}` });
    const job = () => send(card, "/v1/generate", () => ({
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: choice.name, seed, count, format, layout: "grid" }),
    }), {
      fileName: `${safeName(choice.name)}_seed${seed}${count > 1 ? `_x${count}` : ""}.${extension(format)}`,
      alt: `${count} image${count === 1 ? "" : "s"} generated by ${choice.name} from seed ${seed}`,
    });
    card.onRetry = () => enqueue(job);
    addCards([card]);
    enqueue(job);
  }

  function setStyle(file) {
    if (state.styleUrl) URL.revokeObjectURL(state.styleUrl);
    state.styleFile = file || null;
    state.styleUrl = file ? URL.createObjectURL(file) : null;
    el.stylePreview.hidden = !file;
    if (file) {
      el.styleThumb.src = state.styleUrl;
      el.styleName.textContent = `${file.name} · ${formatBytes(file.size)}`;
    } else {
      el.styleThumb.removeAttribute("src");
    }
  }

  // --- events --------------------------------------------------------------------------------------
  function bind() {
    el.model.addEventListener("change", applyMode);
    el.fileInput.addEventListener("change", () => {
      addFiles(el.fileInput.files);
      el.fileInput.value = ""; // the same file can be chosen again
    });
    el.styleInput.addEventListener("change", () => setStyle(el.styleInput.files[0]));
    el.alpha.addEventListener("input", () => {
      el.alphaValue.textContent = Number(el.alpha.value).toFixed(2);
    });
    el.generate.addEventListener("click", generate);
    el.randomSeed.addEventListener("click", () => {
      el.seed.value = String(Math.floor(Math.random() * 2147483647));
    });
    el.clear.addEventListener("click", () => {
      for (const button of Array.from(el.results.querySelectorAll(".remove"))) button.click();
    });

    // drag and drop anywhere on the page; the drop zone lights up
    let depth = 0;
    const hasFiles = (event) => Array.from(event.dataTransfer ? event.dataTransfer.types : []).includes("Files");
    document.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      depth += 1;
      el.dropZone.classList.add("dragging");
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) el.dropZone.classList.remove("dragging");
    });
    document.addEventListener("dragover", (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    document.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault(); // never navigate away to the dropped file
      depth = 0;
      el.dropZone.classList.remove("dragging");
      addFiles(event.dataTransfer.files);
    });
    document.addEventListener("paste", (event) => {
      const items = Array.from((event.clipboardData && event.clipboardData.items) || []);
      const files = items.filter((item) => item.kind === "file" && item.type.startsWith("image/")).map((item) => item.getAsFile());
      if (files.length) {
        event.preventDefault();
        addFiles(files);
      }
    });
  }

  bind();
  updateEmpty();
  loadModels().then(startReadyPolling);
})();
