// The Segments page's builder: a tree of groups and conditions, turned into the filter
// language of /api/segments, counted as you edit and saved under a name.
//
// Plain JavaScript, no build step, nothing fetched from elsewhere. Every word comes from the
// page: <script type="application/json" id="segment-builder-config"> holds the condition
// catalog, the labels and the translations of the API's messages in the page's language.
// Nothing typed by anyone is ever written as HTML: the DOM is built with textContent.

import { el, jsonHeaders, readJson } from "./common.js";

const PREVIEW_DELAY_MS = 350;

// Comparisons each input kind of the catalog offers, first one is the default.
const OPS = {
  set: ["in", "not_in"],
  postal_code: ["in", "not_in", "starts_with"],
  date: ["within_last_days", "more_than_days_ago", "before", "after"],
  purchase_date: ["within_last_days", "more_than_days_ago", "before", "after", "never"],
  custom_field: ["equals", "not_equals", "is_set", "is_not_set"],
};
// Condition types whose schema has no "op" (an age group is only ever "is one of").
const WITHOUT_OP = new Set(["age_group"]);
// How a group's select maps onto match + negate.
const MATCHES = {
  all: { match: "all", negate: false },
  any: { match: "any", negate: false },
  none: { match: "any", negate: true },
  not_all: { match: "all", negate: true },
};

const builderElement = document.querySelector("[data-segment-builder]");
const configElement = document.getElementById("segment-builder-config");
if (builderElement && configElement) {
  startBuilder(builderElement, JSON.parse(configElement.textContent));
}

function startBuilder(host, config) {
  const labels = config.labels;
  const catalog = config.catalog;
  const fields = new Map(catalog.fields.map((field) => [field.type, field]));
  const locale = document.documentElement.lang || undefined;
  const numbers = new Intl.NumberFormat(locale);
  const plurals = new Intl.PluralRules(locale);
  const saved = config.segment;

  const tree = host.querySelector("[data-role=tree]");
  const preview = host.querySelector("[data-role=preview]");
  const countOut = host.querySelector("[data-role=count]");
  const quotaOut = host.querySelector("[data-role=quota]");
  const statusOut = host.querySelector("[data-role=status]");
  const errorsOut = host.querySelector("[data-role=errors]");
  const sampleOut = host.querySelector("[data-role=sample]");
  const saveForm = host.querySelector("[data-role=save-form]");
  const saveError = host.querySelector("[data-role=save-error]");

  let nextId = 1;
  let timer = 0;
  let sequence = 0;
  let inFlight = null;
  let nodeByPath = new Map();

  const t = (key, values = {}) =>
    (labels[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  const translate = (message) => (message ? config.messages[message] || message : "");
  const plural = (key, count) =>
    t(`${key}_${plurals.select(count) === "one" ? "one" : "other"}`, {
      count: numbers.format(count),
    });

  // --- the model: groups and condition drafts -----------------------------------------------

  function newGroup(match = "all", negate = false, children = []) {
    return { id: nextId++, kind: "group", match, negate, children };
  }

  function newCondition(type) {
    const field = fields.get(type) || catalog.fields[0];
    const ops = OPS[field.kind] || [];
    return {
      id: nextId++,
      kind: "condition",
      type: field.type,
      op: ops[0] || "",
      values: [],
      pending: "",
      min: "",
      max: "",
      days: field.kind === "days" ? "28" : "",
      date: "",
      start: "",
      end: "",
      key: "",
      value: "",
    };
  }

  function fromDefinition(node) {
    if (node.type === "group") {
      return newGroup(
        node.match || "all",
        Boolean(node.negate),
        (node.conditions || []).map(fromDefinition),
      );
    }
    const draft = newCondition(node.type);
    if (node.op) draft.op = node.op;
    if (Array.isArray(node.values)) draft.values = node.values.map(String);
    for (const name of ["min", "max", "days", "date", "start", "end", "key", "value"]) {
      if (node[name] !== undefined && node[name] !== null) draft[name] = String(node[name]);
    }
    return draft;
  }

  const root = saved ? fromDefinition(saved.definition) : newGroup();

  // --- model → the API's definition, with the problems the page can see itself ---------------

  function valuesOf(draft, field) {
    const values = [...draft.values];
    const pending = normaliseValue(field, draft.pending);
    if (pending && !values.includes(pending)) values.push(pending);
    return values;
  }

  function normaliseValue(field, raw) {
    const value = (raw || "").trim();
    return field.type === "country" ? value.toUpperCase() : value;
  }

  function whole(text) {
    return /^\s*\d+\s*$/.test(text) ? Number.parseInt(text, 10) : NaN;
  }

  function serialise() {
    const problems = [];
    nodeByPath = new Map();

    function group(node, path) {
      nodeByPath.set(path, node);
      if (!node.children.length) problems.push([node, t("empty_group")]);
      return {
        type: "group",
        match: node.match,
        negate: node.negate,
        conditions: node.children.map((child, index) =>
          child.kind === "group"
            ? group(child, `${path}.conditions[${index}]`)
            : condition(child, `${path}.conditions[${index}]`),
        ),
      };
    }

    function range(draft, out, parse, problemKey) {
      let broken = false;
      for (const end of ["min", "max"]) {
        const text = draft[end].trim();
        if (!text) {
          out[end] = null;
          continue;
        }
        const parsed = parse(text);
        if (parsed === null || Number.isNaN(parsed)) broken = true;
        out[end] = parsed;
      }
      if (broken) problems.push([draft, t(problemKey)]);
      else if (out.min === null && out.max === null) problems.push([draft, t("need_range")]);
    }

    function condition(draft, path) {
      nodeByPath.set(path, draft);
      const field = fields.get(draft.type);
      const out = { type: draft.type };
      const need = (key) => problems.push([draft, t(key)]);
      switch (field.kind) {
        case "set":
        case "postal_code": {
          if (!WITHOUT_OP.has(draft.type) && draft.op !== "in") out.op = draft.op;
          out.values = valuesOf(draft, field);
          if (!out.values.length) need("need_values");
          break;
        }
        case "range":
          range(draft, out, whole, "need_number");
          break;
        case "money_range":
          range(
            draft,
            out,
            (text) => {
              const amount = text.replace(/\s/g, "").replace(",", ".");
              return /^-?\d+(\.\d+)?$/.test(amount) ? amount : null;
            },
            "need_amount",
          );
          break;
        case "days":
          out.days = whole(draft.days);
          if (Number.isNaN(out.days)) need("need_days");
          break;
        case "date":
        case "purchase_date":
          out.op = draft.op;
          if (draft.op === "before" || draft.op === "after") {
            out.date = draft.date;
            if (!draft.date) need("need_date");
          } else if (draft.op !== "never") {
            out.days = whole(draft.days);
            if (Number.isNaN(out.days)) need("need_days");
          }
          break;
        case "between_dates":
          out.start = draft.start;
          out.end = draft.end;
          if (!draft.start || !draft.end) need("need_date");
          break;
        case "custom_field":
          out.key = draft.key.trim();
          out.op = draft.op;
          if (!out.key) need("need_key");
          if (draft.op === "equals" || draft.op === "not_equals") {
            out.value = draft.value;
            if (!draft.value.trim()) need("need_value");
          }
          break;
        default:
          break;
      }
      return out;
    }

    return { definition: group(root, "$"), problems };
  }

  // --- rendering ----------------------------------------------------------------------------

  function choice(attrs, pairs, chosen) {
    const select = el(
      "select",
      attrs,
      pairs.map(([value, text]) => el("option", { value }, text)),
    );
    select.value = chosen;
    return select;
  }

  function rerender(focusId = null, focusRole = "type") {
    tree.replaceChildren(renderGroup(root, true));
    if (focusId !== null) {
      tree.querySelector(`[data-node-id="${focusId}"] [data-focus="${focusRole}"]`)?.focus();
    }
  }

  function changed() {
    clearTimeout(timer);
    preview.dataset.state = "counting";
    statusOut.textContent = t("counting");
    timer = setTimeout(runPreview, PREVIEW_DELAY_MS);
  }

  function structureChanged(focusId = null, focusRole = "type") {
    rerender(focusId, focusRole);
    changed();
  }

  function matchKey(group) {
    if (group.negate) return group.match === "any" ? "none" : "not_all";
    return group.match;
  }

  function renderGroup(group, isRoot, parent = null) {
    const matchSelect = choice(
      {
        class: "seg-match",
        "aria-label": t("group_match"),
        "data-focus": "type",
        onchange: (event) => {
          Object.assign(group, MATCHES[event.target.value]);
          if (!isRoot) {
            const box = event.target.closest(".seg-group");
            box.setAttribute("aria-label", t(`match_${matchKey(group)}`));
          }
          changed();
        },
      },
      ["all", "any", "none", "not_all"].map((key) => [key, t(`match_${key}`)]),
      matchKey(group),
    );
    const head = el(
      "div",
      { class: "seg-group-head" },
      isRoot ? el("span", { class: "seg-lead" }, t("customers_who_match")) : null,
      matchSelect,
      isRoot
        ? null
        : el(
            "button",
            {
              type: "button",
              class: "seg-remove",
              title: t("remove_group"),
              "aria-label": t("remove_group"),
              onclick: () => {
                parent.children.splice(parent.children.indexOf(group), 1);
                structureChanged();
              },
            },
            "×",
          ),
    );
    const list = el(
      "ol",
      { class: "seg-children" },
      group.children.map((child) =>
        el(
          "li",
          {},
          child.kind === "group"
            ? renderGroup(child, false, group)
            : renderCondition(child, group),
        ),
      ),
    );
    const actions = el(
      "div",
      { class: "seg-group-actions" },
      el(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-action": "add-condition",
          onclick: () => {
            const draft = newCondition(catalog.fields[0].type);
            group.children.push(draft);
            structureChanged(draft.id);
          },
        },
        `+ ${t("add_condition")}`,
      ),
      el(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-action": "add-group",
          onclick: () => {
            const draft = newCondition(catalog.fields[0].type);
            const inner = newGroup("any", false, [draft]);
            group.children.push(inner);
            structureChanged(draft.id);
          },
        },
        `+ ${t("add_group")}`,
      ),
    );
    const box = el(
      "div",
      {
        class: `seg-group${isRoot ? " seg-root" : ""}`,
        role: "group",
        "aria-label": isRoot ? t("customers_who_match") : t(`match_${matchKey(group)}`),
        "data-node-id": group.id,
        "data-testid": isRoot ? "root-group" : "group",
      },
      head,
      group.children.length ? list : null,
      el("div", { class: "seg-node-error", "data-error-for": group.id, role: "alert" }),
      actions,
    );
    return box;
  }

  function renderCondition(draft, parent) {
    const field = fields.get(draft.type);
    const typeSelect = choice(
      {
        class: "seg-type",
        "aria-label": t("condition"),
        "data-focus": "type",
        onchange: (event) => {
          const fresh = newCondition(event.target.value);
          fresh.id = draft.id;
          Object.assign(draft, fresh);
          structureChanged(draft.id);
        },
      },
      catalog.fields.map((item) => [item.type, item.label]),
      draft.type,
    );
    const parts = [typeSelect];
    if (field.kind === "custom_field") parts.push(customKeyInput(draft));
    const ops = OPS[field.kind];
    if (ops && !(WITHOUT_OP.has(draft.type))) {
      parts.push(
        choice(
          {
            class: "seg-op",
            "aria-label": t("comparison"),
            onchange: (event) => {
              draft.op = event.target.value;
              structureChanged(draft.id, "value");
            },
          },
          ops.map((op) => [op, t(`op_${op}`)]),
          draft.op,
        ),
      );
    }
    parts.push(el("div", { class: "seg-inputs" }, inputsFor(draft, field)));
    return el(
      "div",
      { class: "seg-condition", "data-node-id": draft.id, "data-testid": "condition" },
      el(
        "div",
        { class: "seg-condition-line" },
        parts,
        el(
          "button",
          {
            type: "button",
            class: "seg-remove",
            title: t("remove_condition"),
            "aria-label": t("remove_condition"),
            onclick: () => {
              parent.children.splice(parent.children.indexOf(draft), 1);
              structureChanged();
            },
          },
          "×",
        ),
      ),
      el("div", { class: "seg-node-error", "data-error-for": draft.id, role: "alert" }),
    );
  }

  function textInput(draft, name, attrs = {}) {
    return el("input", {
      value: draft[name],
      autocomplete: "off",
      oninput: (event) => {
        draft[name] = event.target.value;
        changed();
      },
      ...attrs,
    });
  }

  function labelled(text, input, unit = null) {
    // The unit stays outside the <label>, so the input's name is the label's text alone.
    return el(
      "span",
      { class: "seg-inline" },
      el("label", { class: "seg-inline" }, el("span", {}, text), input),
      unit,
    );
  }

  function customKeyInput(draft) {
    return textInput(draft, "key", {
      class: "seg-key",
      list: "seg-custom-keys",
      maxlength: "64",
      "aria-label": t("field_name"),
      placeholder: t("field_name"),
      "data-focus": "value",
    });
  }

  function inputsFor(draft, field) {
    switch (field.kind) {
      case "set":
        return field.options.length ? checkboxes(draft, field) : chips(draft, field);
      case "postal_code":
        return chips(draft, field);
      case "range": {
        const unit = draft.type === "age" ? el("span", { class: "muted" }, t("years")) : null;
        const number = (name) =>
          textInput(draft, name, {
            type: "number",
            min: "0",
            step: "1",
            inputmode: "numeric",
            class: "seg-number",
            "data-focus": name === "min" ? "value" : null,
          });
        return [labelled(t("minimum"), number("min")), labelled(t("maximum"), number("max"), unit)];
      }
      case "money_range": {
        const money = (name) =>
          textInput(draft, name, {
            inputmode: "decimal",
            class: "seg-number",
            placeholder: "0.00",
            "data-focus": name === "min" ? "value" : null,
          });
        const unit = () => el("span", { class: "muted" }, catalog.currency);
        return [
          labelled(t("minimum"), money("min"), unit()),
          labelled(t("maximum"), money("max"), unit()),
        ];
      }
      case "days":
        return daysInput(draft);
      case "date":
      case "purchase_date":
        if (draft.op === "before" || draft.op === "after") {
          return textInput(draft, "date", {
            type: "date",
            "aria-label": t("date"),
            "data-focus": "value",
          });
        }
        return draft.op === "never" ? [] : daysInput(draft);
      case "between_dates":
        return [
          labelled(
            t("first_day"),
            textInput(draft, "start", { type: "date", "data-focus": "value" }),
          ),
          labelled(t("last_day"), textInput(draft, "end", { type: "date" })),
        ];
      case "custom_field":
        if (draft.op === "is_set" || draft.op === "is_not_set") return [];
        return textInput(draft, "value", {
          maxlength: "1000",
          "aria-label": t("value"),
          placeholder: t("value"),
        });
      default:
        return [];
    }
  }

  function daysInput(draft) {
    return el(
      "span",
      { class: "seg-inline" },
      textInput(draft, "days", {
        type: "number",
        min: "1",
        step: "1",
        inputmode: "numeric",
        class: "seg-number",
        "aria-label": t("days"),
        "data-focus": "value",
      }),
      el("span", { class: "muted" }, t("days")),
    );
  }

  function checkboxes(draft, field) {
    return el(
      "div",
      { class: "seg-options", role: "group", "aria-label": t("values") },
      field.options.map((option, index) =>
        el(
          "label",
          { class: "seg-option" },
          el("input", {
            type: "checkbox",
            value: option.value,
            checked: draft.values.includes(option.value),
            "data-focus": index === 0 ? "value" : null,
            onchange: (event) => {
              draft.values = draft.values.filter((value) => value !== option.value);
              if (event.target.checked) draft.values.push(option.value);
              changed();
            },
          }),
          option.label,
        ),
      ),
    );
  }

  function chips(draft, field) {
    const list = { city: "seg-cities", country: "seg-countries" }[field.type] || null;
    const hint = {
      country: t("country_hint"),
      postal_code: t("postal_hint"),
    }[field.type];
    const add = (input) => {
      const value = normaliseValue(field, input.value);
      draft.pending = "";
      if (value && !draft.values.includes(value)) draft.values.push(value);
      structureChanged(draft.id, "value");
    };
    const input = el("input", {
      class: "seg-chip-input",
      value: draft.pending,
      list,
      autocomplete: "off",
      maxlength: field.type === "country" ? "2" : "100",
      "aria-label": `${field.label}: ${t("values")}`,
      placeholder: t("values_hint"),
      title: hint || t("values_hint"),
      "data-focus": "value",
      oninput: (event) => {
        draft.pending = event.target.value;
        // Picking a suggestion from the list is an input without typing: take it at once.
        if (!event.inputType || event.inputType === "insertReplacementText") add(event.target);
        else changed();
      },
      onkeydown: (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          if (event.target.value.trim()) add(event.target);
        } else if (event.key === "Backspace" && !event.target.value && draft.values.length) {
          draft.values.pop();
          structureChanged(draft.id, "value");
        }
      },
    });
    return el(
      "div",
      { class: "seg-chips" },
      draft.values.map((value) =>
        el(
          "span",
          { class: "seg-chip" },
          chipLabel(field, value),
          el(
            "button",
            {
              type: "button",
              "aria-label": t("remove_value", { value }),
              title: t("remove_value", { value }),
              onclick: () => {
                draft.values = draft.values.filter((kept) => kept !== value);
                structureChanged(draft.id, "value");
              },
            },
            "×",
          ),
        ),
      ),
      input,
      hint ? el("span", { class: "hint" }, hint) : null,
    );
  }

  function chipLabel(field, value) {
    if (field.type !== "country") return value;
    const name = countryNames.get(value);
    return name ? `${value} · ${name}` : value;
  }

  const countryNames = new Map(config.countries);
  host.append(
    el(
      "datalist",
      { id: "seg-cities" },
      catalog.cities.map((city) => el("option", { value: city })),
    ),
    el(
      "datalist",
      { id: "seg-countries" },
      config.countries.map(([code, name]) => el("option", { value: code }, name)),
    ),
    el(
      "datalist",
      { id: "seg-custom-keys" },
      catalog.custom_field_keys.map((key) => el("option", { value: key })),
    ),
  );

  // --- the count, the sample and the errors ----------------------------------------------

  function clearErrors() {
    errorsOut.replaceChildren();
    for (const box of tree.querySelectorAll("[data-error-for]")) box.replaceChildren();
    for (const box of tree.querySelectorAll(".seg-invalid")) box.classList.remove("seg-invalid");
  }

  function markNode(node, message) {
    const box = tree.querySelector(`[data-error-for="${node.id}"]`);
    if (!box) return false;
    box.append(el("div", {}, message));
    box.parentElement.classList.add("seg-invalid");
    return true;
  }

  // The API names a problem by a JSON path: the service relative to the definition
  // ("$.conditions[1].max"), the body decoder from the request body ("definition.conditions[1]",
  // or "$.definition.conditions[1]"). Both become the first form; "name" stays "name".
  function normalisePath(path) {
    const text = String(path || "");
    if (text.startsWith("$.definition")) return `$${text.slice("$.definition".length)}`;
    if (text.startsWith("definition")) return `$${text.slice("definition".length)}`;
    return text.startsWith("$.") && !text.startsWith("$.conditions") ? text.slice(2) : text;
  }

  function nodeForPath(path) {
    let key = path;
    if (!key.startsWith("$")) return null;
    while (key) {
      if (nodeByPath.has(key)) return nodeByPath.get(key);
      const cut = Math.max(key.lastIndexOf("."), key.lastIndexOf("["));
      if (cut <= 0) break;
      key = key.slice(0, cut);
    }
    return nodeByPath.get("$") || null;
  }

  function showCount(state, count = null, quota = null) {
    preview.dataset.state = state;
    if (count === null) {
      countOut.textContent = "–";
      delete countOut.dataset.count;
      countOut.removeAttribute("title");
      quotaOut.textContent = "";
      sampleOut.replaceChildren();
      return;
    }
    countOut.textContent = numbers.format(count);
    countOut.dataset.count = String(count);
    countOut.title = plural("recipients", count);
    quotaOut.textContent = plural("quota", quota);
    statusOut.textContent = "";
  }

  function showSample(members) {
    if (!members.length) {
      sampleOut.replaceChildren(el("p", { class: "muted small" }, t("no_members")));
      return;
    }
    const items = members.map((member) => {
      const name = `${member.first_name} ${member.last_name}`.trim() || member.email;
      const where = member.city ? ` · ${member.city}` : "";
      return el(
        "li",
        {},
        el(
          "div",
          { class: "seg-member-head" },
          el("a", { href: `/customers/${member.id}`, class: "ellipsis" }, name),
          el(
            "span",
            { class: `badge ${member.customer_type}` },
            config.customer_types[member.customer_type] || member.customer_type,
          ),
        ),
        el("div", { class: "small muted ellipsis", title: member.email }, member.email + where),
      );
    });
    sampleOut.replaceChildren(el("h3", {}, t("sample")), el("ul", { class: "seg-members" }, items));
  }

  // An answer of the API that is not a success: its message, the conditions it names, and
  // msgspec's technical wording folded away under "Details".
  function showApiError(target, title, body, status) {
    const unplaced = [];
    const technical = [];
    const seen = new Set();
    // A message the page knows is shown translated; anything else is the decoder's technical
    // wording: the condition gets a plain sentence, the wording goes under "Details".
    const report = (rawPath, message) => {
      const path = normalisePath(rawPath);
      if (seen.has(path)) return;
      seen.add(path);
      const known = message && config.messages[message];
      if (!known) technical.push(`${rawPath}: ${message}`);
      if (path === "name" || path === "description") {
        unplaced.push(known || (path === "name" ? t("name_required") : t("invalid_value")));
        return;
      }
      const text = known || t("invalid_value");
      const node = nodeForPath(path);
      if (!node || !markNode(node, text)) unplaced.push(text);
    };
    for (const [path, message] of Object.entries(body.fields || {})) report(path, message);
    const extra = Array.isArray(body.extra) ? body.extra : body.extra ? [body.extra] : [];
    for (const item of extra) {
      if (item && typeof item === "object") report(item.key || "", item.message);
      else technical.push(String(item));
    }
    const detail = translate(body.detail) || t("network_error");
    target.replaceChildren(
      el(
        "div",
        { class: "alert error seg-api-error", role: "alert", "data-status": status },
        el("strong", {}, title),
        el("p", {}, detail),
        unplaced.length
          ? el(
              "ul",
              {},
              [...new Set(unplaced)].filter((m) => m !== detail).map((m) => el("li", {}, m)),
            )
          : null,
        technical.length
          ? el(
              "details",
              {},
              el("summary", {}, t("details")),
              el("code", { class: "small" }, technical.join("\n")),
            )
          : null,
      ),
    );
  }

  async function runPreview() {
    clearErrors();
    if (!root.children.length) {
      showCount("empty");
      statusOut.textContent = t("start_hint");
      return;
    }
    const { definition, problems } = serialise();
    if (problems.length) {
      for (const [node, message] of problems) markNode(node, message);
      showCount("incomplete");
      statusOut.textContent = t("incomplete");
      return;
    }
    const mine = ++sequence;
    inFlight?.abort();
    inFlight = new AbortController();
    try {
      const response = await fetch("/api/segments/preview", {
        method: "POST",
        headers: jsonHeaders(),
        body: JSON.stringify({ definition, sample_size: config.sample_size }),
        signal: inFlight.signal,
        credentials: "same-origin",
      });
      const body = await readJson(response);
      if (mine !== sequence) return;
      if (!response.ok) {
        showCount("error");
        statusOut.textContent = "";
        showApiError(errorsOut, t("error_title"), body, response.status);
        return;
      }
      showCount("ready", body.count, body.quota_cost);
      showSample(body.sample);
    } catch (error) {
      if (error.name === "AbortError" || mine !== sequence) return;
      showCount("error");
      statusOut.textContent = "";
      errorsOut.replaceChildren(el("div", { class: "alert error", role: "alert" }, t("network_error")));
    }
  }

  // --- saving ---------------------------------------------------------------------------------

  const nameInput = saveForm.elements.namedItem("name");
  const descriptionInput = saveForm.elements.namedItem("description");
  const saveButton = saveForm.querySelector("button[type=submit]");
  if (saved) {
    nameInput.value = saved.name;
    descriptionInput.value = saved.description;
  }

  saveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    saveError.replaceChildren();
    nameInput.removeAttribute("aria-invalid");
    clearErrors();
    const name = nameInput.value.trim();
    if (!name) {
      nameInput.setAttribute("aria-invalid", "true");
      saveError.replaceChildren(el("div", { class: "alert error", role: "alert" }, t("name_required")));
      nameInput.focus();
      return;
    }
    const { definition, problems } = serialise();
    if (problems.length) {
      for (const [node, message] of problems) markNode(node, message);
      saveError.replaceChildren(el("div", { class: "alert error", role: "alert" }, t("incomplete")));
      return;
    }
    saveButton.disabled = true;
    const label = saveButton.textContent;
    saveButton.textContent = t("saving");
    try {
      const response = await fetch(saved ? `/api/segments/${saved.id}` : "/api/segments", {
        method: saved ? "PATCH" : "POST",
        headers: jsonHeaders(),
        body: JSON.stringify({ name, description: descriptionInput.value.trim(), definition }),
        credentials: "same-origin",
      });
      if (response.ok) {
        window.location.assign(
          `/segments?notice=${saved ? "segment_saved" : "segment_created"}`,
        );
        return;
      }
      showApiError(saveError, t("save_error_title"), await readJson(response), response.status);
    } catch {
      saveError.replaceChildren(el("div", { class: "alert error", role: "alert" }, t("network_error")));
    }
    saveButton.disabled = false;
    saveButton.textContent = label;
  });

  rerender();
  runPreview();
}
