// The what-if page: edit a finished run's recorded values, see the replay plan, replay.
// Edits are kept per field as the API takes them ({kind, task_id, step_index, value}); the
// plan is asked for (debounced) after every change. Everything from the server is put into the
// page as text.
(function () {
  "use strict";
  const web = window.llmWeb;
  const page = web.readJson("what-if-data");
  if (!page) return;
  const runId = page.run_id;
  const runPath = "/runs/" + encodeURIComponent(runId);
  const apiPath = "/api/runs/" + encodeURIComponent(runId);
  const edits = new Map(); // key -> edit
  const graphBox = document.getElementById("what-if-graph-box");
  const editor = document.getElementById("task-editor");
  const title = document.getElementById("task-title");
  const summary = document.getElementById("plan-summary");
  const planError = document.getElementById("plan-error");
  const planTable = document.getElementById("plan-table");
  const editCount = document.getElementById("edit-count");
  const replayButton = document.getElementById("replay-button");
  let planRequest = 0;

  function key(kind, taskId, index) {
    return kind + "|" + (taskId || "") + "|" + (index === undefined ? "" : index);
  }

  function setEdit(edit, changed) {
    const k = key(edit.kind, edit.task_id, edit.step_index);
    if (changed) edits.set(k, edit);
    else edits.delete(k);
    editCount.textContent = edits.size === 0 ? "No edits" : edits.size + " edit" + (edits.size > 1 ? "s" : "");
    schedulePlan();
  }

  function pretty(value) {
    return JSON.stringify(value === undefined ? null : value, null, 2);
  }

  // A textarea bound to one edit. parse(text) -> {ok, value} ; original is the recorded text.
  function editField(opts) {
    const id = opts.id;
    const existing = edits.get(key(opts.kind, opts.taskId, opts.index));
    const area = web.el("textarea", {
      id: id,
      class: "mono",
      rows: opts.rows || 4,
      spellcheck: "false",
      dataset: { edit: opts.kind, taskId: opts.taskId || "", stepIndex: opts.index === undefined ? "" : opts.index },
    });
    area.value = existing && opts.restore ? opts.restore(existing) : opts.original;
    const problem = web.el("div", { class: "notice error", hidden: true, id: id + "-problem" });
    area.addEventListener("input", function () {
      const parsed = opts.parse(area.value);
      if (!parsed.ok) {
        problem.hidden = false;
        problem.textContent = parsed.error;
        return;
      }
      problem.hidden = true;
      opts.apply(parsed.value, area.value !== opts.original);
    });
    return web.el("div", { class: "field" }, web.el("label", { for: id }, opts.label), area, problem);
  }

  function jsonParse(text) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (error) {
      return { ok: false, error: "Not JSON: " + error.message };
    }
  }

  function objectParse(text) {
    const parsed = jsonParse(text);
    if (parsed.ok && (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value))) {
      return { ok: false, error: "Must be a JSON object" };
    }
    return parsed;
  }

  function textParse(text) {
    return { ok: true, value: text };
  }

  function stepEditor(taskId, step) {
    const idBase = "edit-" + taskId + "-" + step.index;
    const heading = "#" + step.index + " " + (step.name || step.step_id || "step " + (step.index + 1));
    const meta = step.type === "function_call" ? "function " + (step.function_name || "") : (step.model_key || step.type);
    const box = web.el("fieldset", { class: "step-edit", dataset: { stepIndex: step.index } },
      web.el("legend", {}, heading, " ", web.el("span", { class: "muted" }, meta)));
    if (!step.editable) {
      box.appendChild(web.el("p", { class: "muted" }, "Not succeeded in the recorded run (" + step.status + "): nothing to edit."));
      return box;
    }
    if (step.type === "function_call") {
      const original = pretty(step.function_response);
      box.appendChild(editField({
        id: idBase + "-response", label: "Response (JSON: what the function returned)", kind: "step_response",
        taskId: taskId, index: step.index, original: original, rows: 4, parse: jsonParse,
        restore: function (edit) { return pretty(edit.value); },
        apply: function (value, changed) {
          setEdit({ kind: "step_response", task_id: taskId, step_index: step.index, value: value }, changed);
        },
      }));
    } else if (step.type === "embedding") {
      box.appendChild(editField({
        id: idBase + "-response", label: "Embedding (JSON: a list of numbers)", kind: "step_response",
        taskId: taskId, index: step.index, original: JSON.stringify(step.embedding || []), rows: 3, parse: jsonParse,
        restore: function (edit) { return JSON.stringify(edit.value); },
        apply: function (value, changed) {
          setEdit({ kind: "step_response", task_id: taskId, step_index: step.index, value: value }, changed);
        },
      }));
    } else {
      box.appendChild(editField({
        id: idBase + "-response", label: "Response", kind: "step_response", taskId: taskId,
        index: step.index, original: step.response_text || "", rows: 5, parse: textParse,
        restore: function (edit) { return edit.value; },
        apply: function (value, changed) {
          setEdit({ kind: "step_response", task_id: taskId, step_index: step.index, value: value }, changed);
        },
      }));
    }
    box.appendChild(editField({
      id: idBase + "-outputs", label: "Outputs (JSON object; a changed response recomputes them)",
      kind: "step_outputs", taskId: taskId, index: step.index, original: pretty(step.outputs), rows: 4,
      parse: objectParse, restore: function (edit) { return pretty(edit.value); },
      apply: function (value, changed) {
        setEdit({ kind: "step_outputs", task_id: taskId, step_index: step.index, value: value }, changed);
      },
    }));
    if (step.prompt_template) {
      const template = step.prompt_template;
      const prompt = { user_prompt: template.user_prompt, system_prompt: template.system_prompt };
      const existing = edits.get(key("step_prompt", taskId, step.index));
      const current = Object.assign({}, prompt, existing ? existing.value : {});
      for (const field of ["user_prompt", "system_prompt"]) {
        box.appendChild(editField({
          id: idBase + "-" + field, label: (field === "user_prompt" ? "User" : "System") + " prompt template (%name% is a variable)",
          kind: "step_prompt_" + field, taskId: taskId, index: step.index, original: prompt[field] || "", rows: 3,
          parse: textParse, restore: function () { return current[field] || ""; },
          apply: function (value) {
            current[field] = value;
            const changedFields = {};
            for (const name of ["user_prompt", "system_prompt"]) {
              if ((current[name] || "") !== (prompt[name] || "")) changedFields[name] = current[name];
            }
            const changed = Object.keys(changedFields).length > 0;
            setEdit({ kind: "step_prompt", task_id: taskId, step_index: step.index, value: changedFields }, changed);
          },
        }));
      }
      box.appendChild(web.el("details", {},
        web.el("summary", {}, "Rendered prompt in the recorded run"),
        web.el("pre", {}, step.system_prompt ? "[system]\n" + step.system_prompt + "\n\n[user]\n" : "", step.user_prompt || "")));
    }
    return box;
  }

  let taskRequest = 0;
  let shownTask = null; // the task in the editor, or on its way there

  async function loadTask(taskId) {
    // Asking again for the task already shown (or loading) keeps its editor: rebuilding it
    // would take the focus, and the text, from a field the user is typing in.
    if (taskId === shownTask) return;
    shownTask = taskId;
    const request = ++taskRequest;
    for (const node of graphBox.querySelectorAll("g.graph-node.selected")) node.classList.remove("selected");
    const node = web.graphNode(graphBox, taskId);
    if (node) node.classList.add("selected");
    const result = await web.fetchJson(runPath + "/what-if/tasks/" + encodeURIComponent(taskId) + ".json");
    // Only the latest task asked for is shown: the first task's load at page start may answer
    // after a click's, and replacing the editor then would drop what was typed in it.
    if (request !== taskRequest) return;
    web.clear(editor);
    if (!result.ok) {
      shownTask = null; // a click tries again
      title.textContent = "Task " + taskId;
      editor.appendChild(web.el("p", { class: "notice error" }, (result.data && result.data.detail) || "Cannot load the task"));
      return;
    }
    const task = result.data;
    title.textContent = "Task " + task.task_id + (task.name && task.name !== task.task_id ? " — " + task.name : "");
    editor.appendChild(editField({
      id: "edit-" + taskId + "-inputs", label: "Task inputs (JSON object; edited names override what the task receives)",
      kind: "task_inputs", taskId: taskId, original: pretty(task.inputs), rows: 5, parse: objectParse,
      restore: function (edit) { return pretty(Object.assign({}, task.inputs, edit.value)); },
      apply: function (value, changed) { setEdit({ kind: "task_inputs", task_id: taskId, value: value }, changed); },
    }));
    for (const step of task.steps) editor.appendChild(stepEditor(taskId, step));
  }

  const schedulePlan = web.debounce(showPlan, 400);

  async function showPlan() {
    const request = ++planRequest;
    summary.textContent = "Planning…";
    const result = await web.fetchJson(apiPath + "/replay-plan", { body: { edits: Array.from(edits.values()) } });
    if (request !== planRequest) return; // a newer plan is on its way
    const body = planTable.querySelector("tbody");
    web.clear(body);
    for (const node of graphBox.querySelectorAll("g.graph-node")) node.classList.remove("plan-run", "plan-reuse");
    if (!result.ok) {
      summary.textContent = "";
      planError.hidden = false;
      planTable.hidden = true;
      replayButton.disabled = true;
      const data = result.data || {};
      planError.textContent = data.error || data.detail || "Cannot plan the replay";
      if (data.problems && data.problems.length) {
        planError.appendChild(web.renderProblems(web.el("ul", { class: "problems" }), data.problems));
      }
      return;
    }
    planError.hidden = true;
    replayButton.disabled = false;
    const plan = result.data;
    summary.textContent = plan.summary;
    const runs = new Set();
    for (const step of plan.steps) {
      if (step.action === "run") runs.add(step.task_id);
      const cost = step.action === "reuse" ? "$0" : step.estimated_cost_usd === null ? "unknown" : "$" + step.estimated_cost_usd.toFixed(6);
      const tokens = step.action === "reuse" ? "0" : step.estimated_input_tokens === null ? "unknown" : (step.estimated_input_tokens + step.estimated_output_tokens);
      body.appendChild(web.el("tr", { class: "plan-" + step.action, dataset: { taskId: step.task_id, stepIndex: step.step_index, action: step.action } },
        web.el("td", { class: "mono" }, step.task_id),
        web.el("td", {}, "#" + step.step_index + " " + step.name),
        web.el("td", {}, web.el("span", { class: "badge " + (step.action === "run" ? "status-running" : "status-succeeded") }, step.action === "run" ? "re-runs" : "reused")),
        web.el("td", {}, step.reason),
        web.el("td", { class: "num" }, cost),
        web.el("td", { class: "num" }, String(tokens))));
    }
    planTable.hidden = false;
    for (const node of graphBox.querySelectorAll("g.graph-node")) {
      node.classList.add(runs.has(node.dataset.taskId) ? "plan-run" : "plan-reuse");
    }
  }

  async function replay() {
    replayButton.disabled = true;
    summary.textContent = "Starting the replay…";
    const result = await web.fetchJson(apiPath + "/replay", { body: { edits: Array.from(edits.values()) } });
    if (result.ok) {
      window.location.assign(result.data.url);
      return;
    }
    replayButton.disabled = false;
    planError.hidden = false;
    planError.textContent = (result.data && (result.data.error || result.data.detail)) || "The replay could not start";
  }

  for (const node of graphBox.querySelectorAll("g.graph-node")) {
    node.addEventListener("click", function () { loadTask(node.dataset.taskId); });
    node.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        loadTask(node.dataset.taskId);
      }
    });
  }
  const jobInputs = document.getElementById("job-inputs");
  const originalInputs = jobInputs.value;
  const inputsProblem = web.el("div", { class: "notice error", hidden: true });
  jobInputs.after(inputsProblem);
  jobInputs.addEventListener("input", function () {
    const parsed = objectParse(jobInputs.value);
    inputsProblem.hidden = parsed.ok;
    if (!parsed.ok) {
      inputsProblem.textContent = parsed.error;
      return;
    }
    setEdit({ kind: "job_inputs", value: parsed.value }, jobInputs.value !== originalInputs);
  });
  document.getElementById("preview-button").addEventListener("click", showPlan);
  replayButton.addEventListener("click", replay);
  const first = graphBox.querySelector("g.graph-node");
  if (first) loadTask(first.dataset.taskId);
  showPlan();
})();
