// The composer's design step: edits a campaign's blocks, saves them with PATCH
// /api/campaigns/{id}, and keeps a live preview (POST …/preview with the unsaved draft).
//
// Plain JavaScript, no build step, nothing fetched from elsewhere. Every word comes from the
// page: <script type="application/json" id="composer-config"> holds the labels, the blocks
// and the translations of the API's messages in the page's language. Nothing typed by anyone
// is ever written as HTML: the DOM is built with textContent and .value, and the preview's
// HTML only ever goes into the srcdoc of an <iframe sandbox=""> (no scripts, no same origin).

import { csrfToken, el, jsonHeaders, readJson } from "./common.js";

const PREVIEW_DELAY_MS = 400;
const IMAGE_TYPES = "image/png,image/jpeg,image/gif,image/webp";

const composerElement = document.querySelector("[data-composer]");
const previewElement = document.querySelector("[data-preview]");
const configElement = document.getElementById("composer-config");
if (composerElement && previewElement && configElement) {
  startComposer(composerElement, previewElement, JSON.parse(configElement.textContent));
}

function newOffer() {
  return { title: "", text: "", image_src: "", image_alt: "", price: "", button_label: "", href: "" };
}

function startComposer(host, previewHost, config) {
  const labels = config.labels;
  const csrf = csrfToken();
  const campaignId = config.campaign.id;
  let blocks = structuredClone(config.campaign.blocks);
  let savedJson = JSON.stringify(blocks);

  const editor = host.querySelector("[data-role=editor]");
  const list = host.querySelector("[data-role=blocks]");
  const saveError = host.querySelector("[data-role=save-error]");
  const saveStatus = host.querySelector("[data-role=save-status]");
  const saveButton = host.querySelector("[data-action=save]");
  const continueLink = host.querySelector("[data-action=continue]");
  const placeholderHint = host.querySelector("[data-role=placeholder-hint]");
  const addButtons = [...host.querySelectorAll("[data-add]")];

  const previewForm = previewHost.querySelector("[data-role=preview-form]");
  const customerSelect = previewHost.querySelector("[data-role=preview-customer]");
  const languageSelect = previewHost.querySelector("[data-role=preview-language]");
  const frame = previewHost.querySelector("iframe");
  const previewStatus = previewHost.querySelector("[data-role=preview-status]");
  const out = (role) => previewHost.querySelector(`[data-role=${role}]`);

  let lastField = null;
  let timer = 0;
  let sequence = 0;
  let inFlight = null;
  let saving = false;

  const t = (key, values = {}) =>
    (labels[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

  // --- the API's English messages, in the page's language ------------------------------------

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  const patterns = config.patterns.map(([english, translated]) => {
    const names = [];
    const source = english
      .split(/\{(\w+)\}/)
      .map((part, index) => {
        if (index % 2 === 0) return escapeRegExp(part);
        names.push(part);
        return "(.+?)";
      })
      .join("");
    return { regex: new RegExp(`^${source}$`), names, translated };
  });

  // A message the page knows is shown translated; the body decoder's technical wording
  // ("Expected `str` of length >= 1") becomes a plain sentence.
  function friendly(message) {
    const text = String(message || "");
    if (config.messages[text]) return config.messages[text];
    for (const pattern of patterns) {
      const found = pattern.regex.exec(text);
      if (found) {
        const values = Object.fromEntries(pattern.names.map((name, i) => [name, found[i + 1]]));
        return pattern.translated.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
      }
    }
    if (/missing required field|length >= 1/.test(text)) return t("required");
    const longest = /length <= (\d+)/.exec(text);
    if (longest) return t("too_long", { count: longest[1] });
    return t("invalid");
  }

  const translate = (message) => (message ? config.messages[message] || friendly(message) : "");

  // --- fields -----------------------------------------------------------------------------

  function fieldId(path) {
    return `cmp-${path.replace(/[^\w]+/g, "-")}`;
  }

  // A labelled input bound to target[key]. ``path`` is where the API names its problems
  // ("blocks[2].href"): the error box next to the input carries it.
  function field(target, key, path, label, options = {}) {
    const { multiline = false, number = false, hint = "", placeholders = false, attrs = {} } =
      options;
    const input = el(multiline ? "textarea" : "input", {
      id: fieldId(path),
      autocomplete: "off",
      "data-path": path,
      "data-placeholders": placeholders || null,
      "aria-describedby": `${fieldId(path)}-error`,
      ...(number ? { type: "number", inputmode: "numeric", step: "1" } : {}),
      ...attrs,
      oninput: (event) => {
        const value = event.target.value;
        target[key] = number && /^\s*\d+\s*$/.test(value) ? Number.parseInt(value, 10) : value;
        changed();
      },
    });
    input.value = target[key] ?? "";
    return el(
      "div",
      { class: `cmp-field${multiline ? " cmp-field-wide" : ""}` },
      el("label", { for: input.id }, label),
      options.toolbar ? options.toolbar(input) : null,
      input,
      hint ? el("span", { class: "hint" }, hint) : null,
      el("div", { class: "field-error", id: `${fieldId(path)}-error`, "data-error-for": path }),
    );
  }

  function select(target, key, path, label, pairs) {
    const input = el(
      "select",
      {
        id: fieldId(path),
        "data-path": path,
        onchange: (event) => {
          target[key] = Number.parseInt(event.target.value, 10);
          changed();
        },
      },
      pairs.map(([value, text]) => el("option", { value: String(value) }, text)),
    );
    input.value = String(target[key]);
    return el(
      "div",
      { class: "cmp-field" },
      el("label", { for: input.id }, label),
      input,
      el("div", { class: "field-error", "data-error-for": path }),
    );
  }

  // B / I / link buttons that write Markdown around the selection.
  function markdownToolbar(textarea) {
    const wrap = (before, after, fallback, selectAfter = null) => {
      const { selectionStart: start, selectionEnd: end, value } = textarea;
      const chosen = value.slice(start, end) || fallback;
      textarea.setRangeText(before + chosen + after, start, end, "end");
      textarea.focus();
      if (selectAfter) {
        // The link's address is selected, so typing replaces it.
        const from = start + before.length + chosen.length + selectAfter[0];
        textarea.setSelectionRange(from, from + selectAfter[1]);
      } else {
        textarea.setSelectionRange(start + before.length, start + before.length + chosen.length);
      }
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    };
    const button = (text, key, action, className) =>
      el(
        "button",
        {
          type: "button",
          class: `secondary cmp-tool ${className}`,
          title: t(key),
          "aria-label": t(key),
          onclick: action,
        },
        text,
      );
    return el(
      "div",
      { class: "cmp-toolbar", role: "toolbar", "aria-label": t("formatting") },
      button("B", "bold", () => wrap("**", "**", t("bold_text")), "cmp-bold"),
      button("I", "italic", () => wrap("*", "*", t("italic_text")), "cmp-italic"),
      button(t("link"), "link", () => wrap("[", "](https://)", t("link_text"), [2, 8]), ""),
    );
  }

  function uploadControl(target, key, path) {
    const status = el("span", { class: "small muted", "aria-live": "polite" });
    const input = el("input", {
      type: "file",
      accept: IMAGE_TYPES,
      id: `${fieldId(path)}-upload`,
      onchange: async () => {
        const chosen = input.files[0];
        if (!chosen) return;
        status.classList.remove("field-error");
        if (chosen.size > config.max_upload_bytes) {
          status.classList.add("field-error");
          status.textContent = translate("The image is larger than 5 MB.");
          input.value = "";
          return;
        }
        status.textContent = t("uploading");
        const body = new FormData();
        body.append("file", chosen);
        try {
          const response = await fetch("/api/media", {
            method: "POST",
            headers: { accept: "application/json", "x-csrf-token": csrf },
            body,
            credentials: "same-origin",
          });
          const data = await readJson(response);
          if (!response.ok) {
            status.classList.add("field-error");
            status.textContent = `${t("upload_failed")} ${translate(data.detail)}`;
            return;
          }
          target[key] = data.url;
          const srcInput = list.querySelector(`[data-path="${CSS.escape(path)}"]`);
          if (srcInput) srcInput.value = data.url;
          status.textContent = t("uploaded");
          changed();
        } catch {
          status.classList.add("field-error");
          status.textContent = t("network_error");
        } finally {
          input.value = "";
        }
      },
    });
    return el(
      "div",
      { class: "cmp-field cmp-upload" },
      el("label", { for: input.id }, t("upload")),
      input,
      status,
    );
  }

  function imageFields(target, keys, path) {
    const [src, alt, href] = keys;
    return [
      uploadControl(target, src, `${path}.${src}`),
      field(target, src, `${path}.${src}`, t("image_src"), {
        hint: t("image_src_hint"),
        attrs: { inputmode: "url", maxlength: "2000", placeholder: "https://" },
      }),
      field(target, alt, `${path}.${alt}`, t("alt"), {
        hint: t("alt_hint"),
        placeholders: true,
        attrs: { maxlength: "300" },
      }),
      href
        ? field(target, href, `${path}.${href}`, t("image_href"), {
            attrs: { inputmode: "url", maxlength: "2000", placeholder: "https://" },
          })
        : null,
    ];
  }

  function fieldsFor(block, path) {
    switch (block.type) {
      case "heading":
        return [
          field(block, "text", `${path}.text`, t("heading_text"), {
            placeholders: true,
            attrs: { maxlength: "300" },
          }),
          select(block, "level", `${path}.level`, t("heading_level"), [
            [1, t("level_1")],
            [2, t("level_2")],
          ]),
        ];
      case "text":
        return field(block, "markdown", `${path}.markdown`, t("markdown"), {
          multiline: true,
          placeholders: true,
          hint: t("markdown_hint"),
          toolbar: markdownToolbar,
          attrs: { rows: "6", maxlength: "20000" },
        });
      case "image":
        return [
          ...imageFields(block, ["src", "alt", "href"], path),
          field(block, "width", `${path}.width`, t("width"), {
            number: true,
            attrs: { min: "40", max: "600" },
          }),
        ];
      case "button":
        return [
          field(block, "label", `${path}.label`, t("button_label"), {
            placeholders: true,
            attrs: { maxlength: "120" },
          }),
          field(block, "href", `${path}.href`, t("button_href"), {
            attrs: { inputmode: "url", maxlength: "2000", placeholder: "https://" },
          }),
        ];
      case "columns":
        return block.items.map((item, column) => {
          const at = `${path}.items[${column}]`;
          return el(
            "fieldset",
            { class: "cmp-column" },
            el("legend", {}, t("column_n", { number: column + 1 })),
            field(item, "title", `${at}.title`, t("title"), {
              placeholders: true,
              attrs: { maxlength: "300" },
            }),
            field(item, "text", `${at}.text`, t("column_text"), {
              multiline: true,
              placeholders: true,
              attrs: { rows: "3", maxlength: "2000" },
            }),
            imageFields(item, ["image_src", "image_alt"], at),
            field(item, "price", `${at}.price`, t("price"), { attrs: { maxlength: "40" } }),
            field(item, "button_label", `${at}.button_label`, t("button_label"), {
              attrs: { maxlength: "120" },
            }),
            field(item, "href", `${at}.href`, t("button_href"), {
              attrs: { inputmode: "url", maxlength: "2000", placeholder: "https://" },
            }),
          );
        });
      case "divider":
        return el("p", { class: "small muted" }, t("divider_hint"));
      case "spacer":
        return field(block, "height", `${path}.height`, t("height"), {
          number: true,
          attrs: { min: "4", max: "120" },
        });
      default:
        return [];
    }
  }

  // --- the list of blocks ----------------------------------------------------------------------

  const DEFAULTS = {
    heading: () => ({ type: "heading", text: t("new_heading"), level: 1 }),
    text: () => ({ type: "text", markdown: "" }),
    image: () => ({ type: "image", src: "", alt: "", href: "", width: 600 }),
    button: () => ({ type: "button", label: t("new_button"), href: "" }),
    columns: () => ({ type: "columns", items: [newOffer(), newOffer()] }),
    divider: () => ({ type: "divider" }),
    spacer: () => ({ type: "spacer", height: 24 }),
  };

  function actionButton(text, key, disabled, onclick, index) {
    return el(
      "button",
      {
        type: "button",
        class: "secondary cmp-tool",
        title: t(key),
        "aria-label": t(key),
        "data-block-action": key,
        "data-index": String(index),
        disabled,
        onclick,
      },
      text,
    );
  }

  function renderBlock(block, index) {
    const path = `blocks[${index}]`;
    const title = t("block_n", {
      number: index + 1,
      type: config.block_types[block.type] || block.type,
    });
    return el(
      "li",
      {
        class: "cmp-block",
        "data-testid": "block",
        "data-type": block.type,
        tabindex: "-1",
        role: "group",
        "aria-label": title,
      },
      el(
        "div",
        { class: "cmp-block-head" },
        el("span", { class: "cmp-block-title" }, title),
        el(
          "div",
          { class: "cmp-block-actions" },
          actionButton("↑", "move_up", index === 0, () => move(index, -1, "move_up"), index),
          actionButton(
            "↓",
            "move_down",
            index === blocks.length - 1,
            () => move(index, 1, "move_down"),
            index,
          ),
          actionButton("×", "remove_block", false, () => remove(index), index),
        ),
      ),
      el("div", { class: "cmp-block-body" }, fieldsFor(block, path)),
      el("div", { class: "field-error", "data-error-for": path }),
    );
  }

  function render() {
    list.replaceChildren(
      ...(blocks.length
        ? blocks.map(renderBlock)
        : [el("li", { class: "muted cmp-empty-blocks" }, t("no_blocks"))]),
    );
    const full = blocks.length >= config.max_blocks;
    for (const button of addButtons) {
      button.disabled = full;
      button.title = full ? t("too_many", { count: config.max_blocks }) : "";
    }
  }

  function move(index, step, key) {
    const to = index + step;
    [blocks[index], blocks[to]] = [blocks[to], blocks[index]];
    render();
    const again = list.querySelector(`[data-block-action="${key}"][data-index="${to}"]`);
    (again && !again.disabled ? again : list.querySelectorAll(".cmp-block")[to])?.focus();
    changed();
  }

  function remove(index) {
    blocks.splice(index, 1);
    render();
    const next = list.querySelectorAll(".cmp-block")[Math.min(index, blocks.length - 1)];
    next?.querySelector("input, textarea, select, button")?.focus();
    changed();
  }

  for (const button of addButtons) {
    button.addEventListener("click", () => {
      if (blocks.length >= config.max_blocks) return;
      blocks.push(DEFAULTS[button.dataset.add]());
      render();
      const added = list.lastElementChild;
      added.scrollIntoView({ block: "nearest" });
      added.querySelector("input:not([type=file]), textarea, select")?.focus();
      changed();
    });
  }

  // --- placeholders --------------------------------------------------------------------------

  list.addEventListener("focusin", (event) => {
    if (event.target.matches("[data-placeholders]")) {
      lastField = event.target;
      placeholderHint.textContent = "";
    }
  });

  for (const button of host.querySelectorAll("[data-insert]")) {
    // Keep the text field's cursor: the button must not take the focus on mousedown.
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => {
      if (!lastField || !lastField.isConnected) {
        placeholderHint.textContent = t("insert_into");
        return;
      }
      const start = lastField.selectionStart ?? lastField.value.length;
      const end = lastField.selectionEnd ?? start;
      lastField.setRangeText(button.dataset.insert, start, end, "end");
      lastField.focus();
      lastField.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  // --- problems next to the field they name ----------------------------------------------------

  function clearErrors() {
    for (const box of list.querySelectorAll("[data-error-for]")) box.replaceChildren();
    for (const input of list.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
  }

  // The service names "blocks[2].href", the body decoder "$.blocks[2].href" (in a preview
  // "$.draft.blocks[2].href"); a problem of a part without its own box ("blocks[2]") goes to
  // the nearest enclosing one.
  function showErrors(fields) {
    const unplaced = [];
    for (const [raw, message] of Object.entries(fields || {})) {
      let path = String(raw || "")
        .replace(/^\$\.?/, "")
        .replace(/^draft\./, "");
      const text = friendly(message);
      let box = null;
      while (path) {
        box = list.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
        if (box) break;
        const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
        if (cut <= 0) break;
        path = path.slice(0, cut);
      }
      if (!box) {
        unplaced.push(text);
        continue;
      }
      box.append(el("div", {}, text));
      list.querySelector(`[data-path="${CSS.escape(path)}"]`)?.setAttribute("aria-invalid", "true");
    }
    return [...new Set(unplaced)];
  }

  function problemAlert(title, detail, unplaced) {
    return el(
      "div",
      { class: "alert error", role: "alert" },
      el("strong", {}, title),
      detail && detail !== title ? el("p", {}, detail) : null,
      unplaced.length ? el("ul", {}, unplaced.map((message) => el("li", {}, message))) : null,
    );
  }

  // --- saving ----------------------------------------------------------------------------------

  function dirty() {
    return JSON.stringify(blocks) !== savedJson;
  }

  function showDirty() {
    if (!saving) saveStatus.textContent = dirty() ? t("unsaved") : t("saved");
  }

  async function save() {
    const sent = JSON.stringify(blocks);
    saving = true;
    saveButton.disabled = true;
    saveStatus.textContent = t("saving");
    saveError.replaceChildren();
    try {
      const response = await fetch(`/api/campaigns/${campaignId}`, {
        method: "PATCH",
        headers: jsonHeaders(),
        body: JSON.stringify({ blocks: JSON.parse(sent) }),
        credentials: "same-origin",
      });
      const body = await readJson(response);
      if (response.ok) {
        savedJson = sent;
        return true;
      }
      clearErrors();
      const unplaced = showErrors(body.fields);
      saveError.replaceChildren(
        problemAlert(t("save_error"), translate(body.detail), unplaced),
      );
      return false;
    } catch {
      saveError.replaceChildren(problemAlert(t("network_error"), "", []));
      return false;
    } finally {
      saving = false;
      saveButton.disabled = false;
      showDirty();
    }
  }

  saveButton.addEventListener("click", () => save());
  continueLink.addEventListener("click", async (event) => {
    event.preventDefault();
    if (await save()) window.location.assign(continueLink.href);
  });
  window.addEventListener("beforeunload", (event) => {
    if (dirty()) event.preventDefault();
  });

  // --- the live preview --------------------------------------------------------------------

  function changed() {
    showDirty();
    schedulePreview(PREVIEW_DELAY_MS);
  }

  function schedulePreview(delay) {
    clearTimeout(timer);
    previewHost.dataset.state = "updating";
    timer = setTimeout(runPreview, delay);
  }

  function languageName(code) {
    const option = [...languageSelect.options].find((item) => item.value === code);
    return option ? option.textContent : code;
  }

  async function runPreview() {
    const mine = ++sequence;
    inFlight?.abort();
    inFlight = new AbortController();
    const request = { draft: { blocks } };
    if (customerSelect.value) request.customer_id = Number.parseInt(customerSelect.value, 10);
    else request.language = languageSelect.value;
    previewStatus.replaceChildren(el("span", { class: "small muted" }, t("previewing")));
    try {
      const response = await fetch(`/api/campaigns/${campaignId}/preview`, {
        method: "POST",
        headers: jsonHeaders(),
        body: JSON.stringify(request),
        signal: inFlight.signal,
        credentials: "same-origin",
      });
      const body = await readJson(response);
      if (mine !== sequence) return;
      clearErrors();
      if (!response.ok) {
        previewHost.dataset.state = "error";
        const unplaced = showErrors(body.fields);
        previewStatus.replaceChildren(
          problemAlert(t("preview_error"), t("preview_stale"), [
            ...(body.fields ? [] : [translate(body.detail)]),
            ...unplaced,
          ]),
        );
        return;
      }
      saveError.replaceChildren();
      frame.srcdoc = body.html;
      out("preview-subject").textContent = body.subject;
      out("preview-preheader").textContent = body.preheader;
      out("preview-sender").textContent = body.sender;
      out("preview-language-name").textContent = languageName(body.language);
      previewStatus.replaceChildren();
      previewHost.dataset.state = "ready";
    } catch (error) {
      if (error.name === "AbortError" || mine !== sequence) return;
      previewHost.dataset.state = "error";
      previewStatus.replaceChildren(problemAlert(t("network_error"), "", []));
    }
  }

  function choosePerson() {
    // A customer gets the newsletter in their own language; the choice is for the sample.
    languageSelect.disabled = Boolean(customerSelect.value);
    schedulePreview(0);
  }

  customerSelect.addEventListener("change", choosePerson);
  languageSelect.addEventListener("change", () => schedulePreview(0));
  previewForm.addEventListener("submit", (event) => {
    event.preventDefault();
    schedulePreview(0);
  });
  previewForm.querySelector("[data-role=preview-submit]").hidden = true;
  languageSelect.disabled = Boolean(customerSelect.value);

  editor.hidden = false;
  render();
  showDirty();
}
