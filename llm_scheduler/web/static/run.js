// The run page (/runs/ID) and the trace view (/traces/view): live status from server-sent events,
// a task's details on demand, actions. Everything from the server (model answers included) is put
// into the page as text only: llmWeb.el / textContent, never innerHTML.
(function () {
  "use strict";

  const W = window.llmWeb;
  const el = W.el;
  const svg = W.svg;
  const clear = W.clear;

  // How long after a progress event the run's JSON is fetched again (events come in bursts).
  const REFRESH_DELAY_MS = 300;
  // A map task's items are drawn this many at a time ("Show more items"), and fetched from the
  // server (a stored run) this many at a time: a map of 100,000 items never draws them all.
  const ITEMS_CHUNK = 50;
  const ITEMS_FETCH = 200;

  // -- formatting ----------------------------------------------------------------------------

  function fixed(value, digits) {
    return Number(value || 0).toFixed(digits);
  }

  function moment(iso) {
    return iso ? iso.slice(0, 23).replace("T", " ") : "—";
  }

  // Appends children to node as llmWeb.el does: strings as text, arrays flattened, and null,
  // undefined and false left out (the DOM's own append would write "null").
  function put(node, ...children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) put(node, ...child);
      else node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pretty(value) {
    return JSON.stringify(value === undefined ? null : value, null, 2);
  }

  function badge(status) {
    return el("span", { class: "badge " + W.statusClass(status) }, status);
  }

  function fact(label, ...value) {
    return el("div", {}, el("dt", {}, label), el("dd", {}, ...value));
  }

  function tokens(usage, withCached) {
    let text = usage.input_tokens + " in / " + usage.output_tokens + " out";
    if (withCached) text += " / " + usage.cached_input_tokens + " cached";
    else if (usage.cached_input_tokens) text += " (" + usage.cached_input_tokens + " cached)";
    if (usage.cache_write_input_tokens) text += " / " + usage.cache_write_input_tokens + " cache write";
    return text;
  }

  function errorNotice(error) {
    let text = ": " + error.message;
    if (error.http_status) text += " (HTTP " + error.http_status + ")";
    if (error.retryable) text += " — retryable, retries ran out";
    return el("div", { class: "notice error", role: "alert" },
      el("strong", {}, error.type || "Error"), text);
  }

  function values(label, value, open) {
    return el("details", { class: "values", open: open },
      el("summary", {}, label), el("pre", {}, pretty(value)));
  }

  function field(label, text, className) {
    return [el("div", { class: "field-label" }, label), el("pre", { class: className || null }, text)];
  }

  // A link to a run (a child run of a sub-job step), or its id alone when it has no page.
  function runLink(runId, url, className) {
    return url ? el("a", { class: "mono " + (className || ""), href: url }, runId)
      : el("span", { class: "mono" }, runId);
  }

  // "Waiting for child run X (status)" of a task or an item WAITING for its sub-job's child.
  function waitingNotice(child) {
    return el("p", { class: "notice waiting-child", role: "status" },
      "Waiting for child run ", runLink(child.run_id, child.url), " ", badge(child.status));
  }

  // -- the run's sections (the same markup as the templates) ----------------------------------

  function renderHeader(container, data) {
    const run = data.run;
    const links = data.links || {};
    const job = links.job ? el("a", { href: links.job }, run.job_name) : run.job_name;
    const counts = Object.entries(data.counts).filter((entry) => entry[1] > 0)
      .map((entry) => el("span", { class: "badge " + W.statusClass(entry[0]) }, entry[1] + " " + entry[0]));
    const parent = run.parent_run_id
      ? fact("Parent run", links.parent
        ? el("a", { class: "mono", href: links.parent }, run.parent_run_id)
        : el("span", { class: "mono" }, run.parent_run_id))
      : null;
    const caller = run.caller;
    const calledBy = caller ? el("div", { class: "caller" }, el("dt", {}, "Called by"),
      el("dd", { id: "run-caller" }, caller.url ? [
        el("a", { class: "mono", href: caller.url }, "run " + caller.run_id), ", task ",
        el("a", { class: "mono", href: caller.task_url },
          caller.task_id + (caller.item_index === null ? "" : "[" + caller.item_index + "]")),
        ", step " + caller.step_index,
      ] : caller.label)) : null;
    clear(container);
    put(container,
      el("h1", { class: "run-title" },
        el("span", {}, data.read_only ? "Trace of run" : "Run"), " ",
        el("span", { class: "mono", id: "run-id" }, run.run_id), " ",
        el("span", { class: "badge " + W.statusClass(run.status), id: "run-status" }, run.status)),
      el("dl", { class: "facts" },
        fact("Job", job, run.job_name !== run.job_id ? [" ", el("span", { class: "mono muted" }, run.job_id)] : null),
        fact("Started", moment(run.started_at)),
        fact("Finished", moment(run.finished_at)),
        fact("Duration", run.duration_seconds === null ? "—" : fixed(run.duration_seconds, 2) + " s"),
        fact("Tokens", tokens(run.usage, false)),
        fact("Cost", "$" + fixed(run.cost_usd, 4)),
        el("div", {}, el("dt", {}, "Tasks"), el("dd", { class: "counts" }, counts.length ? counts : "none")),
        parent,
        calledBy),
      run.error ? errorNotice(run.error) : null,
      values("Inputs", run.inputs, false),
      values("Outputs", run.outputs, run.finished),
    );
  }

  function drawTimeline(container, timeline) {
    clear(container);
    const root = svg("svg", {
      class: "timeline", id: "run-timeline", width: timeline.width, height: timeline.height,
      viewBox: "0 0 " + timeline.width + " " + timeline.height,
      role: "group", "aria-label": "Timeline of the tasks",
    });
    const axis = svg("g", { class: "timeline-axis" });
    for (const tick of timeline.ticks) {
      axis.append(
        svg("line", { class: "timeline-grid", x1: tick.x, x2: tick.x, y1: 16, y2: timeline.height }),
        svg("text", { class: "timeline-tick", x: tick.x, y: 12 }, tick.label));
    }
    root.append(axis);
    for (const row of timeline.rows) {
      const group = svg("g", { class: "timeline-row " + W.statusClass(row.status), "data-task-id": row.task_id },
        svg("title", {}, row.title),
        svg("text", { class: "timeline-label", x: 4, y: row.y + 14 }, row.label));
      if (row.bar) {
        group.append(svg("rect", {
          class: "timeline-bar", x: row.bar.x, y: row.y + 4, width: row.bar.width,
          height: timeline.row_height - 8, rx: 3,
        }));
      }
      root.append(group);
    }
    container.append(root);
  }

  function renderTaskList(container, data) {
    const links = data.links || {};
    const rows = data.tasks.map((task) => el("tr", { "data-task-id": task.task_id },
      el("td", {}, el("a", {
        class: "task-link", "data-task-id": task.task_id,
        href: links.tasks ? links.tasks + task.task_id : "#",
      }, task.task_id)),
      el("td", {}, task.name, task.error ? el("div", { class: "run-error small" }, task.error) : null,
        task.waiting_child ? el("div", { class: "small waiting-child" }, "waiting for child run ",
          runLink(task.waiting_child.run_id, task.waiting_child.url)) : null),
      el("td", {}, badge(task.status)),
      el("td", { class: "num" }, task.attempt ? String(task.attempt) : ""),
      el("td", { class: "num" }, task.is_map || task.is_strategy
        ? el("span", { class: "items-label" }, task.items_label)
        : task.steps_done + "/" + task.step_count),
      el("td", { class: "num" }, task.start_offset === null ? "" : "+" + fixed(task.start_offset, 2) + " s"),
      el("td", { class: "num" }, task.duration_seconds === null ? "" : fixed(task.duration_seconds, 2) + " s"),
      el("td", { class: "num" }, task.usage.input_tokens + " / " + task.usage.output_tokens),
      el("td", { class: "num" }, "$" + fixed(task.cost_usd, 4))));
    const head = ["Task", "Name", "Status", "Attempt", "Steps", "Start", "Duration", "Tokens in / out", "Cost"]
      .map((name, index) => el("th", { scope: "col", class: index >= 3 ? "num" : null }, name));
    clear(container);
    container.append(el("table", { class: "table", id: "tasks" },
      el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows)));
  }

  function renderStep(step) {
    const summary = el("summary", {},
      el("span", { class: "mono" }, String(step.index)), " ", step.name || step.step_id, " ",
      el("span", { class: "muted" }, "(" + step.type.replace("_", " ") + ")"), " ", badge(step.status));
    const body = el("div", { class: "step-body" });
    if (step.sub_job) {
      const child = step.child_run;
      put(body, el("dl", { class: "facts sub-job" },
        fact("Sub-job", el("span", { class: "mono" }, step.sub_job)),
        el("div", {}, el("dt", {}, "Child run"), el("dd", { class: "child-run" }, child
          ? [runLink(child.run_id, child.url, "child-run-link"), " ", badge(child.status)]
          : "not started")),
        child ? [
          fact("Child tokens", tokens(child.usage, false)),
          fact("Child cost", "$" + fixed(child.cost_usd, 6)),
        ] : null));
      if (step.status !== "pending") {
        put(body, step.error ? errorNotice(step.error) : null, field("Outputs", pretty(step.outputs)));
      }
    } else if (step.status === "pending") {
      let text = "Not run yet";
      if (step.model_key) text += " · " + step.model_key;
      if (step.function_name) text += " · " + step.function_name + "()";
      put(body, el("p", { class: "muted" }, text));
    } else {
      const isFunction = step.type === "function_call";
      let attempts = String(step.attempts);
      if (step.retries) attempts += " (" + step.retries + (step.retries === 1 ? " retry)" : " retries)");
      put(body,
        step.error ? errorNotice(step.error) : null,
        el("dl", { class: "facts" },
          isFunction ? fact("Function", el("span", { class: "mono" }, step.function_name)) : [
            fact("Model key", el("span", { class: "mono" }, step.model_key)),
            fact("Provider", step.provider + " · ", el("span", { class: "mono" }, step.provider_model)),
            fact("Tokens", tokens(step.usage, true)),
            fact("Cost", "$" + fixed(step.cost_usd, 6)),
          ],
          fact("Latency", fixed(step.latency_seconds, 3) + " s"),
          fact("Attempts", attempts),
          step.cache_hit ? fact("Cache", "hit (no provider call)") : null,
          step.reused_from_run_id
            ? fact("Reused from", el("a", { class: "mono", href: "/runs/" + encodeURIComponent(step.reused_from_run_id) }, step.reused_from_run_id))
            : null,
          fact("Fingerprint", el("span", { class: "mono small" }, step.fingerprint || "—"))),
        isFunction ? [
          field("Request", pretty(step.function_request)),
          field("Response", pretty(step.function_response), "step-response"),
        ] : step.type === "embedding" ? [
          Object.keys(step.parameters || {}).length ? field("Parameters", pretty(step.parameters)) : null,
          field("Input", step.embedding_input, "step-prompt"),
          field("Embedding (" + (step.embedding || []).length + " dimensions)", "[" + (step.embedding || []).join(", ") + "]", "step-response"),
        ] : [
          Object.keys(step.parameters || {}).length ? field("Parameters", pretty(step.parameters)) : null,
          step.response_format ? field("Response format", pretty(step.response_format)) : null,
          field("System prompt", step.system_prompt),
          field("User prompt", step.user_prompt, "step-prompt"),
          field("Response", step.response_text, "step-response"),
        ],
        field("Outputs", pretty(step.outputs)));
    }
    return el("details", { class: "step", "data-step-index": step.index, open: step.status !== "pending" },
      summary, body);
  }

  function renderSteps(steps) {
    return steps.length ? steps.map(renderStep) : el("p", { class: "muted" }, "This task has no steps.");
  }

  // A map task's items: a row each (index, status, tokens, cost, latency, error) that opens to
  // the item's steps. Rows are drawn ITEMS_CHUNK at a time; an item's steps are drawn (and, for
  // a stored run, fetched) only when it is opened.
  class ItemList {
    // task: the task's details (with items); taskUrl: its page, or null for a trace (whose
    // items carry their details).
    constructor(task, taskUrl) {
      this.rows = (task.items || []).slice();
      this.next = task.items_next_offset;
      this.total = task.items_total || 0;
      this.taskUrl = taskUrl;
      this.shown = 0;
      this.list = el("div", { class: "map-items", role: "list", "aria-label": "Items of " + task.task_id });
      this.more = el("button", { type: "button", class: "secondary map-items-more" }, "Show more items");
      this.more.addEventListener("click", () => this.showMore());
      this.count = el("p", { class: "muted small map-items-count" });
      this.element = el("div", {},
        this.count,
        el("div", { class: "map-item-row map-items-head", "aria-hidden": "true" },
          el("span", { class: "num" }, "Item"), el("span", {}, "Status"),
          el("span", { class: "num" }, "Tokens in / out"), el("span", { class: "num" }, "Cost"),
          el("span", { class: "num" }, "Latency")),
        this.list, this.more);
    }

    // Shows at least `count` rows (as many as are there), and opens the items in `open`.
    async start(count, open) {
      while (this.shown < Math.max(count, ITEMS_CHUNK) && await this.showMore()) { /* next chunk */ }
      this.updateCount();
      for (const item of this.list.querySelectorAll("details.map-item")) {
        if (open.has(item.getAttribute("data-item-index"))) item.open = true;
      }
    }

    updateCount() {
      this.count.textContent = this.total
        ? "Showing " + this.shown + " of " + this.total + " items; open one to see its steps."
        : "No items.";
      this.more.hidden = this.shown >= this.rows.length && (this.next === null || this.next === undefined || !this.taskUrl);
    }

    // Draws the next chunk of rows (fetching the next page first when needed); false if none.
    async showMore() {
      if (this.shown >= this.rows.length && this.next !== null && this.next !== undefined && this.taskUrl) {
        this.more.disabled = true;
        const result = await W.fetchJson(this.taskUrl + ".json?items_offset=" + this.next + "&items_limit=" + ITEMS_FETCH);
        this.more.disabled = false;
        if (!result.ok) return false;
        this.rows.push(...result.data.items);
        this.next = result.data.items_next_offset;
      }
      const chunk = this.rows.slice(this.shown, this.shown + ITEMS_CHUNK);
      for (const row of chunk) this.list.append(this.itemElement(row));
      this.shown += chunk.length;
      this.updateCount();
      return chunk.length > 0;
    }

    itemElement(row) {
      const summary = el("summary", { class: "map-item-row" },
        el("span", { class: "num mono item-index" }, String(row.item_index)),
        el("span", {}, badge(row.status)),
        el("span", { class: "num" }, row.usage.input_tokens + " / " + row.usage.output_tokens),
        el("span", { class: "num" }, "$" + fixed(row.cost_usd, 4)),
        el("span", { class: "num" }, row.duration_seconds === null ? "" : fixed(row.duration_seconds, 2) + " s"),
        row.error ? el("span", { class: "run-error small map-item-error" }, row.error) : null);
      const body = el("div", { class: "map-item-body" });
      const item = el("details", { class: "map-item", role: "listitem", "data-item-index": row.item_index },
        summary, body);
      let loaded = false;
      item.addEventListener("toggle", async () => {
        if (!item.open || loaded) return;
        loaded = true;
        put(body, el("p", { class: "muted" }, "Loading item " + row.item_index + "…"));
        let details = row.details || null;
        const itemUrl = this.taskUrl ? this.taskUrl + "/items/" + row.item_index : null;
        if (details === null && itemUrl) {
          const result = await W.fetchJson(itemUrl + ".json");
          if (!result.ok) {
            loaded = false;
            clear(body).append(el("div", { class: "notice error" },
              "Cannot load item " + row.item_index + ": " + (result.data.error || result.data.detail || result.status)));
            return;
          }
          details = result.data;
        }
        clear(body);
        if (details === null) return;
        put(body,
          el("dl", { class: "facts" },
            fact("Item run", el("span", { class: "mono" }, details.task_run_id)),
            fact("Attempt", String(details.attempt)),
            fact("Steps", details.steps_done + "/" + details.step_count),
            fact("Tokens", tokens(details.usage, false))),
          details.waiting_child ? waitingNotice(details.waiting_child) : null,
          details.error ? errorNotice(details.error) : null,
          values("Inputs", details.inputs, false),
          values("Outputs", details.outputs, false),
          renderSteps(details.steps),
          itemUrl ? el("p", {}, el("a", { href: itemUrl }, "Item page"), " · ",
            el("a", { href: itemUrl + ".json" }, "JSON")) : null);
      });
      return item;
    }
  }

  // A strategy task's variations side by side (the markup of _task_details.html): each row's
  // output cut short, in full when its details are opened.
  function renderStrategy(strategy) {
    if (!strategy.variations.length) {
      return el("p", { class: "muted" }, "No variation has run yet (" + strategy.variations_total + " to run).");
    }
    const head = ["Variation", ...strategy.axes, "Status", "Output", "Tokens in / out", "Cost", "Latency"]
      .map((name, index) => el("th", { scope: "col", class: index >= strategy.axes.length + 3 ? "num" : null }, name));
    const rows = strategy.variations.map((row) => el("tr", { "data-variation": row.variation },
      el("td", { class: "mono small" }, row.variation),
      strategy.axes.map((axis) => el("td", {}, row.parameters[axis] || "")),
      el("td", {}, badge(row.status.toLowerCase()), row.reused ? [" ", el("span", { class: "muted small" }, "reused")] : null),
      el("td", { class: "variation-output" }, row.output_cut
        ? el("details", { class: "output-full" }, el("summary", {}, row.output_short), el("pre", {}, row.output))
        : el("span", { class: "output-short" + (row.error ? " run-error" : "") }, row.output)),
      el("td", { class: "num" }, row.input_tokens + " / " + row.output_tokens),
      el("td", { class: "num" }, "$" + fixed(row.cost_usd, 4)),
      el("td", { class: "num" }, fixed(row.latency_seconds, 2) + " s")));
    return el("div", { class: "table-scroll" }, el("table", { class: "table strategy-table", id: "strategy-variations" },
      el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows)));
  }

  function renderTaskDetails(panel, task, taskUrl) {
    clear(panel);
    const items = task.is_map ? new ItemList(task, taskUrl) : null;
    put(panel,
      el("h2", {}, el("span", { class: "mono" }, task.task_id), task.name ? " · " + task.name : "", " ",
        badge(task.status)),
      task.description ? el("p", {}, task.description) : null,
      el("dl", { class: "facts" },
        fact("Attempt", String(task.attempt)),
        task.is_map ? [
          fact("For each", el("span", { class: "mono" }, task.map.item_variable + " in " + task.map.items)),
          fact("Items", el("span", { class: "items-label" }, task.items_label)),
        ] : task.strategy ? [
          fact("Strategy", task.strategy.axes.join(" × ") + (task.strategy.in_series ? " (in series)" : "")),
          fact("Variations", el("span", { class: "items-label" }, task.items_label)),
        ] : fact("Steps", task.steps_done + "/" + task.step_count),
        fact("Duration", task.duration_seconds === null ? "—" : fixed(task.duration_seconds, 3) + " s"),
        fact("Tokens", tokens(task.usage, false)),
        fact("Cost", "$" + fixed(task.cost_usd, 6)),
        fact("After", task.predecessors.join(", ") || "—"),
        fact("Next", task.next_tasks.join(", ") || "—")),
      task.waiting_child ? waitingNotice(task.waiting_child) : null,
      task.error ? errorNotice(task.error) : null,
      values("Inputs", task.inputs, false),
      values("Outputs", task.outputs, true),
      el("h3", {}, task.is_map ? "Items" : task.strategy ? "Variations" : "Steps"),
      items ? items.element : task.strategy ? renderStrategy(task.strategy) : renderSteps(task.steps),
      taskUrl ? el("p", {}, el("a", { href: taskUrl }, "Task page"), " · ",
        el("a", { href: taskUrl + ".json" }, "JSON")) : null,
    );
    return items;
  }

  // -- one run shown: selection, details, refresh ---------------------------------------------

  class RunView {
    // options.details: {task_id: details} (a trace), else details are fetched from links.tasks.
    constructor(data, options) {
      this.data = data;
      this.details = (options && options.details) || null;
      this.selected = null;
      this.graphBox = document.getElementById("graph-box");
      this.timelineBox = document.getElementById("timeline-box");
      this.taskList = document.getElementById("task-list");
      this.header = document.getElementById("run-header");
      this.panel = document.getElementById("task-details");
      this.loading = null;
      this.items = null; // the ItemList of the map task shown, if any
      // Whether the timeline and the task table are drawn (a large run's wait to be scrolled to).
      this.sections = !(options && options.deferSections);
      this.wire();
    }

    // Clicks and keys are handled on the containers, so re-drawn content needs no wiring.
    wire() {
      const taskOf = (event, selector) => {
        const node = event.target.closest(selector);
        return node ? node.getAttribute("data-task-id") : null;
      };
      this.graphBox.addEventListener("click", (event) => {
        const taskId = taskOf(event, "g.graph-node");
        if (taskId !== null) this.select(taskId, false);
      });
      this.graphBox.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" && event.key !== " ") return;
        const taskId = taskOf(event, "g.graph-node");
        if (taskId === null) return;
        event.preventDefault();
        this.select(taskId, true);
      });
      this.timelineBox.addEventListener("click", (event) => {
        const taskId = taskOf(event, "g.timeline-row");
        if (taskId !== null) this.select(taskId, false);
      });
      this.taskList.addEventListener("click", (event) => {
        const taskId = taskOf(event, "a.task-link");
        if (taskId === null) return;
        event.preventDefault();
        // A click from the keyboard (Enter on the link) has detail 0.
        this.select(taskId, event.detail === 0);
      });
    }

    render() {
      renderHeader(this.header, this.data);
      W.drawGraph(this.graphBox, this.data.graph, { id: "run-graph", onSelect: null });
      for (const node of this.graphBox.querySelectorAll("g.graph-node")) {
        node.setAttribute("tabindex", "0");
        node.setAttribute("role", "button");
      }
      this.drawSections();
      this.markSelected();
    }

    // A newer version of the run's data: redraw what changed (the graph only changes colour).
    update(data) {
      this.data = data;
      renderHeader(this.header, data);
      const nodes = new Map();
      for (const node of this.graphBox.querySelectorAll("g.graph-node")) {
        nodes.set(node.getAttribute("data-task-id"), node);
      }
      for (const task of data.tasks) {
        const node = nodes.get(task.task_id);
        if (node) W.setStatus(node, task.status);
      }
      // A map's box also shows its items' progress: it is drawn again (same place and size).
      for (const drawn of data.graph.nodes) {
        const node = nodes.get(drawn.task_id);
        if (!drawn.is_map || !node) continue;
        const fresh = W.graphNodeElement(drawn, {});
        fresh.setAttribute("tabindex", "0");
        fresh.setAttribute("role", "button");
        node.replaceWith(fresh);
      }
      if (this.sections) this.drawSections();
      this.markSelected();
    }

    drawSections() {
      drawTimeline(this.timelineBox, this.data.timeline);
      renderTaskList(this.taskList, this.data);
    }

    // A task's status as the events tell it, before the run's data is fetched again.
    setTaskStatus(taskId, status, graphOnly) {
      const node = W.graphNode(this.graphBox, taskId);
      if (node) W.setStatus(node, status);
      if (graphOnly) return;
      for (const row of this.timelineBox.querySelectorAll("g.timeline-row")) {
        if (row.getAttribute("data-task-id") === taskId) W.setStatus(row, status);
      }
      for (const row of this.taskList.querySelectorAll("tr[data-task-id]")) {
        if (row.getAttribute("data-task-id") !== taskId) continue;
        const cell = row.querySelector(".badge");
        if (cell) {
          W.setStatus(cell, status);
          cell.textContent = status;
        }
      }
    }

    markSelected() {
      const mark = (nodes) => {
        for (const node of nodes) {
          node.classList.toggle("selected", node.getAttribute("data-task-id") === this.selected);
        }
      };
      mark(this.graphBox.querySelectorAll("g.graph-node"));
      mark(this.timelineBox.querySelectorAll("g.timeline-row"));
      mark(this.taskList.querySelectorAll("tr[data-task-id]"));
    }

    taskUrl(taskId) {
      const links = this.data.links || {};
      return links.tasks ? links.tasks + encodeURIComponent(taskId) : null;
    }

    async select(taskId, focus) {
      this.selected = taskId;
      this.markSelected();
      await this.showDetails(focus);
    }

    async showDetails(focus) {
      const taskId = this.selected;
      if (taskId === null) return;
      let task = null;
      if (this.details) {
        task = this.details[taskId] || null;
      } else {
        if (this.loading) this.loading.abort();
        const loading = new AbortController();
        this.loading = loading;
        let result;
        // A live redraw keeps the items the reader had scrolled through.
        const shown = this.panel.dataset.taskId === taskId && this.items ? this.items.shown : 0;
        const query = shown > ITEMS_FETCH ? "?items_limit=" + shown : "";
        try {
          result = await W.fetchJson(this.taskUrl(taskId) + ".json" + query, { signal: loading.signal });
        } catch (error) {
          if (error.name === "AbortError") return;
          result = { ok: false, data: { error: String(error) } };
        }
        if (this.selected !== taskId || loading.signal.aborted) return;
        if (!result.ok) {
          clear(this.panel).append(el("div", { class: "notice error" },
            "Cannot load task " + taskId + ": " + (result.data.error || result.data.detail || result.status)));
          return;
        }
        task = result.data;
      }
      if (task === null) return;
      // Keep which steps the reader opened or closed, and which items they opened, across a
      // live redraw.
      const same = this.panel.dataset.taskId === taskId;
      const closed = new Set();
      const openItems = new Set();
      if (same) {
        for (const step of this.panel.querySelectorAll("details.step")) {
          if (!step.open) closed.add(step.getAttribute("data-step-index"));
        }
        for (const item of this.panel.querySelectorAll("details.map-item")) {
          if (item.open) openItems.add(item.getAttribute("data-item-index"));
        }
      }
      const shownItems = same && this.items ? this.items.shown : 0;
      this.items = renderTaskDetails(this.panel, task, this.taskUrl(taskId));
      this.panel.dataset.taskId = taskId;
      if (this.items) await this.items.start(shownItems, openItems);
      for (const step of this.panel.querySelectorAll("details.step")) {
        if (closed.has(step.getAttribute("data-step-index"))) step.open = false;
      }
      if (focus) this.panel.focus({ preventScroll: true });
    }
  }

  // -- the run page ---------------------------------------------------------------------------

  function notice(ok, text) {
    const box = document.getElementById("action-result");
    clear(box).append(el("div", { class: "notice " + (ok ? "ok" : "error") }, text));
  }

  function initRunPage(page) {
    const view = new RunView({ links: page.links }, { deferSections: page.large });
    let source = null;
    let timer = null;
    let inFlight = false;
    let again = false;
    const liveStatus = document.getElementById("live-status");

    async function refresh() {
      const result = await W.fetchJson(page.links.json);
      if (!result.ok) return;
      view.update(result.data);
      document.getElementById("cancel-button").hidden = !result.data.run.can_cancel;
      document.getElementById("resume-button").hidden = !result.data.run.can_resume;
      if (view.selected !== null) await view.showDetails(false);
      if (result.data.live && source === null) follow();
    }

    function scheduleRefresh() {
      if (timer !== null || inFlight) {
        again = true;
        return;
      }
      timer = setTimeout(async () => {
        timer = null;
        inFlight = true;
        again = false;
        try {
          await refresh();
        } finally {
          inFlight = false;
          if (again) scheduleRefresh();
        }
      }, REFRESH_DELAY_MS);
    }

    function follow() {
      source = new EventSource(page.links.events);
      liveStatus.textContent = "Live";
      source.addEventListener("progress", (message) => {
        const event = JSON.parse(message.data);
        if (event.kind === "task_started") view.setTaskStatus(event.task_id, "running", false);
        else if (event.kind === "task_finished") view.setTaskStatus(event.task_id, event.detail, false);
        else if (event.kind === "task_skipped") view.setTaskStatus(event.task_id, "skipped", false);
        scheduleRefresh();
      });
      source.addEventListener("finished", () => {
        source.close();
        source = null;
        liveStatus.textContent = "";
        scheduleRefresh();
      });
      source.addEventListener("error", () => {
        if (source !== null && source.readyState === EventSource.CONNECTING) {
          liveStatus.textContent = "Reconnecting…";
        }
      });
      source.addEventListener("open", () => { liveStatus.textContent = "Live"; });
    }

    for (const button of document.querySelectorAll("#run-actions button[data-action]")) {
      button.addEventListener("click", async () => {
        const action = button.getAttribute("data-action");
        button.disabled = true;
        try {
          const result = await W.fetchJson(page.links[action], { body: {} });
          if (!result.ok) {
            notice(false, (result.data && (result.data.error || result.data.detail)) || "HTTP " + result.status);
          } else if (action === "resume") {
            const tasks = result.data.requeued;
            notice(true, "Resumed: " + (tasks.length ? "requeued " + tasks.join(", ") : "nothing left to run"));
          } else {
            const tasks = result.data.cancelled;
            notice(true, "Cancelled" + (tasks.length ? ": " + tasks.join(", ") : ""));
          }
          await refresh();
        } finally {
          button.disabled = false;
        }
      });
    }
    if (page.live) follow();
    if (page.large) {
      // A large run's timeline and task table are drawn from its JSON once scrolled to, so
      // that they cost nothing while the graph comes up and its first task is opened.
      const observer = new IntersectionObserver((entries) => {
        if (!entries.some((entry) => entry.isIntersecting)) return;
        observer.disconnect();
        view.sections = true;
        refresh();
      });
      observer.observe(view.timelineBox);
      observer.observe(view.taskList);
    }
  }

  // -- the trace view -------------------------------------------------------------------------

  function initTracePage(page) {
    const input = document.getElementById("trace-file");
    const result = document.getElementById("trace-result");
    const shown = document.getElementById("trace-run");
    const replayButton = document.getElementById("trace-replay-button");
    const planText = document.getElementById("trace-plan");
    let view = null;
    let loaded = null; // the trace shown, for a replay

    replayButton.addEventListener("click", async () => {
      if (loaded === null) return;
      replayButton.disabled = true;
      const response = await W.fetchJson(page.replay_url, { body: { trace: loaded, edits: [] } });
      if (response.ok) {
        window.location.assign(response.data.url);
        return;
      }
      replayButton.disabled = false;
      const data = response.data || {};
      fail("Cannot replay: " + (data.error || data.detail || "HTTP " + response.status), data.problems);
    });

    function fail(message, problems) {
      shown.hidden = true;
      clear(result).append(el("div", { class: "notice error", role: "alert" }, message));
      if (problems && problems.length) {
        result.append(W.renderProblems(el("ul", { class: "problems" }), problems, "<trace>"));
      }
    }

    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      clear(result).append(el("p", { class: "muted" }, "Reading " + file.name + "…"));
      let trace;
      try {
        trace = JSON.parse(await file.text());
      } catch (error) {
        fail(file.name + " is not JSON: " + error.message);
        return;
      }
      const response = await W.fetchJson(page.upload_url, { body: { trace: trace } });
      if (!response.ok) {
        const data = response.data || {};
        fail("Cannot read " + file.name + ": " + (data.error || data.detail || "HTTP " + response.status), data.problems);
        return;
      }
      clear(result);
      shown.hidden = false;
      loaded = trace;
      planText.textContent = "";
      W.fetchJson(page.plan_url, { body: { trace: trace, edits: [] } }).then((plan) => {
        planText.textContent = plan.ok ? "Replay plan: " + plan.data.summary : "";
      });
      const data = response.data;
      if (view === null) view = new RunView(data, { details: data.details });
      else {
        view.data = data;
        view.details = data.details;
        view.selected = null;
        view.items = null;
        delete view.panel.dataset.taskId;
        clear(view.panel).append(el("p", { class: "muted" }, "Select a task to see its steps."));
      }
      view.render();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const runPage = W.readJson("run-page");
    if (runPage) initRunPage(runPage);
    const tracePage = W.readJson("trace-page");
    if (tracePage) initTracePage(tracePage);
  });
})();
